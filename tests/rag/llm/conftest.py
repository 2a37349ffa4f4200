"""A small indexed corpus on an in-memory Qdrant, for answer-stage tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import PUBLIC, Bm25Encoder, Chunk, IndexedChunk, load_settings
from rag._types import chunk_id_for
from rag.testing import FakeEmbedder

#: (doc, index, text, acl, pages)
CORPUS = [
    ("lease", 0, "The tenant must give ninety days notice before terminating the lease. "
     "Rent is due on the first day of each month.", (PUBLIC,), (3,)),
    ("lease", 1, "The landlord repairs the heating system within ten days of a written "
     "request.", (PUBLIC,), (4,)),
    ("policy", 0, "Employees may work from home two days per week with their manager's "
     "approval.", (PUBLIC,), (1,)),
    ("hr", 0, "The salary review for the engineering team happens every March.",
     ("group:hr",), (2,)),
    ("travel", 0, "Travel expenses are reimbursed within thirty days of the claim.",
     (PUBLIC,), (7,)),
]  # fmt: skip


def make_chunks() -> list[Chunk]:
    return [
        Chunk(
            chunk_id_for(doc, index, text),
            doc,
            index,
            text,
            f"/docs/{doc}.pdf",
            pages,
            None,
            ("NarrativeText",),
            acl,
            len(text.split()),
        )
        for doc, index, text, acl, pages in CORPUS
    ]


@pytest.fixture
def llm_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(
        home=tmp_path / "home",
        retrieval={"k": 3},
        llm={"max_retries": 0, "tokens_per_minute": None, "requests_per_minute": None},
    )


@pytest.fixture
def corpus_store(llm_settings) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from rag.stores._qdrant import QdrantServerStore

    embedder = FakeEmbedder(dimension=32, max_tokens=512)
    store = QdrantServerStore(":memory:", "documents", 32)
    bm25 = Bm25Encoder(llm_settings.sparse)
    store.upsert(
        [
            IndexedChunk(
                c, embedder.embed_passages([c.text])[0], bm25.encode_document(c.text), "h", 1
            )
            for c in make_chunks()
        ]
    )
    try:
        yield embedder, store
    finally:
        store.close()
