"""Context packing: exact token accounting with mistral-common, never over the window."""

from __future__ import annotations

import random
import string
from dataclasses import replace

import pytest

from rag import (
    ConfigError,
    ContextOverflowError,
    ContextPacker,
    MistralTokens,
    RagError,
    load_settings,
)
from rag._types import Chunk, Hit

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_documents",
            "description": "Search the company's documents.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
ALPHABET = (
    string.ascii_letters + string.digits + string.punctuation + "   \t\n\n"
    "éüßçñÆø日本語中文한국어абвгдέλ\u200b\u00a0\u2028\u3000🙂🚀€£"
)


def chunk(
    i: int,
    text: str,
    *,
    doc: str | None = None,
    index: int | None = None,
    tokenizer: str = "",
    token_count: int = 0,
    pages: tuple[int, ...] = (1,),
) -> Chunk:
    return Chunk(
        chunk_id=f"c{i}",
        doc_id=doc or f"d{i}",
        index=i if index is None else index,
        text=text,
        source=f"/srv/docs/file{i}.pdf",
        pages=pages,
        section="Terms" if i % 2 else None,
        element_types=("NarrativeText",),
        acl=("@public",),
        token_count=token_count,
        tokenizer=tokenizer,
    )


def hits_of(*texts: str) -> list[Hit]:
    return [Hit(chunk(i, t), 1.0 / (i + 1)) for i, t in enumerate(texts)]


