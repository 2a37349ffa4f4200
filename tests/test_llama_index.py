"""Our chunker, embedder, retriever and context packer inside plain LlamaIndex pipelines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from ingest import ingest
from ingest.llama_index import MistralTokenChunker
from rag import (
    AccessError,
    ContextPacker,
    EmbeddingError,
    FilterError,
    MistralTokens,
    Principal,
    RagError,
    Retriever,
    load_settings,
)
from rag._types import doc_id_for
from rag.llama_index import (
    ContextPackerPostprocessor,
    LlamaIndexEmbedding,
    SovereignRetriever,
    translate_filters,
)
from rag.stores import Filter, Match, Range
from rag.stores._qdrant import QdrantServerStore
from rag.testing import FakeEmbedder


def test_pipeline_nodes_fit_and_are_embedded() -> None:
    settings = load_settings(chunking={"max_tokens": 64, "overlap_tokens": 8})
    embedder = FakeEmbedder(max_tokens=40)
    text = "# Payment\n\n" + " ".join(f"Invoices are due in {i} days." for i in range(80))
    pipeline = IngestionPipeline(
        transformations=[
            MistralTokenChunker.from_settings(settings, embedder),
            LlamaIndexEmbedding(embedder),
        ]
    )
    document = Document(text=text, id_="contract-1", metadata={"client": "Example Corp Ltd"})
    nodes = pipeline.run(documents=[document])
    tok = MistralTokens(settings.tokenizer_version())
    assert len(nodes) > 3
    for node in nodes:
        assert tok.count(node.get_content()) <= 64
        # what LlamaIndex actually embeds: inherited metadata + text
        assert embedder.count_tokens(node.get_content(MetadataMode.EMBED)) <= 40
        assert node.embedding is not None and len(node.embedding) == embedder.dimension
        assert node.ref_doc_id == "contract-1"
    assert nodes[0].metadata["section"] == "Payment"


def test_embedding_refuses_to_truncate() -> None:
    embed = LlamaIndexEmbedding(FakeEmbedder(max_tokens=5))
    with pytest.raises(EmbeddingError):
        embed.get_text_embedding("one two three four five six seven")
    assert len(embed.get_query_embedding("a long query " * 20)) == 64


# -- retriever and context packer -----------------------------------------------------------
WINTER = datetime(2023, 3, 1, tzinfo=UTC).timestamp()
SUMMER = datetime(2024, 6, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Corpus:
    retriever: Retriever
    payment: str
    delivery: str
    salaries: str


def _write(folder: Path, name: str, title: str, lines: list[str], mtime: float) -> str:
    path = folder / name
    path.write_text(title + "\n\n" + "\n\n".join(lines) + "\n", "utf-8")
    os.utime(path, (mtime, mtime))
    return doc_id_for(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """Two public documents and one only group hr may read, ingested once."""
    tmp = tmp_path_factory.mktemp("llama")
    docs = tmp / "docs"
    docs.mkdir()
    payment = _write(
        docs,
        "payment.txt",
        "Payment terms",
        [
            f"Invoice rule {i}: the supplier invoice is payable within {30 + i} days."
            for i in range(6)
        ],
        WINTER,
    )
    delivery = _write(
        docs,
        "delivery.txt",
        "Delivery",
        [f"Delivery rule {i}: goods ship to warehouse {i} within {i + 2} weeks." for i in range(6)],
        SUMMER,
    )
    salaries = _write(
        docs,
        "salaries.txt",
        "Salaries",
        [f"Salary band {i}: the yearly bonus is {i + 3} percent of the salary." for i in range(4)],
        SUMMER,
    )
    (docs / "salaries.txt.acl").write_text("group:hr\n", "utf-8")
    settings = load_settings(
        home=tmp / "home",
        ingest={"workers": 0},
        chunking={"max_tokens": 48, "overlap_tokens": 8},
    )
    store = QdrantServerStore(":memory:", "documents", 64)
    try:
        report = ingest([docs], settings, embedder=FakeEmbedder(), store=store)
        assert report.ok and report.files_ingested == 3
        retriever = Retriever(settings, embedder=FakeEmbedder(), store=store)
        yield Corpus(retriever, payment, delivery, salaries)
    finally:
        store.close()


BOB = Principal("bob")
CAROL = Principal("carol", ("hr",))


def doc_ids(nodes: list[NodeWithScore]) -> set[str]:
    return {n.node.metadata["doc_id"] for n in nodes}


def test_retriever_returns_our_chunks_with_metadata(corpus: Corpus) -> None:
    retriever = SovereignRetriever(corpus.retriever, BOB, k=3)
    nodes = retriever.retrieve("When is the supplier invoice payable?")
    assert retriever.last_retrieval is not None
    hits = retriever.last_retrieval.hits
    assert [n.node.node_id for n in nodes] == [h.chunk.chunk_id for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    for node, hit in zip(nodes, hits, strict=True):
        meta = node.node.metadata
        assert node.node.get_content() == hit.chunk.text
        assert node.node.source_node is not None
        assert node.node.source_node.node_id == meta["doc_id"] == hit.chunk.doc_id
        assert meta["chunk_index"] == hit.chunk.index
        assert meta["source"].endswith(".txt") and meta["section"] == hit.chunk.section
        assert meta["meta.modified_at"] == hit.chunk.metadata["modified_at"]
        assert json.loads(json.dumps(meta)) == meta
        # The index embedded the bare text; the LLM sees where it comes from, no ids.
        assert node.node.get_content(MetadataMode.EMBED) == hit.chunk.text
        llm_view = node.node.get_content(MetadataMode.LLM)
        assert "source: " in llm_view and "doc_id" not in llm_view and "meta." not in llm_view
    assert nodes[0].node.metadata["doc_id"] == corpus.payment


def test_restricted_document_needs_the_group(corpus: Corpus) -> None:
    question = "What is the yearly salary bonus percent?"
    as_bob = SovereignRetriever(corpus.retriever, BOB, k=10).retrieve(question)
    as_carol = SovereignRetriever(corpus.retriever, CAROL, k=10).retrieve(question)
    assert as_bob and corpus.salaries not in doc_ids(as_bob)
    assert as_carol[0].node.metadata["doc_id"] == corpus.salaries
    anonymous = SovereignRetriever(corpus.retriever, None)
    with pytest.raises(AccessError):
        anonymous.retrieve(question)
    with pytest.raises(AccessError):
        SovereignRetriever(corpus.retriever, "bob")  # type: ignore[arg-type]


def test_doc_id_filter_hits_our_document_id(corpus: Corpus) -> None:
    # LlamaIndex's Qdrant store overwrites a payload key named doc_id, so this filter
    # finds nothing there; here doc_id is our document id.
    question = "When is the supplier invoice payable?"
    only = MetadataFilters(filters=[MetadataFilter(key="doc_id", value=corpus.delivery)])
    nodes = SovereignRetriever(corpus.retriever, BOB, k=10, filters=only).retrieve(question)
    assert nodes and doc_ids(nodes) == {corpus.delivery}
    both = MetadataFilters(
        filters=[
            MetadataFilter(
                key="doc_id", value=[corpus.delivery, corpus.salaries], operator=FilterOperator.IN
            )
        ]
    )
    nodes = SovereignRetriever(corpus.retriever, CAROL, k=20, filters=both).retrieve(question)
    assert doc_ids(nodes) == {corpus.delivery, corpus.salaries}
    not_payment = MetadataFilters(
        filters=[MetadataFilter(key="doc_id", value=corpus.payment, operator=FilterOperator.NE)]
    )
    nodes = SovereignRetriever(corpus.retriever, BOB, k=20, filters=not_payment).retrieve(question)
    assert doc_ids(nodes) == {corpus.delivery}


@pytest.mark.parametrize(
    "filters",
    [
        MetadataFilters(filters=[MetadataFilter(key="file_name", value="payment.txt")]),
        MetadataFilters(filters=[MetadataFilter(key="ref_doc_id", value="x")]),
        {"author": "someone"},
    ],
    ids=["llama-file_name", "llama-ref_doc_id", "mapping"],
)
def test_unknown_filter_key_is_an_error(corpus: Corpus, filters: object) -> None:
    with pytest.raises(FilterError, match="unknown filter key"):
        SovereignRetriever(corpus.retriever, BOB, filters=filters)  # type: ignore[arg-type]


def one(key: str, value: Any, op: FilterOperator = FilterOperator.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            MetadataFilters(
                filters=[one("doc_id", "a"), one("source", "b")], condition=FilterCondition.OR
            ),
            "OR filters are not supported",
        ),
        (MetadataFilters(filters=[one("section", "Pay", FilterOperator.TEXT_MATCH)]), "text_match"),
        (MetadataFilters(filters=[one("section", None, FilterOperator.IS_EMPTY)]), "is_empty"),
        (MetadataFilters(filters=[one("meta.score", 0.5)]), "float exactly"),
        (MetadataFilters(filters=[one("doc_id", ["a", "b"])]), "use 'in'"),
        (MetadataFilters(filters=[one("source", "a", FilterOperator.GT)]), "needs a number"),
        (
            MetadataFilters(filters=[one("meta.modified_at", "last week", FilterOperator.GTE)]),
            "ISO 8601",
        ),
        (
            MetadataFilters(
                filters=[one("doc_id", "a", FilterOperator.NE)], condition=FilterCondition.NOT
            ),
            "NOT over",
        ),
    ],
    ids=["or", "text-match", "is-empty", "float-eq", "eq-list", "text-range", "bad-date", "not-ne"],
)
def test_unsupported_filters_are_errors(filters: MetadataFilters, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        translate_filters(filters)


def test_filters_translate_to_store_conditions() -> None:
    nested = MetadataFilters(
        filters=[
            one("doc_id", ["a", "b"], FilterOperator.NIN),
            MetadataFilters(filters=[one("pages", 3), one("chunk_index", 2, FilterOperator.LT)]),
            one("meta.modified_at", "2024-01-01", FilterOperator.GTE),
        ]
    )
    assert translate_filters(nested) == Filter(
        must=(
            Match("pages", (3,)),
            Range("chunk_index", lt=2),
            Range("meta.modified_at", gte=datetime(2024, 1, 1)),
        ),
        must_not=(Match("doc_id", ("a", "b")),),
    )
    negated = MetadataFilters(
        filters=[one("section", "Delivery"), one("chunk_index", 4, FilterOperator.GTE)],
        condition=FilterCondition.NOT,
    )
    assert translate_filters(negated) == Filter(
        must_not=(Match("section", ("Delivery",)), Range("chunk_index", gte=4))
    )


def test_range_filters(corpus: Corpus) -> None:
    question = "supplier invoice delivery warehouse salary"
    later = MetadataFilters(filters=[one("chunk_index", 1, FilterOperator.GTE)])
    nodes = SovereignRetriever(corpus.retriever, BOB, k=20, filters=later).retrieve(question)
    assert nodes and all(n.node.metadata["chunk_index"] >= 1 for n in nodes)
    assert doc_ids(nodes) == {corpus.payment, corpus.delivery}
    since_2024 = MetadataFilters(
        filters=[one("meta.modified_at", "2024-01-01", FilterOperator.GTE)]
    )
    nodes = SovereignRetriever(corpus.retriever, CAROL, k=20, filters=since_2024).retrieve(question)
    assert doc_ids(nodes) == {corpus.delivery, corpus.salaries}
    before = MetadataFilters(
        filters=[one("meta.modified_at", "2024-01-01T00:00:00Z", FilterOperator.LT)]
    )
    nodes = SovereignRetriever(corpus.retriever, CAROL, k=20, filters=before).retrieve(question)
    assert doc_ids(nodes) == {corpus.payment}


LONG = [
    " ".join(
        f"{topic} clause {i} obliges the {party} to act within {i + 2} days." for i in range(12)
    )
    for topic, party in [
        ("Payment", "buyer"),
        ("Warranty", "seller"),
        ("Liability", "insurer"),
        ("Termination", "agent"),
    ]
]


def test_postprocessor_fits_a_small_window_with_plain_nodes() -> None:
    nodes = [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=text), score=1.0 - i / 10)
        for i, text in enumerate(LONG)
    ]
    post = ContextPackerPostprocessor(window=600, answer_tokens=100)
    out = post.postprocess_nodes(nodes, query_str="Who must act within five days?")
    packed = post.last_packed
    assert packed is not None
    assert packed.tokens.total <= 600 - 100
    assert packed.count_exact() == packed.tokens.total
    assert 0 < len(out) < len(nodes)
    assert {d.reason for d in packed.dropped} == {"over_budget"}
    assert [n.node.get_content() for n in out] == [b.text for b in packed.blocks]
    assert sorted(n.node.metadata["citation"] for n in out) == sorted(packed.labels)
    assert sum(n.node.metadata["tokens"] for n in out) == packed.tokens.context
    best = next(n for n in out if n.node.metadata["citation"] == "[1]")
    assert best.node.metadata["chunk_ids"] == ["n0"] and best.node.metadata["source"] == "n0"
    # The LLM sees the passage header, like in our own prompt; nothing else.
    assert best.node.get_content(MetadataMode.LLM).startswith("[1] n0\n\nPayment clause 0")


def test_postprocessor_packs_retrieved_chunks_and_merges_neighbours(corpus: Corpus) -> None:
    only = MetadataFilters(filters=[one("doc_id", corpus.payment)])
    retriever = SovereignRetriever(corpus.retriever, BOB, k=10, filters=only)
    question = "When is the supplier invoice payable?"
    nodes = retriever.retrieve(question)
    assert len(nodes) > 1
    post = ContextPackerPostprocessor(window=4000, answer_tokens=100)
    (block,) = post.postprocess_nodes(nodes, QueryBundle(question))
    by_index = sorted(nodes, key=lambda n: n.node.metadata["chunk_index"])
    meta = block.node.metadata
    assert meta["chunk_ids"] == [n.node.node_id for n in by_index]
    assert meta["citation"] == "[1]" and meta["doc_id"] == corpus.payment
    assert meta["source"].endswith("payment.txt") and meta["truncated"] is False
    assert block.node.source_node is not None
    assert block.node.source_node.node_id == corpus.payment
    # Chunk overlaps appear once: every rule line exactly once.
    for i in range(6):
        assert block.node.get_content().count(f"Invoice rule {i}:") == 1


def test_postprocessor_merges_llama_index_neighbours() -> None:
    text = " ".join(f"Rule {i} says the tenant pays rent on day {i + 1}." for i in range(40))
    splitter = SentenceSplitter(chunk_size=60, chunk_overlap=10)
    split = splitter.get_nodes_from_documents([Document(text=text, id_="lease")])
    assert len(split) > 4
    nodes = [NodeWithScore(node=split[i], score=s) for i, s in ((2, 0.9), (1, 0.8), (4, 0.7))]
    post = ContextPackerPostprocessor(window=4000, answer_tokens=100)
    out = post.postprocess_nodes(nodes, query_str="When is rent due?")
    assert [n.node.metadata["chunk_ids"] for n in out] == [
        [split[1].node_id, split[2].node_id],
        [split[4].node_id],
    ]
    assert {n.node.metadata["doc_id"] for n in out} == {"lease"}


def test_postprocessor_needs_the_question() -> None:
    post = ContextPackerPostprocessor(window=4000, answer_tokens=100)
    with pytest.raises(RagError, match="needs the question"):
        post.postprocess_nodes([NodeWithScore(node=TextNode(text="x"), score=1.0)])
    with pytest.raises(RagError, match="not both"):
        ContextPackerPostprocessor(ContextPacker(), window=600)


def test_query_engine_runs_offline(corpus: Corpus) -> None:
    post = ContextPackerPostprocessor(window=2000, answer_tokens=200)
    engine = RetrieverQueryEngine.from_args(
        SovereignRetriever(corpus.retriever, BOB, k=4),
        llm=MockLLM(),  # echoes the prompt it was sent
        node_postprocessors=[post],
    )
    response = engine.query("When is the supplier invoice payable?")
    assert post.last_packed is not None
    assert [n.node.metadata["citation"] for n in response.source_nodes] == [
        b.citation for b in post.last_packed.blocks
    ]
    assert "[1] payment.txt" in str(response)
    assert "payable within" in str(response)


def test_postprocessor_counts_text_changed_after_retrieval(corpus: Corpus) -> None:
    question = "When is the supplier invoice payable?"
    nodes = SovereignRetriever(corpus.retriever, BOB, k=1).retrieve(question)
    # e.g. a sentence-window postprocessor: the stored token count no longer applies.
    first = nodes[0].node
    assert isinstance(first, TextNode)
    first.text += " Late payment adds interest of two percent per month." * 20
    post = ContextPackerPostprocessor(window=4000, answer_tokens=100)
    post.postprocess_nodes(nodes, query_str=question)
    assert post.last_packed is not None
    assert post.last_packed.count_exact() == post.last_packed.tokens.total


def test_pseudonymize_transform_in_a_plain_ingestion_pipeline(tmp_path) -> None:
    from llama_index.core import Document

    from ingest.llama_index import PseudonymizeTransform
    from rag.privacy import PrivacyKeys, Pseudonymizer, Vault, generate_key, placeholders_in
    from rag.testing import FakeDetector

    settings = load_settings(
        home=tmp_path / "home",
        chunking={"max_tokens": 64, "overlap_tokens": 8},
        privacy={"enabled": True, "key": generate_key(), "ner": "none"},
    )
    keys = PrivacyKeys.from_settings(settings)
    pz = Pseudonymizer(
        settings.privacy, keys, Vault.open(settings, keys), FakeDetector(["Margaret Thornbury"])
    )
    embedder = FakeEmbedder(max_tokens=40)
    pipeline = IngestionPipeline(
        transformations=[
            PseudonymizeTransform(pz),
            MistralTokenChunker.from_settings(settings, embedder),
            LlamaIndexEmbedding(embedder),
        ]
    )
    doc = Document(
        text="Margaret Thornbury (margaret@example.com) signed. " * 20,
        metadata={"author": "Margaret Thornbury", "pages": 3},
    )
    nodes = pipeline.run(documents=[doc])
    expected = placeholders_in(pz.pseudonymize_text("Margaret Thornbury"))
    assert nodes and all("Thornbury" not in n.get_content() for n in nodes)
    assert all("Thornbury" not in e for e in embedder.passages), "nothing raw was embedded"
    assert nodes[0].metadata["author"] == expected[0] and nodes[0].metadata["pages"] == 3
    assert expected[0] in nodes[0].metadata["pii_placeholders"]
    assert nodes[0].metadata["pii_counts"]["EMAIL_ADDRESS"] >= 1
    assert "pii_placeholders" in nodes[0].excluded_embed_metadata_keys
