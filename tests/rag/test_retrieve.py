"""Retriever: fail-closed access control, filters, de-duplication, fusion; both backends."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path

import pytest

from rag import (
    PUBLIC,
    AccessError,
    Bm25Encoder,
    Chunk,
    FilterError,
    IndexedChunk,
    Principal,
    RagError,
    Retriever,
    SparseVector,
    load_settings,
)
from rag._retrieve import TIE_BREAK, fusion_weights_for
from rag._types import chunk_id_for
from rag.stores import Filter, Match, Range, SearchRequest, VectorStore
from rag.testing import FakeEmbedder

BOILERPLATE = "This message is confidential and intended only for the named recipient of it."
#: (doc, index, text, acl, meta). Hostile-looking principals are stored literally.
DOCS: list[tuple[str, int, str, tuple[str, ...], dict[str, object]]] = [
    ("handbook", 0, "Salary is paid monthly on the last working day.", (PUBLIC,), {}),
    ("salaries", 0, "Salary bands for engineers and salary review.", ("group:hr",), {}),
    ("memo", 0, "Salary review memo for the board, salary freeze.", ("user:ceo",), {}),
    ("quotes", 0, "Salary note for the quoted group.", ('group:"hr" OR 1=1',), {}),
    ("cafe", 0, "Salary of the café staff.", (unicodedata.normalize("NFC", "group:café"),), {}),
    ("contract", 0, "Termination needs ninety days notice.", (PUBLIC,), {"kind": "contract"}),
    ("contract", 1, "Notice periods renew yearly.", (PUBLIC,), {"kind": "contract"}),
    ("contract", 2, "Governing law is Delaware.", (PUBLIC,), {"kind": "contract"}),
    ("person", 0, "Payment approved by <PERSON_3f9a1c> on site.", (PUBLIC,), {}),
] + [(f"mail{i}", 0, f"{BOILERPLATE} Ref {i}.", (PUBLIC,), {}) for i in range(5)]


def indexed(settings, embedder: FakeEmbedder) -> list[IndexedChunk]:  # type: ignore[no-untyped-def]
    bm25 = Bm25Encoder(settings.sparse)
    points = []
    for n, (doc, index, text, acl, meta) in enumerate(DOCS):
        dated = {"modified_at": f"2024-0{1 + n % 9}-15T10:00:00Z", **meta}
        chunk = Chunk(
            chunk_id_for(doc, index, text), doc, index, text, f"/docs/{doc}.txt", (1,), None,
            ("NarrativeText",), acl, len(text.split()), dated,
        )  # fmt: skip
        dense = embedder.embed_passages([text])[0]
        points.append(IndexedChunk(chunk, dense, bm25.encode_document(text), "h", 1))
    return points


@pytest.fixture(params=["edge", "qdrant-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "edge":
        from rag.stores._edge import EdgeStore

        backend: VectorStore = EdgeStore(tmp_path / "idx", 64)
    else:
        from rag.stores._qdrant import QdrantServerStore

        backend = QdrantServerStore(":memory:", "documents", 64)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(home=tmp_path / "home")


@pytest.fixture
def retriever(settings, store: VectorStore) -> Retriever:  # type: ignore[no-untyped-def]
    embedder = FakeEmbedder()
    store.upsert(indexed(settings, embedder))
    return Retriever(settings, embedder=embedder, store=store)


RESTRICTED = {"salaries", "memo", "quotes", "cafe"}


def docs(retriever: Retriever, principal: Principal | None, question: str = "salary") -> set[str]:
    """Documents matching ``question`` lexically; dense and hybrid must agree on access."""
    found = {
        h.chunk.doc_id for h in retriever.retrieve(question, principal, k=20, mode="sparse").hits
    }
    for mode in ("dense", "hybrid"):
        more = {
            h.chunk.doc_id for h in retriever.retrieve(question, principal, k=20, mode=mode).hits
        }
        assert more & RESTRICTED == found & RESTRICTED, mode
    return found


def test_each_principal_sees_public_chunks_and_its_own(retriever: Retriever) -> None:
    public = {"handbook"}
    assert docs(retriever, Principal("alice")) == public
    assert docs(retriever, Principal("alice", ("hr",))) == public | {"salaries"}
    assert docs(retriever, Principal("ceo")) == public | {"memo"}
    assert docs(retriever, Principal(groups=('"hr" OR 1=1',))) == public | {"quotes"}
    nfd = unicodedata.normalize("NFD", "café")
    assert docs(retriever, Principal(groups=(nfd,))) == public | {"cafe"}


@pytest.mark.parametrize(
    "principal",
    [
        Principal("*"),
        Principal(groups=("*",)),
        Principal("nobody", ("hr'", "HR", "hr ", "group:hr")[:2]),
        Principal("ceo ".strip() + "x"),
        Principal(groups=("@public", "%", "_", ".*", "hr\\")),
        Principal("user:ceo"),
    ],
    ids=["star-user", "star-group", "near-hr", "near-ceo", "patterns", "prefixed"],
)
def test_adversarial_principals_get_nothing_they_should_not(
    retriever: Retriever, principal: Principal
) -> None:
    assert docs(retriever, principal) == {"handbook"}


@pytest.mark.parametrize(
    ("user", "groups"),
    [("", ()), ("   ", ()), (None, ("",)), ("bob", (" hr",)), ("a\x00b", ()), ("x\u200b", ())],
)
def test_malformed_names_are_refused(user: str | None, groups: tuple[str, ...]) -> None:
    with pytest.raises(AccessError):
        Principal(user, groups)


def test_no_principal_is_refused_on_a_collection_with_restricted_chunks(
    retriever: Retriever,
) -> None:
    for principal in (None, Principal()):
        with pytest.raises(AccessError, match="access-controlled"):
            retriever.retrieve("salary", principal)
    with pytest.raises(AccessError, match=r"rag\.Principal"):
        retriever.retrieve("salary", "alice")  # type: ignore[arg-type]


def test_no_principal_is_allowed_when_every_chunk_is_public(settings, store) -> None:  # type: ignore[no-untyped-def]
    embedder = FakeEmbedder()
    store.upsert([p for p in indexed(settings, embedder) if p.chunk.acl == (PUBLIC,)])
    found = Retriever(settings, embedder=embedder, store=store).retrieve(
        "salary", None, mode="sparse"
    )
    assert {h.chunk.doc_id for h in found.hits} == {"handbook"}


class Recording:
    """A store wrapper that records search requests (to see where the ACL goes)."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.requests: list[SearchRequest] = []

    def search(self, request: SearchRequest):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        return self.inner.search(request)

    def count(self, where: Filter | None = None) -> int:
        return self.inner.count(where)