def random_text(rng: random.Random) -> str:
    size = rng.choice((0, 1, 5, 40, 200, 800, 3000) if rng.random() < 0.1 else (5, 40, 200, 600))
    if rng.random() < 0.5:
        return "".join(rng.choice(ALPHABET) for _ in range(size))
    words = ["contract", "notice", "Thornbury", "<PERSON_3f9a1c>", "12.5%", "§ 4.2", "ñandú"]
    return " ".join(rng.choice(words) for _ in range(max(1, size // 6)))


def random_case(rng: random.Random, model: str) -> tuple[ContextPacker, list[Hit], dict]:
    window = rng.choice((400, 800, 1500, 3000, 6000))
    packer = ContextPacker(model, window=window, answer_tokens=rng.choice((0, 50, 200)))
    version = packer.version
    counter = MistralTokens(version)
    hits = []
    for i in range(rng.randint(0, 25)):
        text = random_text(rng)
        doc = f"d{rng.randint(0, 4)}"
        stored = text.strip() == text and rng.random() < 0.7
        c = chunk(
            i,
            text,
            doc=doc,
            index=rng.randint(0, 8),
            tokenizer=packer.tokenizer_name if stored else "",
            token_count=counter.count(text) if stored else 0,
            pages=tuple(sorted(rng.sample(range(1, 9), rng.randint(0, 2)))),
        )
        hits.append(Hit(c, rng.random()))
    hits.sort(key=lambda h: -h.score)
    options = {
        "tools": TOOLS if rng.random() < 0.5 and version != "v1" else (),
        "response_schema": SCHEMA if rng.random() < 0.5 else None,
    }
    return packer, hits, options


def check(packer: ContextPacker, packed, hits: list[Hit]) -> None:  # type: ignore[no-untyped-def]
    budget = packed.tokens
    assert budget.total + budget.answer_reserve <= budget.window
    assert packed.count_exact() == budget.total  # counted exactly as Mistral counts
    assert budget.total == (budget.template + budget.tools + budget.question + budget.context)
    if packer.additive:  # tekken: block counts are estimates, the totals are exact
        assert sum(b.tokens for b in packed.blocks) == budget.context
    given = {h.chunk.chunk_id for h in hits}
    placed = [c for b in packed.blocks for c in b.chunk_ids]
    assert len(placed) == len(set(placed)) and set(placed) <= given
    assert sorted(b.label for b in packed.blocks) == list(range(1, len(packed.blocks) + 1))
    user = packed.messages[1]["content"]
    for b in packed.blocks:
        assert b.header.startswith(b.citation) and b.header in user
        assert all(seg in user for seg in b.segments)


@pytest.mark.slow
def test_ten_thousand_random_requests_fit_and_are_counted_exactly() -> None:
    rng = random.Random(20261121)
    models = ["mistral-large-2402", "mistral-large-2407", "mistral-large-2411", "open-mistral-7b"]
    seen = {"packed": 0, "refused": 0, "truncated": 0, "dropped": 0, "merged": 0}
    for case in range(10_000):
        packer, hits, options = random_case(rng, models[case % len(models)])
        try:
            question = " ".join(random_text(rng).split()) or "why?"
            packed = packer.pack(hits, question, **options)
        except ContextOverflowError:
            seen["refused"] += 1  # the fixed parts alone exceed a tiny window: never sent
            continue
        check(packer, packed, hits)
        seen["packed"] += 1
        seen["truncated"] += packed.truncated
        seen["dropped"] += any(d.reason == "over_budget" for d in packed.dropped)
        seen["merged"] += any(len(b.chunk_ids) > 1 for b in packed.blocks)
    # The cases exercise every path, not just the easy one.
    assert seen["packed"] > 9000 and min(seen.values()) > 20, seen


def test_tekken_requests_are_verified_by_full_encoding() -> None:
    rng = random.Random(7)
    for _ in range(150):
        packer, hits, options = random_case(rng, "open-mistral-nemo")
        try:
            packed = packer.pack(hits, "What is the notice period?", **options)
        except ContextOverflowError:
            continue
        check(packer, packed, hits)


def test_windows_come_from_the_model_and_config() -> None:
    assert ContextPacker("mistral-large-2402").window == 32768
    assert ContextPacker("mistral-large-2407").window == 131072
    assert ContextPacker("mistral-large-2411").version == "v7"
    settings = load_settings(llm={"model": "my-finetune", "context_window": 8000})
    assert ContextPacker.from_settings(settings).window == 8000
    with pytest.raises(ConfigError, match=r"llm\.context_window"):
        ContextPacker("my-finetune")


def test_labels_follow_relevance_and_strongest_sit_at_both_ends() -> None:
    texts = [f"Passage number {i} about the termination notice." for i in range(5)]
    packed = ContextPacker("mistral-large-2402").pack(hits_of(*texts), "notice?")
    assert [b.label for b in packed.blocks] == [1, 3, 5, 4, 2]
    assert packed.labels["[1]"] == ("c0",) and packed.block("[2]").chunk_ids == ("c1",)
    scored = ContextPacker("mistral-large-2402", order="score").pack(hits_of(*texts), "notice?")
    assert [b.label for b in scored.blocks] == [1, 2, 3, 4, 5]


def test_adjacent_chunks_of_a_document_merge_without_repeating_the_overlap() -> None:
    first = "The supplier may terminate on notice. Notice must be given in writing."
    second = "Notice must be given in writing. The period is ninety days."
    hits = [
        Hit(chunk(0, first, doc="contract", index=4), 0.9),
        Hit(chunk(1, "Unrelated paragraph about fees.", doc="other", index=0), 0.8),
        Hit(chunk(2, second, doc="contract", index=5), 0.7),
    ]
    packed = ContextPacker("mistral-large-2402").pack(hits, "What is the notice period?")
    merged = packed.block(1)
    assert merged.chunk_ids == ("c0", "c2")
    assert merged.segments == (first, "The period is ninety days.")
    assert packed.messages[1]["content"].count("Notice must be given in writing.") == 1
    check(ContextPacker("mistral-large-2402"), packed, hits)


def test_merges_reuse_stored_counts_exactly() -> None:
    counter = MistralTokens("v2")
    sentences = [f"Clause {i} binds the supplier to notice number {i * 7}." for i in range(40)]
    hits = []
    for i in range(8):  # overlapping neighbours, as the chunker makes them
        text = " ".join(sentences[i * 4 : i * 4 + 5])
        c = chunk(i, text, doc="contract", index=i, tokenizer="mistral-v2")
        hits.append(Hit(replace(c, token_count=counter.count(text)), 1.0 - i / 10))
    packer = ContextPacker("mistral-large-2402")
    packed = packer.pack(hits, "What notice binds the supplier?")
    assert len(packed.blocks) == 1 and len(packed.blocks[0].chunk_ids) == 8
    check(packer, packed, hits)
    assert packed.messages[1]["content"].count(sentences[4]) == 1


def test_a_chunk_larger_than_the_budget_is_cut_on_a_token_boundary() -> None:
    huge = " ".join(f"clause{i} applies." for i in range(3000))
    packer = ContextPacker("mistral-large-2402", window=900, answer_tokens=100)
    packed = packer.pack(hits_of(huge), "Which clause applies?")
    assert packed.truncated and len(packed.blocks) == 1
    block = packed.blocks[0]
    assert block.truncated and huge.startswith(block.text)
    assert any(d.reason == "truncated" for d in packed.dropped)
    check(packer, packed, hits_of(huge))
    assert packed.tokens.free >= 0 and packed.tokens.free < 30  # it used the room


def test_chunks_that_do_not_fit_are_dropped_with_a_reason() -> None:
    texts = ["short one.", "x " * 600, "", "another short one.", "short one."]
    hits = hits_of(*texts)
    hits.append(hits[0])  # the same chunk twice
    packed = ContextPacker("mistral-large-2402", window=700, answer_tokens=100).pack(hits, "q?")
    reasons = {d.chunk_id: d.reason for d in packed.dropped}
    assert reasons == {"c1": "over_budget", "c2": "empty"} or reasons.get("c0") == "repeated"
    assert reasons["c1"] == "over_budget" and reasons["c2"] == "empty"
    assert {c for b in packed.blocks for c in b.chunk_ids} == {"c0", "c3", "c4"}


def test_fixed_parts_over_the_window_are_refused_not_sent() -> None:
    packer = ContextPacker("mistral-large-2402", window=300, answer_tokens=200)
    with pytest.raises(ContextOverflowError, match="leaves no room"):
        packer.pack(hits_of("text"), "why " * 200)


def test_stored_counts_are_used_only_when_they_describe_the_text() -> None:
    text = "The notice period is ninety days."
    right = Chunk("a", "d", 0, text, "s", (), None, (), (), 8, tokenizer="mistral-v2")
    wrong_tokenizer = Chunk("b", "e", 0, text, "s", (), None, (), (), 999, tokenizer="mistral-v7")
    packer = ContextPacker("mistral-large-2402")
    packed = packer.pack([Hit(right, 1.0), Hit(wrong_tokenizer, 0.5)], "notice?")
    assert packed.count_exact() == packed.tokens.total
    assert packed.blocks[0].tokens == packed.blocks[1].tokens  # same text, same header size


def test_bad_input_gets_a_clear_error() -> None:
    packer = ContextPacker("mistral-large-2402")
    with pytest.raises(RagError, match="question is empty"):
        packer.pack(hits_of("a"), "   ")
    with pytest.raises(RagError, match="invalid tool"):
        packer.pack(hits_of("a"), "q", tools=[{"type": "function", "function": {}}])
    empty = packer.pack([], "What is the notice period?")
    assert empty.blocks == () and empty.count_exact() == empty.tokens.total
