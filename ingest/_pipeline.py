"""The batch job: discover → hash → (parse → steps → chunk in parser processes) → embed →
index, incremental and idempotent.

The index itself is the record of what was ingested: every point carries its document's
``content_hash`` (file bytes + pipeline settings + ACL) and ``chunk_count``. A document is
unchanged when all its points carry the current hash and there are exactly
``chunk_count`` of them. A changed document's new points are written first, then its
stale points deleted, so a crash (kill -9) at any moment leaves a state the next run
detects as incomplete and repairs, ending with exactly the points of a clean run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest._acl import AclResolver
from ingest._prepare import DocumentStep, Failed, FileTask, Prepared
from ingest._report import FileError, RunReport, new_run_id
from ingest._workers import PreparePool
from rag._config import Settings
from rag._embedding import Embedder, SentenceTransformerEmbedder
from rag._sparse import Bm25Encoder
from rag._types import IndexedChunk, doc_id_for
from rag.stores import Filter, VectorStore, open_store

_UPSERT_BATCH = 256
#: Bump when a code change alters what is stored for the same file and settings (chunk
#: boundaries, payload fields): every document is then re-ingested on the next run.
PIPELINE_VERSION = 1


class Progress(Protocol):
    """Receives progress events; the CLI draws a bar, the API passes nothing."""

    def start(self, total_files: int) -> None: ...

    def file_done(self, status: str, chunks: int) -> None: ...


class _Silent:
    def start(self, total_files: int) -> None:
        pass

    def file_done(self, status: str, chunks: int) -> None:
        pass


def ingest(
    paths: Sequence[Path | str],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    store: VectorStore | None = None,
    steps: Sequence[DocumentStep] = (),
    progress: Progress | None = None,
) -> RunReport:
    """Ingest files and folders into the configured collection; returns the run report.

    The report (also written to ``<home>/runs/<run_id>.json``) lists every file that
    failed with its stage and reason; the other files are ingested regardless.
    """
    started = time.perf_counter()
    if embedder is None:
        embedder = SentenceTransformerEmbedder(settings.embedding)
    report = RunReport(
        run_id=new_run_id(),
        started_at=datetime.now(UTC),
        collection=settings.store.collection,
        backend=settings.store.backend,
        embedding_model=embedder.name,
        paths=[str(p) for p in paths],
    )
    progress = progress or _Silent()
    own_store = store is None
    store = store or open_store(settings, embedder.dimension)
    try:
        files = _discover(paths, settings, report)
        progress.start(len(files))
        tasks = _plan(files, settings, embedder, steps, store, report, progress)
        _run(tasks, settings, embedder, steps, store, report, progress)
        _optimize(store, report)
    finally:
        # The report is written whatever happens to the store: it is the record of
        # which files made it in.
        try:
            if own_store:
                store.close()
        finally:
            report.finished_at = datetime.now(UTC)
            report.wall_seconds = time.perf_counter() - started
            report.write(settings.runs_dir)
    return report


def _discover(
    paths: Sequence[Path | str], settings: Settings, report: RunReport
) -> list[tuple[Path, Path]]:
    """(file, root) pairs in a stable order; missing paths become errors."""
    found: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found.setdefault(path.resolve(), path.resolve().parent)
        elif path.is_dir():
            root = path.resolve()
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                rel = file.relative_to(root).as_posix()
                if not any(fnmatch(rel, pat) for pat in settings.ingest.exclude):
                    found.setdefault(file, root)
        else:
            report.errors.append(
                FileError(
                    path=str(path),
                    stage="discover",
                    reason="not_found",
                    detail="no such file or folder",
                    hint="check the path",
                )
            )
            report.files_failed += 1
    return list(found.items())


def pipeline_fingerprint(
    settings: Settings, embedder: Embedder, steps: Sequence[DocumentStep]
) -> str:
    """Everything besides the file's bytes that changes what gets stored."""
    parts = {
        "version": PIPELINE_VERSION,
        "chunking": settings.chunking.model_dump(mode="json"),
        "tokenizer": settings.tokenizer_version(),
        "sparse": settings.sparse.model_dump(mode="json"),
        "parse": settings.parse.model_dump(mode="json"),
        "embedder": [embedder.name, embedder.dimension, embedder.max_tokens],
        "steps": [s.name for s in steps],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _plan(
    files: list[tuple[Path, Path]],
    settings: Settings,
    embedder: Embedder,
    steps: Sequence[DocumentStep],
    store: VectorStore,
    report: RunReport,
    progress: Progress,
) -> list[FileTask]:
    """Hash every file and keep those whose indexed version is missing, stale or partial."""
    t = time.perf_counter()
    fingerprint = pipeline_fingerprint(settings, embedder, steps)
    acl = AclResolver(settings.acl)
    max_bytes = settings.ingest.max_file_mb * 1024 * 1024
    tasks: list[FileTask] = []
    for path, root in files:
        report.files_seen += 1
        doc_id = doc_id_for(path)
        try:
            size = path.stat().st_size
            principals = acl.principals(path, root)
            # Oversized files are refused by the parser before it reads them; hashing
            # them here would read them in full for nothing.
            digest = _file_digest(path) if size <= max_bytes else f"size:{size}"
        except OSError as exc:
            report.errors.append(
                FileError(
                    path=str(path),
                    doc_id=doc_id,
                    stage="read",
                    reason="unreadable",
                    detail=type(exc).__name__,
                    hint="check permissions",
                )
            )
            report.files_failed += 1
            progress.file_done("failed", 0)
            continue
        content_hash = hashlib.sha256(
            f"{digest}|{fingerprint}|{','.join(principals)}".encode()
        ).hexdigest()[:32]
        if _is_current(store, doc_id, content_hash):
            report.files_unchanged += 1
            progress.file_done("unchanged", 0)
            continue
        tasks.append(FileTask(path, doc_id, str(path), principals, content_hash, size))
    report.add_time("read", time.perf_counter() - t)
    return tasks


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_current(store: VectorStore, doc_id: str, content_hash: str) -> bool:
    total = store.count(Filter.of(doc_id=doc_id))
    if total == 0:
        return False
    complete = store.count(Filter.of(doc_id=doc_id, content_hash=content_hash, chunk_count=total))
    return complete == total


def _run(
    tasks: list[FileTask],
    settings: Settings,
    embedder: Embedder,
    steps: Sequence[DocumentStep],
    store: VectorStore,
    report: RunReport,
    progress: Progress,
) -> None:
    sparse = Bm25Encoder(settings.sparse)
    buffer: list[Prepared] = []
    buffered_chunks = 0
    for result in PreparePool(settings, embedder, steps).run(tasks):
        if isinstance(result, Failed):
            _record_failure(result, store, report)
            progress.file_done("failed", 0)
            continue
        if isinstance(result, Prepared):
            for stage, seconds in result.seconds.items():
                report.add_time(stage, seconds)
            buffer.append(result)
            buffered_chunks += len(result.chunks)
        # Embed when a full group is ready, or whenever the parsers have nothing new
        # (result is None), so embedding never waits for parsing it could overlap with.
        if buffer and (result is None or buffered_chunks >= settings.ingest.embed_group):
            _write(buffer, embedder, sparse, store, settings, report, progress)
            buffer, buffered_chunks = [], 0
    if buffer:
        _write(buffer, embedder, sparse, store, settings, report, progress)


def _write(
    docs: list[Prepared],
    embedder: Embedder,
    sparse: Bm25Encoder,
    store: VectorStore,
    settings: Settings,
    report: RunReport,
    progress: Progress,
) -> None:
    texts = [c.text for d in docs for c in d.chunks]
    t = time.perf_counter()
    vectors = _embed(embedder, texts, settings.ingest.embed_group)
    report.add_time("embed", time.perf_counter() - t)
    t = time.perf_counter()
    offset = 0
    for doc in docs:
        n = len(doc.chunks)
        points = [
            IndexedChunk(
                chunk=c,
                dense=vectors[offset + i].tolist(),
                sparse=sparse.encode_document(c.text),
                content_hash=doc.task.content_hash,
                chunk_count=n,
            )
            for i, c in enumerate(doc.chunks)
        ]
        offset += n
        for i in range(0, n, _UPSERT_BATCH):
            store.upsert(points[i : i + _UPSERT_BATCH])
        # Only now that every new point is stored: drop the previous version's points.
        before = store.count(Filter.of(doc_id=doc.task.doc_id))
        store.delete(
            Filter(
                must=Filter.of(doc_id=doc.task.doc_id).must,
                must_not=Filter.of(content_hash=doc.task.content_hash).must,
            )
        )
        report.chunks_deleted += before - n
        report.chunks_written += n
        report.files_ingested += 1
        progress.file_done("ingested", n)
    report.add_time("index", time.perf_counter() - t)


def _embed(embedder: Embedder, texts: list[str], group: int) -> np.ndarray:
    parts = [embedder.embed_passages(texts[i : i + group]) for i in range(0, len(texts), group)]
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), np.float32)


def _optimize(store: VectorStore, report: RunReport) -> None:
    """Let an embedded store build its indexes once the run's writes are done.

    Qdrant Edge never optimizes in the background; without this, queries scan unindexed
    segments (about 5x slower at 100k points). A Qdrant server optimizes by itself and
    its adapter has no such method.
    """
    optimize = getattr(store, "optimize", None)
    if optimize is None or not (report.chunks_written or report.chunks_deleted):
        return
    t = time.perf_counter()
    optimize()
    report.add_time("optimize", time.perf_counter() - t)


def _record_failure(result: Failed, store: VectorStore, report: RunReport) -> None:
    for stage, seconds in result.seconds.items():
        report.add_time(stage, seconds)
    kept = store.count(Filter.of(doc_id=result.task.doc_id))
    report.errors.append(
        FileError(
            path=result.task.source,
            doc_id=result.task.doc_id,
            stage=result.stage,
            reason=result.reason,
            detail=result.detail,
            hint=result.hint,
            kept_chunks=kept,
        )
    )
    report.files_failed += 1