def test_acl_is_part_of_the_store_query_not_a_post_filter(settings, store) -> None:  # type: ignore[no-untyped-def]
    embedder = FakeEmbedder()
    store.upsert(indexed(settings, embedder))
    recording = Recording(store)
    retriever = Retriever(settings, embedder=embedder, store=recording)  # type: ignore[arg-type]
    retriever.retrieve("salary", Principal("alice", ("hr",)), {"source": "/docs/salaries.txt"})
    request = recording.requests[0]
    assert request.filter is not None
    assert Match("acl", (PUBLIC, "user:alice", "group:hr")) in request.filter.must
    assert Match("source", ("/docs/salaries.txt",)) in request.filter.must


def test_filters_on_ids_sources_metadata_and_dates(retriever: Retriever) -> None:
    anyone = Principal("alice")
    by_doc = retriever.retrieve("notice", anyone, {"doc_id": "contract"}, k=10).hits
    assert {h.chunk.doc_id for h in by_doc} == {"contract"} and len(by_doc) == 3
    by_meta = retriever.retrieve("notice", anyone, {"meta.kind": "contract"}, k=10).hits
    assert len(by_meta) == 3
    ranged = Filter(must=(Match("doc_id", ("contract",)), Range("chunk_index", gte=1)))
    assert {h.chunk.index for h in retriever.retrieve("notice", anyone, ranged, k=10).hits} == {
        1,
        2,
    }
    # DOCS[5..7] (the contract) were "modified" in June, July and August 2024.
    summer = Filter(must=(Range("meta.modified_at", gte=date(2024, 7, 1)),))
    dated = retriever.retrieve("notice", anyone, summer & Filter.of(doc_id="contract"), k=10)
    assert {h.chunk.index for h in dated.hits} == {1, 2}
    before = Filter(must=(Range("meta.modified_at", lt=datetime(2024, 6, 16)),))
    early = retriever.retrieve("notice", anyone, before & Filter.of(doc_id="contract"), k=10)
    assert {h.chunk.index for h in early.hits} == {0}


