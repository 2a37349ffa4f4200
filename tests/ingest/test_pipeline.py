"""The batch job end to end on small generated files, with a fake embedder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ingest import delete_documents, ingest
from rag import PUBLIC, AccessError, Principal, Retriever, load_settings
from rag._types import doc_id_for
from rag.stores import Filter, open_store
from rag.testing import FakeEmbedder

WORDS = [
    "contract",
    "payment",
    "invoice",
    "supplier",
    "delivery",
    "warranty",
    "liability",
    "notice",
    "term",
]


def write_docs(folder: Path, n: int = 3, paragraphs: int = 6) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        body = "\n\n".join(
            f"Section {j} of document {i}. The {WORDS[(i + j) % len(WORDS)]} clause number {j} "
            f"says that obligations apply for {j + 1} months after signature."
            for j in range(paragraphs)
        )
        p = folder / f"doc{i}.txt"
        p.write_text(f"Document {i}\n\n{body}\n", "utf-8")
        paths.append(p)
    return paths


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(
        home=tmp_path / "home",
        ingest={"workers": 0},
        chunking={"max_tokens": 48, "overlap_tokens": 8},
    )


def points(settings, embedder) -> int:  # type: ignore[no-untyped-def]
    store = open_store(settings, embedder.dimension)
    try:
        return store.count()
    finally:
        store.close()


def test_ingest_then_rerun_skips_everything(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    write_docs(tmp_path / "docs")
    emb = FakeEmbedder()
    first = ingest([tmp_path / "docs"], settings, embedder=emb)
    assert first.ok and first.files_ingested == 3 and first.chunks_written > 3
    n = points(settings, emb)
    assert n == first.chunks_written
    second = ingest([tmp_path / "docs"], settings, embedder=emb)
    assert second.files_unchanged == 3 and second.files_ingested == 0
    assert second.chunks_written == 0 and points(settings, emb) == n
    saved = json.loads(Path(second.report_path).read_text())  # type: ignore[arg-type]
    assert saved["files_unchanged"] == 3


def test_changed_file_replaces_its_chunks_only(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    paths = write_docs(tmp_path / "docs")
    emb = FakeEmbedder()
    ingest([tmp_path / "docs"], settings, embedder=emb)
    paths[1].write_text("Document one, rewritten.\n\nA single short paragraph now.\n", "utf-8")
    report = ingest([tmp_path / "docs"], settings, embedder=emb)
    assert report.files_ingested == 1 and report.files_unchanged == 2
    assert report.chunks_deleted > 0
    # Same state as a clean run over the current files.
    clean = settings.model_copy(update={"home": tmp_path / "clean"})
    ingest([tmp_path / "docs"], clean, embedder=emb)
    assert points(settings, emb) == points(clean, emb)


def test_bad_input_is_reported_and_the_rest_is_ingested(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    write_docs(docs, n=2)
    (docs / "empty.txt").write_bytes(b"")
    (docs / "archive.zip").write_bytes(b"PK\x03\x04not really")
    (docs / "broken.docx").write_bytes(os.urandom(2048))
    report = ingest([docs, tmp_path / "missing"], settings, embedder=FakeEmbedder())
    assert not report.ok
    assert report.files_ingested == 2
    reasons = {Path(e.path).name: e.reason for e in report.errors}
    assert reasons["missing"] == "not_found"
    assert reasons["empty.txt"] == "empty"
    assert reasons["archive.zip"] == "unsupported"
    assert reasons["broken.docx"] == "corrupt"
    assert all(e.stage for e in report.errors)


def test_report_and_index_metadata_hold_no_document_text(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Zanzibarquux is the secret codeword.\n", "utf-8")
    (docs / "b.docx").write_bytes(b"Zanzibarquux" + os.urandom(512))  # fails to parse
    report = ingest([docs], settings, embedder=FakeEmbedder())
    raw = Path(report.report_path).read_bytes()  # type: ignore[arg-type]
    assert b"Zanzibarquux" not in raw


def test_delete_by_path_and_by_doc_id(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    paths = write_docs(tmp_path / "docs")
    emb = FakeEmbedder()
    ingest([tmp_path / "docs"], settings, embedder=emb)
    store = open_store(settings, emb.dimension)
    try:
        removed = delete_documents([str(paths[0])], store)
        assert removed[doc_id_for(paths[0])] > 0
        assert store.count(Filter.of(doc_id=doc_id_for(paths[0]))) == 0
        removed = delete_documents([doc_id_for(paths[1])], store)
        assert sum(removed.values()) > 0
        remaining = store.count()
        assert remaining == store.count(Filter.of(doc_id=doc_id_for(paths[2])))
    finally:
        store.close()
    # the deleted files come back on the next run; the untouched one is skipped
    report = ingest([tmp_path / "docs"], settings, embedder=emb)
    assert report.files_ingested == 2 and report.files_unchanged == 1


def test_acl_sidecars_and_rules_are_enforced_in_search(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / ".acl").write_text("group:hr\n# comment\n", "utf-8")
    (docs / "hr" / "salaries.txt").write_text("Salary bands for engineers.\n", "utf-8")
    (docs / "memo.txt").write_text("Salary review memo for the board.\n", "utf-8")
    (docs / "memo.txt.acl").write_text("user:ceo\n", "utf-8")
    (docs / "handbook.txt").write_text("Salary is paid monthly.\n", "utf-8")
    emb = FakeEmbedder()
    report = ingest([docs], settings, embedder=emb)
    assert report.ok and report.files_ingested == 3  # .acl files are not documents
    store = open_store(settings, emb.dimension)
    try:
        retriever = Retriever(settings, embedder=emb, store=store)

        def sources(user: str | None, groups: tuple[str, ...] = ()) -> set[str]:
            hits = retriever.retrieve("salary", Principal(user, groups), k=10).hits
            return {Path(h.chunk.source).name for h in hits}

        with pytest.raises(AccessError, match="access-controlled"):
            retriever.retrieve("salary", None)
        assert sources("alice", ("hr",)) == {"handbook.txt", "salaries.txt"}
        assert sources("ceo") == {"handbook.txt", "memo.txt"}
        assert sources("*", ("*", "hr'", "héé")) == {"handbook.txt"}
    finally:
        store.close()
    assert PUBLIC == "@public"


class _CrashAfter:
    """Store wrapper that dies after ``n`` writes (upserts or deletes), like kill -9."""

    def __init__(self, inner, n: int) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.left = inner, n

    def _tick(self) -> None:
        if self.left == 0:
            raise KeyboardInterrupt("simulated crash")
        self.left -= 1

    def upsert(self, points) -> None:  # type: ignore[no-untyped-def]
        self._tick()
        self.inner.upsert(points)

    def delete(self, where) -> None:  # type: ignore[no-untyped-def]
        self._tick()
        self.inner.delete(where)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


# Two changed documents: upsert, delete, upsert, delete. Crash before each write.
@pytest.mark.parametrize("crash_after", [0, 1, 2, 3])
def test_rerun_after_a_crash_ends_like_a_clean_run(
    tmp_path: Path,
    settings,
    crash_after: int,  # type: ignore[no-untyped-def]
) -> None:
    paths = write_docs(tmp_path / "docs", n=4, paragraphs=12)
    emb = FakeEmbedder()
    ingest([tmp_path / "docs"], settings, embedder=emb)
    paths[0].write_text("Changed.\n\n" + "New words here. " * 40, "utf-8")
    paths[2].write_text("Also changed, much shorter.\n", "utf-8")
    store = open_store(settings, emb.dimension)
    with pytest.raises(KeyboardInterrupt):
        ingest([tmp_path / "docs"], settings, embedder=emb, store=_CrashAfter(store, crash_after))
    store.close()
    ingest([tmp_path / "docs"], settings, embedder=emb)
    clean = settings.model_copy(update={"home": tmp_path / "clean"})
    ingest([tmp_path / "docs"], clean, embedder=emb)
    assert points(settings, emb) == points(clean, emb)
    again = ingest([tmp_path / "docs"], settings, embedder=emb)
    assert again.files_unchanged == 4


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from rag import load_settings
    from rag.testing import FakeEmbedder
    from ingest import ingest

    class Slow(FakeEmbedder):
        def embed_passages(self, texts):
            print("embedding", flush=True)
            time.sleep(0.3)
            return super().embed_passages(texts)

    settings = load_settings(home=sys.argv[1], ingest={"workers": 0, "embed_group": 4},
                             chunking={"max_tokens": 48, "overlap_tokens": 8})
    ingest([sys.argv[2]], settings, embedder=Slow())
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_gives_the_clean_point_count(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    write_docs(docs, n=6, paragraphs=10)
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT, "utf-8")
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(home), str(docs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = 0
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # bounded: the script ends by itself, and so does the deadline
        seen += line.startswith("embedding")
        if seen >= 12 or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    emb = FakeEmbedder()
    partial = points(settings, emb)
    report = ingest([docs], settings, embedder=emb)
    assert report.ok
    clean = settings.model_copy(update={"home": tmp_path / "clean"})
    ingest([docs], clean, embedder=emb)
    # The kill landed mid-run (some documents written, not all), and the re-run repaired it.
    assert 0 < partial < points(clean, emb)
    assert points(settings, emb) == points(clean, emb)


@pytest.mark.slow
def test_parser_processes_give_the_same_index_as_in_process(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    write_docs(tmp_path / "docs", n=3)
    emb = FakeEmbedder()
    in_process = ingest([tmp_path / "docs"], settings, embedder=emb)
    pooled_settings = settings.model_copy(
        update={
            "home": tmp_path / "pooled",
            "ingest": settings.ingest.model_copy(update={"workers": 1}),
        }
    )
    pooled = ingest([tmp_path / "docs"], pooled_settings, embedder=emb)
    assert pooled.ok and pooled.chunks_written == in_process.chunks_written
    assert points(pooled_settings, emb) == points(settings, emb)


def test_prune_removes_documents_whose_files_are_gone(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    paths = write_docs(tmp_path / "docs", n=3)
    emb = FakeEmbedder()
    ingest([tmp_path / "docs"], settings, embedder=emb)
    paths[1].unlink()
    kept = ingest([tmp_path / "docs"], settings, embedder=emb)  # without prune: kept
    assert kept.files_removed == 0
    store = open_store(settings, emb.dimension)
    try:
        assert store.count(Filter.of(doc_id=doc_id_for(paths[1]))) > 0
    finally:
        store.close()
    pruned = ingest([tmp_path / "docs"], settings, embedder=emb, prune=True)
    assert pruned.files_removed == 1 and pruned.files_unchanged == 2
    clean = settings.model_copy(update={"home": tmp_path / "clean"})
    ingest([tmp_path / "docs"], clean, embedder=emb)
    assert points(settings, emb) == points(clean, emb)


def test_the_whole_job_runs_on_the_server_backend(tmp_path: Path) -> None:
    from rag.stores._qdrant import QdrantServerStore

    settings = load_settings(
        home=tmp_path / "home",
        store={"backend": "qdrant", "url": ":memory:"},
        ingest={"workers": 0},
        chunking={"max_tokens": 48, "overlap_tokens": 8},
    )
    write_docs(tmp_path / "docs", n=3)
    emb = FakeEmbedder()
    # One in-memory "server" shared by both runs (each open of ":memory:" is a new one).
    store = QdrantServerStore(":memory:", "documents", emb.dimension)
    first = ingest([tmp_path / "docs"], settings, embedder=emb, store=store)
    second = ingest([tmp_path / "docs"], settings, embedder=emb, store=store)
    assert first.ok and first.files_ingested == 3
    assert second.files_unchanged == 3 and store.count() == first.chunks_written
    retriever = Retriever(settings, embedder=emb, store=store)
    hits = retriever.retrieve("payment clause", None, k=3).hits  # all public: no principal needed
    assert hits and all(h.chunk.acl == (PUBLIC,) for h in hits)
    store.close()
