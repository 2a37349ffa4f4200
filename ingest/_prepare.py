"""Per-file work that runs in parser processes: parse, document steps, chunk.

Document steps are where the privacy layer plugs in: each receives the parsed document
and returns a new one (e.g. with pseudonymized element text) *before* chunking, so raw
text never reaches the embedder, the index, a log or a report. Steps travel to the
worker processes by pickling, so they must be picklable (open connections lazily).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from ingest._chunk import Chunker
from ingest._report import Stage
from rag._config import Settings
from rag._embedding import Embedder
from rag._errors import ParseError, RagError
from rag._types import Chunk, ParsedDocument


@runtime_checkable
class DocumentStep(Protocol):
    """Transforms a parsed document before it is chunked, embedded or stored."""

    name: str

    def __call__(self, doc: ParsedDocument) -> ParsedDocument: ...


# A step may also define ``annotate_chunks(chunks) -> chunks`` (e.g. to record per-chunk
# payload fields after chunking) and ``warm_up()`` (run once in the main process before
# any file, so a bad setting stops the run instead of failing every file).


@dataclass(frozen=True)
class FileTask:
    path: Path
    doc_id: str
    source: str
    acl: tuple[str, ...]
    content_hash: str
    size: int


@dataclass(frozen=True)
class Prepared:
    task: FileTask
    chunks: list[Chunk]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    task: FileTask
    stage: Stage
    reason: str
    detail: str
    hint: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


class Preparer:
    """Turns one file into chunks; one instance per parser process."""

    def __init__(
        self, settings: Settings, embedder: Embedder, steps: Sequence[DocumentStep] = ()
    ) -> None:
        from ingest._parse import configure_unstructured

        configure_unstructured(settings.parse)
        self.settings = settings
        self.steps = tuple(steps)
        self.max_bytes = int(settings.ingest.max_file_mb * 1024 * 1024)
        self.chunker = Chunker.for_settings(settings, embedder)

    def __call__(self, task: FileTask) -> Prepared | Failed:
        from ingest._parse import parse_file

        seconds: dict[str, float] = {}
        stage: Stage = "parse"
        t = time.perf_counter()
        try:
            doc = parse_file(task.path, self.settings.parse, max_bytes=self.max_bytes)
            seconds["parse"] = time.perf_counter() - t
            stage = "transform"
            t = time.perf_counter()
            for step in self.steps:
                doc = step(doc)
            seconds["transform"] = time.perf_counter() - t
            stage = "chunk"
            t = time.perf_counter()
            chunks = self.chunker.chunk(doc, task.doc_id, task.acl, task.source)
            for step in self.steps:
                annotate = getattr(step, "annotate_chunks", None)
                if annotate is not None:
                    chunks = annotate(chunks)
            seconds["chunk"] = time.perf_counter() - t
        except ParseError as exc:
            seconds[stage] = time.perf_counter() - t
            return Failed(task, stage, exc.reason, exc.detail, exc.hint, seconds)
        except RagError as exc:
            seconds[stage] = time.perf_counter() - t
            return Failed(task, stage, "error", f"{type(exc).__name__}: {exc}", "", seconds)
        except Exception as exc:  # a library bug on one file must not stop the batch
            seconds[stage] = time.perf_counter() - t
            # Only the exception type: library messages can quote document text.
            return Failed(task, stage, "internal", type(exc).__name__, "report this file", seconds)
        if not chunks:
            return Failed(task, "chunk", "no_text", "the file has no extractable text", "", seconds)
        return Prepared(task, chunks, seconds)


# -- process-pool plumbing: one Preparer per worker process --
_WORKER: Preparer | None = None


def init_worker(settings: Settings, embedder: Embedder, steps: Sequence[DocumentStep]) -> None:
    global _WORKER
    import logging

    logging.basicConfig(level=logging.WARNING)
    _WORKER = Preparer(settings, embedder, steps)


def run_in_worker(task: FileTask) -> Prepared | Failed:
    assert _WORKER is not None, "init_worker did not run"
    return _WORKER(task)
