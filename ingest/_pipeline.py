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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest._acl import AclResolver
from ingest._chunk import Chunker
from ingest._prepare import DocumentStep, Failed, FileTask, Prepared
from ingest._privacy import PseudonymizeStep
from ingest._report import RunReport, new_run_id
from ingest._workers import PreparePool
from rag._config import Settings
from rag._embedding import Embedder, SentenceTransformerEmbedder
from rag._sparse import Bm25Encoder
from rag._types import IndexedChunk, doc_id_for
from rag.stores import ALL_VALUES, Filter, VectorStore, open_store

_UPSERT_BATCH = 256
#: Bump when a code change alters what is stored for the same file and settings (chunk
#: boundaries, payload fields): every document is then re-ingested on the next run.
PIPELINE_VERSION = 3  # 2: tokenizer and document dates; 3: pii_placeholders/pii_counts


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
    prune: bool = False,
) -> RunReport:
    """Ingest files and folders into the configured collection; returns the run report.

    The report (also written to ``<home>/runs/<run_id>.json``) lists every file that
    failed with its stage and reason; the other files are ingested regardless. With
    ``prune``, documents indexed from inside the given folders whose files no longer
    exist (or are now excluded) are deleted, so the index mirrors the folders.
    """
    started = time.perf_counter()
    # Privacy first: a missing key or NER model stops the run before anything is read.
    steps = with_privacy(settings, steps)
    for step in steps:
        warm_up = getattr(step, "warm_up", None)
        if warm_up is not None:
            warm_up()
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
    own_store = store is None
    store = store or open_store(settings, embedder.dimension)
    job = _Job(settings, embedder, tuple(steps), store, report, progress or _Silent())
    privacy = next((s for s in steps if isinstance(s, PseudonymizeStep)), None)
    mark = privacy.pseudonymizer.vault_mark() if privacy else (0, 0)
    try:
        files = _discover(paths, settings, report)
        job.run(files)
        if privacy is not None and privacy.pseudonymizer.vault_mark() != mark:
            # Values first found in a later document are also in earlier ones.
            t = time.perf_counter()
            chunker = Chunker.for_settings(settings, embedder)
            report.chunks_rewritten = privacy.rewrite_stale(store, embedder, chunker, job.sparse)
            report.add_time("rewrite", time.perf_counter() - t)
        if prune:
            job.prune([Path(p).expanduser().resolve() for p in paths], files)
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
            _audit_run(steps, report)
    return report


def with_privacy(settings: Settings, steps: Sequence[DocumentStep]) -> tuple[DocumentStep, ...]:
    """The steps to run: the pseudonymization step comes first unless privacy is off or
    the caller passed one."""
    steps = tuple(steps)
    if settings.privacy.enabled and not any(isinstance(s, PseudonymizeStep) for s in steps):
        steps = (PseudonymizeStep(settings), *steps)
    return steps


