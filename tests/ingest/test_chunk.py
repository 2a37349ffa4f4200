"""Chunker: structure, sizes in Mistral tokens, the embedder cap, overlap, stable ids."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from ingest._chunk import Chunker
from rag._config import ChunkingSettings
from rag._tokens import MistralTokens
from rag._types import Element, ParsedDocument
from rag.testing import FakeEmbedder

TOK = MistralTokens("v2")


def make(max_tokens: int = 64, overlap: int = 8, embed_limit: int | None = None) -> Chunker:
    emb = FakeEmbedder(max_tokens=embed_limit or 10_000)
    return Chunker(
        ChunkingSettings(max_tokens=max_tokens, overlap_tokens=overlap, tokenizer="v2"),
        TOK,
        emb.count_tokens,
        emb.max_tokens,
    )


def doc(*elements: Element) -> ParsedDocument:
    return ParsedDocument(Path("/x/doc.txt"), tuple(elements), {"filetype": "text/plain"})


SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]


def test_every_chunk_fits_both_tokenizers_and_text_is_covered() -> None:
    chunker = make(max_tokens=48, overlap=8, embed_limit=30)
    d = doc(Element(" ".join(SENTENCES), "NarrativeText", page=1))
    chunks = chunker.chunk(d, "d1", ("@public",), "/x/doc.txt")
    assert len(chunks) > 5
    for c in chunks:
        assert TOK.count(c.text) <= 48
        assert FakeEmbedder().count_tokens(c.text) <= 30
        assert c.token_count == TOK.count(c.text)
    joined = " ".join(c.text for c in chunks)
    for s in SENTENCES:  # nothing is dropped
        assert s in joined


def test_overlap_repeats_whole_sentences_within_a_section() -> None:
    chunks = make(max_tokens=48, overlap=16).chunk(
        doc(Element(" ".join(SENTENCES[:20]), "NarrativeText")), "d", ("@public",), "s"
    )
    shared = 0
    for a, b in itertools.pairwise(chunks):
        first_of_b = b.text.split(". ")[0]
        shared += first_of_b in a.text
    assert shared >= len(chunks) - 2


def test_titles_start_sections_and_are_recorded() -> None:
    body = " ".join(SENTENCES[:6])
    d = doc(
        Element("Payment terms", "Title", page=1),
        Element(body, "NarrativeText", page=1),
        Element("Termination", "Title", page=2),
        Element(body, "NarrativeText", page=2),
    )
    chunks = make(max_tokens=200, overlap=0).chunk(d, "d", ("@public",), "s")
    assert [c.section for c in chunks] == ["Payment terms", "Termination"]
    assert chunks[0].text.startswith("Payment terms\n")
    assert chunks[1].pages == (2,)
    assert chunks[0].element_types == ("Title", "NarrativeText")


def test_short_sections_merge_instead_of_tiny_chunks() -> None:
    d = doc(*[Element(f"Heading {i}", "Title") for i in range(10)])
    chunks = make(max_tokens=200, overlap=0).chunk(d, "d", ("@public",), "s")
    assert len(chunks) == 1


def test_tables_are_chunks_of_their_own_with_html_kept_out_of_text() -> None:
    d = doc(
        Element("Intro text here.", "NarrativeText", page=1),
        Element("a b c 1 2 3", "Table", page=1, extra={"text_as_html": "<table/>"}),
        Element("After the table.", "NarrativeText", page=2),
    )
    chunks = make(max_tokens=200, overlap=0).chunk(d, "d", ("@public",), "s")
    assert [c.element_types for c in chunks] == [("NarrativeText",), ("Table",), ("NarrativeText",)]
    assert chunks[1].metadata["table_html"] == "<table/>"
    assert "table_html" not in chunks[0].metadata and "<table" not in chunks[1].text


def test_a_table_split_over_chunks_keeps_text_not_html_per_piece() -> None:
    rows = " ".join(f"row {i} value {i * 3}" for i in range(200))
    d = doc(Element(rows, "Table", extra={"text_as_html": "<table>...</table>"}))
    chunks = make(max_tokens=64, overlap=0).chunk(d, "d", ("@public",), "s")
    assert len(chunks) > 1
    assert all("table_html" not in c.metadata for c in chunks)


def test_a_single_huge_word_is_split_not_truncated() -> None:
    blob = "x" * 5000
    chunks = make(max_tokens=64, overlap=0).chunk(
        doc(Element(blob, "NarrativeText")), "d", ("@public",), "s"
    )
    assert "".join(c.text for c in chunks) == blob
    assert all(TOK.count(c.text) <= 64 for c in chunks)


def test_ids_are_stable_and_depend_on_content_and_position() -> None:
    d = doc(Element(" ".join(SENTENCES[:30]), "NarrativeText"))
    a = make().chunk(d, "d", ("@public",), "s")
    b = make().chunk(d, "d", ("@public",), "s")
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len({c.chunk_id for c in a}) == len(a)
    other = make().chunk(d, "other-doc", ("@public",), "s")
    assert not {c.chunk_id for c in a} & {c.chunk_id for c in other}


def test_empty_document_gives_no_chunks() -> None:
    assert make().chunk(doc(Element("   ", "NarrativeText")), "d", (), "s") == []


def _squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("seed", range(25))
def test_random_unicode_text_always_fits_and_loses_nothing(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcdefghij ÄÖÜßéè中文字日本語😀 .,;!?\n0123456789"
    elements = [
        Element(
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 2000))),
            rng.choice(["Title", "NarrativeText", "ListItem", "Table"]),
            page=rng.randint(1, 5),
        )
        for _ in range(rng.randint(1, 8))
    ]
    limit = rng.randint(16, 120)
    embed_limit = rng.randint(8, 60)
    for overlap in (0, rng.randint(1, 15)):
        chunker = make(max_tokens=limit, overlap=overlap, embed_limit=embed_limit)
        chunks = chunker.chunk(doc(*elements), "d", ("@public",), "s")
        for c in chunks:
            assert TOK.count(c.text) <= limit
            assert FakeEmbedder().count_tokens(c.text) <= embed_limit
            assert c.text.strip()
        if overlap == 0:  # every character kept, in order, nothing duplicated
            assert "".join(_squash(c.text) for c in chunks) == "".join(
                _squash(e.text) for e in elements
            )
