"""Runs file preparation in parser processes while the caller embeds.

A feeder thread keeps every parser process busy, enforces the per-file timeout (by
killing the pool and restarting it), isolates crashes (a file that kills its worker twice
fails alone), and hands results over through a bounded queue, so parsing runs ahead of
embedding by a few files and no further.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ingest._prepare import (
    DocumentStep,
    Failed,
    FileTask,
    Prepared,
    Preparer,
    init_worker,
    run_in_worker,
)
from rag._config import Settings
from rag._embedding import Embedder

Result = Prepared | Failed
_DONE = object()
_MAX_ATTEMPTS = 2


class PreparePool:
    def __init__(
        self, settings: Settings, embedder: Embedder, steps: Sequence[DocumentStep] = ()
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.steps = tuple(steps)
        self.workers = settings.ingest.workers
        self.timeout = settings.ingest.file_timeout_s

    def run(self, tasks: Sequence[FileTask]) -> Iterator[Result | None]:
        """Results in completion order; ``None`` whenever nothing is ready right now."""
        if self.workers == 0:
            preparer = Preparer(self.settings, self.embedder, self.steps)
            for task in tasks:
                yield preparer(task)
            return
        out: queue.Queue[object] = queue.Queue(maxsize=self.workers + 2)
        stop = threading.Event()
        feeder = threading.Thread(
            target=self._feed, args=(list(tasks), out, stop), name="rag-parse-feeder", daemon=True
        )
        feeder.start()
        try:
            while True:
                try:
                    item = out.get(timeout=0.05)
                except queue.Empty:
                    yield None
                    continue
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            while feeder.is_alive():
                try:
                    out.get_nowait()
                except queue.Empty:
                    feeder.join(timeout=0.1)

    # -- feeder thread --
    def _pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent has torch threads running, and fork would copy them
        # in an undefined state.
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.settings, self.embedder, self.steps),
        )

    def _feed(self, tasks: list[FileTask], out: queue.Queue[object], stop: threading.Event) -> None:
        def put(item: object) -> None:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.2)
                    return
                except queue.Full:
                    continue

        pending: deque[tuple[FileTask, int]] = deque((t, 1) for t in tasks)
        in_flight: dict[Future[Result], tuple[FileTask, int, float]] = {}
        pool = self._pool()
        try:
            while (pending or in_flight) and not stop.is_set():
                # Never queue more than there are workers: a submitted file starts at once,
                # so its timeout is measured from its real start.
                while pending and len(in_flight) < self.workers:
                    task, attempt = pending.popleft()
                    in_flight[pool.submit(run_in_worker, task)] = (task, attempt, time.monotonic())
                done, _ = wait(list(in_flight), timeout=0.5, return_when=FIRST_COMPLETED)
                broken = False
                for fut in done:
                    task, attempt, _started = in_flight.pop(fut)
                    try:
                        put(fut.result())
                    except BrokenProcessPool:
                        broken = True
                        self._retry_or_fail(task, attempt, pending, put)
                now = time.monotonic()
                expired = [f for f, (_, _, s) in in_flight.items() if now - s > self.timeout]
                if not (broken or expired):
                    continue
                _kill(pool)
                for fut, (task, attempt, _started) in list(in_flight.items()):
                    if fut in expired:
                        put(_timeout(task, self.timeout))
                    else:  # innocent bystander of a restart: try again
                        pending.appendleft((task, attempt))
                in_flight.clear()
                pool = self._pool()
        except BaseException as exc:  # surface feeder bugs in the caller's thread
            put(exc)
        finally:
            _kill(pool)
            put(_DONE)

    @staticmethod
    def _retry_or_fail(
        task: FileTask,
        attempt: int,
        pending: deque[tuple[FileTask, int]],
        put: Callable[[object], None],
    ) -> None:
        if attempt < _MAX_ATTEMPTS:
            pending.appendleft((task, attempt + 1))
        else:
            put(
                Failed(
                    task,
                    "parse",
                    "crash",
                    "the parser process died on this file twice",
                    "run `rag doctor`; if it is fine, the file is likely malformed",
                )
            )


def _timeout(task: FileTask, seconds: float) -> Failed:
    return Failed(
        task,
        "parse",
        "timeout",
        f"parsing took longer than {seconds:.0f} s",
        "raise ingest.file_timeout_s, or split the file",
    )


def _kill(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor cannot cancel a running task; killing its processes is the only
    # way to stop a parser stuck in a library call.
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)