def _audit_run(steps: Sequence[DocumentStep], report: RunReport) -> None:
    step = next((s for s in steps if isinstance(s, PseudonymizeStep)), None)
    if step is not None:
        step.audit_run(report)


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
            report.fail(
                str(path), None, "discover", "not_found", "no such file or folder", "check the path"
            )
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


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class _Job:
    """One run of the batch job over discovered files."""

    settings: Settings
    embedder: Embedder
    steps: tuple[DocumentStep, ...]
    store: VectorStore
    report: RunReport
    progress: Progress
    sparse: Bm25Encoder = field(init=False)

    def __post_init__(self) -> None:
        privacy = next((s for s in self.steps if isinstance(s, PseudonymizeStep)), None)
        expand = privacy.pseudonymizer.search_terms if privacy is not None else None
        self.sparse = Bm25Encoder(self.settings.sparse, expand=expand)

    def run(self, files: list[tuple[Path, Path]]) -> None:
        self.progress.start(len(files))
        tasks = self._plan(files)
        buffer: list[Prepared] = []
        for result in PreparePool(self.settings, self.embedder, self.steps).run(tasks):
            if isinstance(result, Failed):
                self._failed(result)
                continue
            if isinstance(result, Prepared):
                for stage, seconds in result.seconds.items():
                    self.report.add_time(stage, seconds)
                buffer.append(result)
            # Embed when a full group is ready, or whenever the parsers have nothing new
            # (result is None), so embedding never waits for parsing it could overlap with.
            waiting = sum(len(p.chunks) for p in buffer)
            if buffer and (result is None or waiting >= self.settings.ingest.embed_group):
                self._write(buffer)
                buffer = []
        if buffer:
            self._write(buffer)
        self._optimize()

    def _plan(self, files: list[tuple[Path, Path]]) -> list[FileTask]:
        """Hash every file; keep those whose indexed version is missing, stale or partial."""
        t = time.perf_counter()
        fingerprint = pipeline_fingerprint(self.settings, self.embedder, self.steps)
        acl = AclResolver(self.settings.acl)
        max_bytes = self.settings.ingest.max_file_mb * 1024 * 1024
        tasks: list[FileTask] = []
        for path, root in files:
            self.report.files_seen += 1
            doc_id = doc_id_for(path)
            try:
                size = path.stat().st_size
                principals = acl.principals(path, root)
                # Oversized files are refused by the parser before it reads them; hashing
                # them here would read them in full for nothing.
                digest = _file_digest(path) if size <= max_bytes else f"size:{size}"
            except OSError as exc:
                self.report.fail(
                    str(path), doc_id, "read", "unreadable", type(exc).__name__, "check permissions"
                )
                self.progress.file_done("failed", 0)
                continue
            content_hash = hashlib.sha256(
                f"{digest}|{fingerprint}|{','.join(principals)}".encode()
            ).hexdigest()[:32]
            if self._is_current(doc_id, content_hash):
                self.report.files_unchanged += 1
                self.progress.file_done("unchanged", 0)
                continue
            tasks.append(FileTask(path, doc_id, str(path), principals, content_hash, size))
        self.report.add_time("read", time.perf_counter() - t)
        return tasks

    def _is_current(self, doc_id: str, content_hash: str) -> bool:
        total = self.store.count(Filter.of(doc_id=doc_id))
        if total == 0:
            return False
        complete = self.store.count(
            Filter.of(doc_id=doc_id, content_hash=content_hash, chunk_count=total)
        )
        return complete == total

    def _write(self, docs: list[Prepared]) -> None:
        texts = [c.text for d in docs for c in d.chunks]
        group = self.settings.ingest.embed_group
        t = time.perf_counter()
        parts = [
            self.embedder.embed_passages(texts[i : i + group]) for i in range(0, len(texts), group)
        ]
        vectors = np.concatenate(parts)
        self.report.add_time("embed", time.perf_counter() - t)
        for d in docs:
            for c in d.chunks:
                for entity, n in (c.metadata.get("pii_counts") or {}).items():
                    self.report.pii_counts[entity] = self.report.pii_counts.get(entity, 0) + n
        t = time.perf_counter()
        offset = 0
        for doc in docs:
            n = len(doc.chunks)
            points = [
                IndexedChunk(
                    chunk=c,
                    dense=vectors[offset + i].tolist(),
                    sparse=self.sparse.encode_document(c.text),
                    content_hash=doc.task.content_hash,
                    chunk_count=n,
                )
                for i, c in enumerate(doc.chunks)
            ]
            offset += n
            for i in range(0, n, _UPSERT_BATCH):
                self.store.upsert(points[i : i + _UPSERT_BATCH])
            # Only now that every new point is stored: drop the previous version's points.
            this_doc = Filter.of(doc_id=doc.task.doc_id)
            before = self.store.count(this_doc)
            self.store.delete(
                Filter(
                    must=this_doc.must, must_not=Filter.of(content_hash=doc.task.content_hash).must
                )
            )
            self.report.chunks_deleted += before - n
            self.report.chunks_written += n
            self.report.files_ingested += 1
            self.progress.file_done("ingested", n)
        self.report.add_time("index", time.perf_counter() - t)

    def _failed(self, result: Failed) -> None:
        for stage, seconds in result.seconds.items():
            self.report.add_time(stage, seconds)
        task = result.task
        self.report.fail(
            task.source,
            task.doc_id,
            result.stage,
            result.reason,
            result.detail,
            result.hint,
            kept_chunks=self.store.count(Filter.of(doc_id=task.doc_id)),
        )
        self.progress.file_done("failed", 0)

    def prune(self, roots: list[Path], files: list[tuple[Path, Path]]) -> None:
        """Delete documents below the folders in ``roots`` that were not found this run."""
        prefixes = tuple(r.as_posix().rstrip("/") + "/" for r in roots if r.is_dir())
        if not prefixes:
            return
        present = {str(path) for path, _root in files}
        for source in self.store.facet("source", limit=ALL_VALUES):
            if source.startswith(prefixes) and source not in present:
                where = Filter.of(doc_id=doc_id_for(source))
                self.report.chunks_deleted += self.store.count(where)
                self.store.delete(where)
                self.report.files_removed += 1
        self._optimize()

    def _optimize(self) -> None:
        """Let an embedded store build its indexes once the run's writes are done.

        Qdrant Edge never optimizes in the background; without this, queries scan
        unindexed segments (about 5x slower at 100k points). A Qdrant server optimizes by
        itself and its adapter has no such method.
        """
        optimize = getattr(self.store, "optimize", None)
        if optimize is None or not (self.report.chunks_written or self.report.chunks_deleted):
            return
        t = time.perf_counter()
        optimize()
        self.report.add_time("optimize", time.perf_counter() - t)