def test_unknown_filter_keys_and_bad_values_are_errors(retriever: Retriever) -> None:
    anyone = Principal("alice")
    with pytest.raises(FilterError, match="unknown filter key"):
        retriever.retrieve("notice", anyone, {"docid": "contract"})
    with pytest.raises(FilterError, match="no values"):
        retriever.retrieve("notice", anyone, {"doc_id": []})
    with pytest.raises(FilterError, match="mixes"):
        Range("meta.modified_at", gte=1, lte=date(2024, 1, 1))
    with pytest.raises(FilterError, match="no bound"):
        Range("chunk_index")
    with pytest.raises(RagError, match="question is empty"):
        retriever.retrieve("  ", anyone)


def test_near_duplicates_do_not_fill_the_results(retriever: Retriever) -> None:
    found = retriever.retrieve(BOILERPLATE, Principal("alice"), k=5)
    mails = [h for h in found.hits if h.chunk.doc_id.startswith("mail")]
    assert len(mails) == 1 and len(found.dropped) == 4
    assert {d.duplicate_of for d in found.dropped} == {mails[0].chunk.chunk_id}


def test_placeholders_are_found_as_one_term_in_every_mode(retriever: Retriever) -> None:
    for mode in ("sparse", "hybrid"):
        found = retriever.retrieve("<PERSON_3f9a1c>", Principal("alice"), k=1, mode=mode)
        assert [h.chunk.doc_id for h in found.hits] == ["person"], mode


def test_query_steps_rewrite_the_question_before_it_is_searched(settings, store) -> None:  # type: ignore[no-untyped-def]
    embedder = FakeEmbedder()
    store.upsert(indexed(settings, embedder))

    def pseudonymize(text: str) -> str:
        return text.replace("John Smith", "<PERSON_3f9a1c>")

    retriever = Retriever(settings, embedder=embedder, store=store, query_steps=[pseudonymize])
    found = retriever.retrieve("Who is John Smith?", Principal("alice"), k=1)
    assert found.question == "Who is <PERSON_3f9a1c>?" and embedder.queries[-1] == found.question
    assert found.hits[0].chunk.doc_id == "person"


def test_fusion_weights_follow_the_embedding_languages() -> None:
    # English corpus, English model: equal up to the tie-break that makes results repeatable.
    assert fusion_weights_for(load_settings()) == (TIE_BREAK, 1.0)
    french = load_settings(sparse={"language": "french"})
    assert fusion_weights_for(french) == (french.retrieval.foreign_dense_weight * TIE_BREAK, 1.0)
    multilingual = load_settings(sparse={"language": "french"}, embedding={"languages": ["fr"]})
    assert fusion_weights_for(multilingual) == (TIE_BREAK, 1.0)
    fixed = load_settings(retrieval={"fusion_weights": [2.0, 1.0]})
    assert fusion_weights_for(fixed) == (2.0, 1.0)


def test_fused_ties_go_to_bm25_so_results_are_repeatable(settings, store) -> None:  # type: ignore[no-untyped-def]
    # X is dense #1 and BM25 #2, Y the reverse: under equal weights their fused scores tie,
    # and Qdrant does not break ties, so the order could change from call to call.
    def point(name: str, dense: list[float], bm25: float) -> IndexedChunk:
        chunk = Chunk(chunk_id_for(name, 0, name), name, 0, name, name, (), None, (), (PUBLIC,), 1)
        return IndexedChunk(chunk, dense, SparseVector((7,), (bm25,)), "h", 1)

    x = [1.0, 0.0] + [0.0] * 62
    y = [0.8, 0.6] + [0.0] * 62
    store.upsert([point("X", x, 1.0), point("Y", y, 2.0)])
    request = SearchRequest(
        "hybrid", 2, dense=x, sparse=SparseVector((7,), (1.0,)),
        fusion_weights=fusion_weights_for(settings),
    )  # fmt: skip
    for _ in range(5):
        hits = store.search(request)
        assert [h.chunk.doc_id for h in hits] == ["Y", "X"]
        assert hits[0].score > hits[1].score


def test_k_and_modes_are_checked(retriever: Retriever) -> None:
    anyone = Principal("alice")
    with pytest.raises(RagError, match="k must be"):
        retriever.retrieve("notice", anyone, k=0)
    with pytest.raises(RagError, match="unknown search mode"):
        retriever.retrieve("notice", anyone, mode="fuzzy")  # type: ignore[arg-type]
    only_stopwords = retriever.retrieve("the of and", anyone, mode="hybrid")
    assert only_stopwords.mode == "dense"  # no lexical signal left: dense alone
    for mode in ("dense", "sparse", "hybrid"):
        hits: Sequence[object] = retriever.retrieve(
            "ninety days notice", anyone, k=2, mode=mode
        ).hits
        assert len(hits) <= 2
