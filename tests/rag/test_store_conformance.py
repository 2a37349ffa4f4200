"""One behaviour suite for every VectorStore backend.

A new backend proves itself by adding one param to the ``store`` fixture. Vectors are tiny
and hand-made (dimension 8) so every expected ranking can be worked out on paper.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from rag import Chunk, FilterError, IndexedChunk, SparseVector, StoreError
from rag._types import chunk_id_for
from rag.stores import Filter, Match, SearchRequest, VectorStore

DIM = 8


def unit(*weights: tuple[int, float]) -> list[float]:
    """Dense vector with the given (axis, weight) entries; cosine ignores length."""
    vector = [0.0] * DIM
    for axis, weight in weights:
        vector[axis] = weight
    return vector


def sparse(**terms: float) -> SparseVector:
    """``sparse(t1=1.0)`` -> indices (1,), values (1.0,)."""
    pairs = sorted((int(name[1:]), value) for name, value in terms.items())
    return SparseVector(tuple(i for i, _ in pairs), tuple(v for _, v in pairs))


def point(
    doc_id: str,
    index: int,
    *,
    dense: list[float],
    terms: SparseVector,
    acl: tuple[str, ...],
    lang: str = "en",
    content_hash: str = "h1",
    text: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> IndexedChunk:
    text = text if text is not None else f"{doc_id} chunk {index}"
    chunk = Chunk(
        chunk_id=chunk_id_for(doc_id, index, f"{doc_id}:{index}"),
        doc_id=doc_id,
        index=index,
        text=text,
        source=f"/data/{doc_id}.pdf",
        pages=(index + 1,),
        section=None,
        element_types=("NarrativeText",),
        acl=acl,
        token_count=len(text.split()),
        metadata={"lang": lang, **(meta or {})},
    )
    return IndexedChunk(chunk, dense, terms, content_hash, chunk_count=2)


#: Two chunks per document. Principals include hostile-looking ones stored literally.
CORPUS: list[IndexedChunk] = [
    point("docA", 0, dense=unit((0, 1.0)), terms=sparse(t1=1.0), acl=("g:hr",)),
    point(
        "docA",
        1,
        dense=unit((0, 1.0), (1, 0.5)),
        terms=sparse(t2=1.0),
        acl=("u:alice",),
        content_hash="h2",
        meta={"draft": "yes", "mixed": 7},
    ),
    point("docB", 0, dense=unit((1, 1.0)), terms=sparse(t1=1.0, t3=1.0), acl=("g:eng",), lang="fr"),
    point(
        "docB",
        1,
        dense=unit((2, 1.0)),
        terms=sparse(t3=2.0),
        acl=("@public",),
        lang="fr",
        meta={"draft": "no", "mixed": "7"},
    ),
    point("docC", 0, dense=unit((3, 1.0)), terms=sparse(t4=1.0), acl=("ğrüp", "g:it")),
    point("docC", 1, dense=unit((4, 1.0)), terms=sparse(t5=1.0), acl=(" ", 'g:"quoted"')),
]
ID = {f"{p.chunk.doc_id[-1]}{p.chunk.index}": p.chunk.chunk_id for p in CORPUS}  # "A0" -> id
NAME = {v: k for k, v in ID.items()}


@pytest.fixture(params=["edge", "qdrant-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "edge":
        from rag.stores._edge import EdgeStore

        backend: VectorStore = EdgeStore(tmp_path / "index" / "test", DIM)
    else:
        from rag.stores._qdrant import QdrantServerStore

        backend = QdrantServerStore(":memory:", "test", DIM)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.upsert(CORPUS)
    return store


def names(hits: list[Any]) -> list[str]:
    return [NAME[h.chunk.chunk_id] for h in hits]


def where(*must: Match, must_not: tuple[Match, ...] = ()) -> Filter:
    return Filter(must=must, must_not=must_not)


def test_implements_port(store: VectorStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.count() == 0


def test_upsert_and_count(filled: VectorStore) -> None:
    assert filled.count() == len(CORPUS)


def test_upsert_is_idempotent_and_replaces_payload(filled: VectorStore) -> None:
    changed = point(
        "docA", 0, dense=unit((0, 1.0)), terms=sparse(t1=1.0), acl=("g:hr",), text="new"
    )
    filled.upsert([*CORPUS[1:], changed])
    assert filled.count() == len(CORPUS)
    chunks, _ = filled.scroll(Filter.of(chunk_id=ID["A0"]))
    assert [c.text for c in chunks] == ["new"]


def test_delete_by_doc_id(filled: VectorStore) -> None:
    filled.delete(Filter.of(doc_id="docA"))
    assert filled.count() == len(CORPUS) - 2
    assert filled.count(Filter.of(doc_id="docA")) == 0


def test_delete_stale_chunks_of_changed_document(filled: VectorStore) -> None:
    # The batch job's rule: drop chunks of a document whose content hash is not the new one.
    filled.delete(where(Match("doc_id", ("docA",)), must_not=(Match("content_hash", ("h2",)),)))
    chunks, _ = filled.scroll(Filter.of(doc_id="docA"))
    assert [c.chunk_id for c in chunks] == [ID["A1"]]
    assert filled.count() == len(CORPUS) - 1


def test_delete_with_empty_filter_is_refused(filled: VectorStore) -> None:
    with pytest.raises(StoreError, match="empty filter"):
        filled.delete(Filter())
    assert filled.count() == len(CORPUS)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter.of(doc_id=("docA", "docB")), 4),
        (where(Match("acl", ("u:alice", "g:hr"))), 2),
        (where(Match("doc_id", ("docB",)), must_not=(Match("acl", ("@public",)),)), 1),
        (where(Match("chunk_index", (1,))), 3),
        (where(Match("pages", (1, 2))), 6),
        (where(Match("meta.draft", ("yes", "no"))), 2),
        (where(Match("meta.draft", ("yes",))), 1),
        (where(Match("meta.mixed", ("7", 7))), 2),  # mixed types: not a MatchAny
        (Filter(), 6),
    ],
)
def test_count_with_filters(filled: VectorStore, flt: Filter, expected: int) -> None:
    assert filled.count(flt) == expected


def test_filter_on_nested_metadata(filled: VectorStore) -> None:
    flt = where(Match("meta.lang", ("fr",)))
    assert filled.count(flt) == 2
    hits = filled.search(SearchRequest("dense", 10, dense=unit((0, 1.0)), filter=flt))
    assert sorted(names(hits)) == ["B0", "B1"]


def test_unknown_filter_key_raises() -> None:
    with pytest.raises(FilterError, match="unknown filter key"):
        Filter.of(owner="alice")
    with pytest.raises(FilterError):
        Match("meta.", ("x",))


def test_boolean_filter_values_are_refused(filled: VectorStore) -> None:
    # qdrant-edge-py 0.9 matches True as the integer 1 (never a stored boolean); both
    # backends refuse rather than let a filter silently match nothing on one of them.
    with pytest.raises(FilterError, match="boolean"):
        filled.count(where(Match("meta.draft", (True,))))


def test_facet_needs_an_indexed_key(filled: VectorStore) -> None:
    with pytest.raises(FilterError, match="payload index"):
        filled.facet("meta.lang")


def test_dense_search_ranks_by_cosine(filled: VectorStore) -> None:
    hits = filled.search(SearchRequest("dense", 3, dense=unit((0, 1.0))))
    assert names(hits)[:2] == ["A0", "A1"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].score > hits[1].score > hits[2].score


def test_sparse_search_only_returns_overlapping_terms(filled: VectorStore) -> None:
    hits = filled.search(SearchRequest("sparse", 10, sparse=sparse(t3=1.0)))
    assert names(hits) == ["B1", "B0"]  # B1 has the larger t3 weight


def test_hybrid_fuses_both_branches(filled: VectorStore) -> None:
    request = SearchRequest(
        "hybrid", 10, dense=unit((0, 1.0)), sparse=sparse(t4=1.0), prefetch_limit=1
    )
    assert sorted(names(filled.search(request))) == ["A0", "C0"]


def test_hybrid_applies_filter_inside_each_branch(filled: VectorStore) -> None:
    # Unfiltered, both branches would put A0 first. With the ACL inside each prefetch,
    # each branch's single slot goes to the one chunk g:eng may read.
    request = SearchRequest(
        "hybrid",
        10,
        dense=unit((0, 1.0)),
        sparse=sparse(t1=1.0),
        filter=where(Match("acl", ("g:eng",))),
        prefetch_limit=1,
    )
    assert names(filled.search(request)) == ["B0"]


@pytest.mark.parametrize(("weights", "first"), [((1.0, 3.0), "C0"), ((3.0, 1.0), "A0")])
def test_hybrid_fusion_weights(
    filled: VectorStore, weights: tuple[float, float], first: str
) -> None:
    request = SearchRequest(
        "hybrid",
        10,
        dense=unit((0, 1.0)),
        sparse=sparse(t4=1.0),
        prefetch_limit=2,
        fusion_weights=weights,
    )
    assert names(filled.search(request))[0] == first


@pytest.mark.parametrize(
    ("principals", "expected"),
    [
        (("u:alice", "g:hr"), ["A0", "A1"]),
        (("@public",), ["B1"]),
        (("*",), []),  # no wildcard semantics
        (("",), []),
        ((" ",), ["C1"]),  # only the chunk that literally lists " "
        (('g:"quoted"',), ["C1"]),
        (("ğrüp",), ["C0"]),
        (("grup", "GRÜP"), []),  # no case or accent folding
        (("g:hr OR 1=1", "g:hr'"), []),
        (("u:nobody",), []),
    ],
)
def test_acl_filter_returns_only_intersecting_chunks(
    filled: VectorStore, principals: tuple[str, ...], expected: list[str]
) -> None:
    acl = where(Match("acl", principals))
    assert filled.count(acl) == len(expected)
    for mode in ("dense", "sparse", "hybrid"):
        request = SearchRequest(
            mode,  # type: ignore[arg-type]
            10,
            dense=unit((0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)),
            sparse=sparse(t1=1.0, t2=1.0, t3=1.0, t4=1.0, t5=1.0),
            filter=acl,
        )
        assert sorted(names(filled.search(request))) == expected, mode


def test_search_request_is_validated(filled: VectorStore) -> None:
    with pytest.raises(StoreError, match="sparse query vector"):
        filled.search(SearchRequest("hybrid", 5, dense=unit((0, 1.0))))
    with pytest.raises(StoreError, match="size 3"):
        filled.search(SearchRequest("dense", 5, dense=[1.0, 0.0, 0.0]))
    with pytest.raises(StoreError, match="hybrid search only"):
        filled.search(SearchRequest("dense", 5, dense=unit((0, 1.0)), fusion_weights=(1, 1)))


def test_upsert_rejects_wrong_dimension(store: VectorStore) -> None:
    bad = point("docZ", 0, dense=[1.0, 0.0], terms=sparse(t1=1.0), acl=("g:hr",))
    with pytest.raises(StoreError, match=bad.chunk.chunk_id):
        store.upsert([bad])
    assert store.count() == 0


def test_scroll_pages_through_every_point_once(filled: VectorStore) -> None:
    seen: list[str] = []
    offset: str | None = None
    for _ in range(10):
        chunks, offset = filled.scroll(limit=4, offset=offset)
        seen.extend(c.chunk_id for c in chunks)
        if offset is None:
            break
        assert isinstance(offset, str)
    assert offset is None
    assert sorted(seen) == sorted(ID.values())


def test_scroll_with_filter(filled: VectorStore) -> None:
    chunks, offset = filled.scroll(Filter.of(doc_id="docC"), limit=10)
    assert sorted(c.chunk_id for c in chunks) == sorted([ID["C0"], ID["C1"]])
    assert offset is None


def test_facet_counts_per_doc_id(filled: VectorStore) -> None:
    assert filled.facet("doc_id") == {"docA": 2, "docB": 2, "docC": 2}
    assert filled.facet("doc_id", where(Match("meta.lang", ("fr",)))) == {"docB": 2}
    assert filled.facet("acl", where(Match("doc_id", ("docC",)))) == {
        "ğrüp": 1,
        "g:it": 1,
        " ": 1,
        'g:"quoted"': 1,
    }


def test_info(filled: VectorStore) -> None:
    info = filled.info()
    assert (info.points, info.documents, info.dimension) == (6, 3, DIM)
    assert info.backend in ("edge", "qdrant")
    assert info.location
    assert info.extra["documents_exact"] is True


def test_payload_round_trip_preserves_every_field(store: VectorStore) -> None:
    chunk = Chunk(
        chunk_id=chunk_id_for("docR", 3, "x"),
        doc_id="docR",
        index=3,
        text='Ünïcode text — with "quotes" and a newline\nhere',
        source="/data/Report 2024 (final).docx",
        pages=(4, 5),
        section=None,
        element_types=("Title", "Table"),
        acl=("g:hr", "@public"),
        token_count=12,
        metadata={"lang": "de", "title": "T", "n": 3, "nested": {"k": [1, 2]}, "sent_at": None},
    )
    store.upsert([IndexedChunk(chunk, unit((5, 1.0)), sparse(t9=0.5), "hash", chunk_count=7)])
    (stored,), _ = store.scroll()
    assert stored == chunk
    assert isinstance(stored.pages, tuple) and stored.section is None
    (hit,) = store.search(SearchRequest("dense", 1, dense=unit((5, 1.0))))
    assert hit.chunk == chunk
