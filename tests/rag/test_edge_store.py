"""Qdrant Edge only: reopening, layout checks, the one-process lock, kill -9 durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag import CollectionMismatchError, IndexedChunk, StoreLockedError
from rag.stores import Filter, SearchRequest
from rag.stores._edge import EdgeStore
from rag.stores._holder import describe_holder, holder_path

DIM = 8
PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]

#: Test points, defined once as source so child processes build exactly the same ones.
POINTS_SOURCE = textwrap.dedent(
    """
    from rag import Chunk, IndexedChunk, SparseVector
    from rag._types import chunk_id_for

    def points(n, dim=8):
        out = []
        for i in range(n):
            doc = "doc%d" % (i // 10)
            cid = chunk_id_for(doc, i % 10, str(i))
            chunk = Chunk(cid, doc, i % 10, "t", "s", (1,), None, (), ("@public",), 1)
            dense = [float((i + k) % 7 + 1) for k in range(dim)]
            out.append(IndexedChunk(chunk, dense, SparseVector((i % 50,), (1.0,)), "h", 10))
        return out
    """
)
CHILD_PRELUDE = POINTS_SOURCE + textwrap.dedent(
    """
    import sys, time
    from rag.stores import Filter
    from rag.stores._edge import EdgeStore
    """
)
_namespace: dict[str, Any] = {}
exec(POINTS_SOURCE, _namespace)
points: Callable[[int], list[IndexedChunk]] = _namespace["points"]


def spawn(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-c", CHILD_PRELUDE + textwrap.dedent(script)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the child exits on error, so this cannot hang for long
    if line.strip() != word:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"child did not print {word!r}: {line!r} {err[-2000:]}")


def test_reopen_after_close_keeps_points(tmp_path: Path) -> None:
    path = tmp_path / "index" / "documents"
    with EdgeStore(path, DIM) as store:
        store.upsert(points(25))
    assert not holder_path(path).exists()
    with EdgeStore(path, DIM) as store:
        assert store.count() == 25
        assert store.info().documents == 3


def test_dimension_mismatch_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "documents"
    EdgeStore(path, DIM).close()
    with pytest.raises(CollectionMismatchError) as err:
        EdgeStore(path, 384)
    message = str(err.value)
    assert "size 8" in message and "384" in message
    assert "embedding.model" in message and "store.collection" in message
    with EdgeStore(path, DIM) as store:  # the failed open left the index usable
        assert store.count() == 0


def test_second_opener_in_this_process_is_told_so(tmp_path: Path) -> None:
    with EdgeStore(tmp_path / "documents", DIM), pytest.raises(StoreLockedError) as err:
        EdgeStore(tmp_path / "documents", DIM)
    assert "this process already has it open" in str(err.value)


def test_second_opener_in_another_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    path = tmp_path / "documents"
    holder = spawn(
        f"""
        store = EdgeStore({str(path)!r}, 8)
        print("ready", flush=True)
        sys.stdin.readline()
        store.close()
        """
    )
    try:
        wait_for(holder, "ready")
        with pytest.raises(StoreLockedError) as err:
            EdgeStore(path, DIM)
        message = str(err.value)
        assert f"pid {holder.pid}" in message
        assert str(path) in message
        assert 'store.backend = "qdrant"' in message
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    with EdgeStore(path, DIM) as store:  # released on close
        assert store.count() == 0


def test_a_refused_opener_does_not_disturb_the_writer(tmp_path: Path) -> None:
    # Regression: Qdrant Edge's own WAL lock is met part-way through loading, after the
    # second opener has touched segment files; the writer then failed to flush on close.
    path = tmp_path / "documents"
    writer = spawn(
        f"""
        store = EdgeStore({str(path)!r}, 8)
        store.upsert(points(100)[:50])
        print("ready", flush=True)
        sys.stdin.readline()
        store.upsert(points(100)[50:])
        store.close()
        print("closed", flush=True)
        """
    )
    try:
        wait_for(writer, "ready")
        for _ in range(3):
            with pytest.raises(StoreLockedError):
                EdgeStore(path, DIM)
        out, err = writer.communicate("\n", timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err[-2000:]
    assert out.strip() == "closed"
    with EdgeStore(path, DIM) as store:
        assert store.count() == 100


def test_stale_holder_record_is_reported_as_stale(tmp_path: Path) -> None:
    dead = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True)
    pid = int(dead.stdout)
    holder_path(tmp_path / "documents").write_text(f'{{"pid": {pid}, "command": "rag ingest"}}')
    assert "no longer running" in describe_holder(tmp_path / "documents")


@pytest.mark.parametrize("flush_writes", [True, False])
def test_kill_9_after_upsert_returns_keeps_every_point(tmp_path: Path, flush_writes: bool) -> None:
    # flush_writes=False too: the WAL alone must survive a killed process (fsync is only
    # needed against power loss).
    path = tmp_path / "documents"
    writer = spawn(
        f"""
        store = EdgeStore({str(path)!r}, 8, flush_writes={flush_writes})
        data = points(3000)
        for start in range(0, len(data), 250):
            store.upsert(data[start:start + 250])
        store.delete(Filter.of(doc_id="doc0"))
        print("done", flush=True)
        time.sleep(60)
        """
    )
    try:
        wait_for(writer, "done")
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    with EdgeStore(path, DIM) as store:
        assert store.count() == 3000 - 10
        assert store.count(Filter.of(doc_id="doc0")) == 0


def test_kill_9_during_writes_then_rerun_converges(tmp_path: Path) -> None:
    path = tmp_path / "documents"
    writer = spawn(
        f"""
        store = EdgeStore({str(path)!r}, 8)
        data = points(2000)
        print("writing", flush=True)
        while True:
            for start in range(0, len(data), 100):
                store.upsert(data[start:start + 100])
        """
    )
    try:
        wait_for(writer, "writing")
        time.sleep(0.5)  # well inside the write loop
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.communicate(timeout=30)
    with EdgeStore(path, DIM) as store:  # opens cleanly despite the stale holder record
        assert 0 <= store.count() <= 2000
        store.upsert(points(2000))
        assert store.count() == 2000


def test_optimize_keeps_points_and_search_works(tmp_path: Path) -> None:
    with EdgeStore(tmp_path / "documents", DIM) as store:
        data = points(500)
        store.upsert(data)
        store.delete(Filter.of(doc_id="doc1"))
        assert isinstance(store.optimize(), bool)
        assert store.count() == 490
        hits = store.search(SearchRequest("dense", 3, dense=list(data[42].dense)))
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
