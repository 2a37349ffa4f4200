"""Packing retrieved chunks into a Mistral chat request that fits the model's window.

The request is counted exactly as Mistral counts it: mistral-common's tokenizer for the
configured model, chat template, system prompt and tool definitions included. Counting is
fast because the prompt is laid out so that token counts add up. The user message is::

    Context passages:
     [1] contract.pdf, p. 4, section: Termination
     <chunk text>
     [2] ...
     Question: <question>

Every line after the first is a *segment* that starts with a newline and a space. The
SentencePiece tokenizers of every Mistral Large version (v1, v2, v3, v7) have no token
containing a newline, so a newline cuts the text into independently tokenized pieces, and
the space makes a segment tokenize exactly as the same text does alone. So a segment costs
``count(text) + 1`` tokens, the request costs the empty request plus its segments, and the
chunk counts stored at ingestion are reused instead of re-encoding ~30K tokens per query.
``tests/rag/test_pack.py`` checks the identity against full encoding on 10,000 random
cases. Tekken tokenizers do not have this property; for them the packer verifies the
whole request with one full encoding and drops the weakest block until it fits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag._config import Settings, context_window_for, tokenizer_for_model
from rag._errors import ConfigError, ContextOverflowError, RagError
from rag._packed import (
    ADDITIVE,
    CONTEXT_HEADER,
    DEFAULT_SYSTEM_PROMPT,
    QUESTION_PREFIX,
    SEGMENT,
    ContextBlock,
    DroppedChunk,
    Order,
    PackedContext,
    TokenBudget,
    base_request_tokens,
    count_request,
    segment_tokens,
    tools_json,
)
from rag._tokens import mistral_tokenizer
from rag._types import Chunk, Hit


@dataclass
class _Part:
    """A chunk (or the visible part of it) inside a block under construction."""

    hit: Hit
    rank: int
    text: str
    cost: int


@dataclass
class _Run:
    doc_id: str
    parts: list[_Part] = field(default_factory=list)
    cost: int = 0

    @property
    def first(self) -> int:
        return self.parts[0].hit.chunk.index

    @property
    def last(self) -> int:
        return self.parts[-1].hit.chunk.index

    @property
    def rank(self) -> int:
        return min(p.rank for p in self.parts)


class ContextPacker:
    """Chooses, merges, orders and labels chunks so the request fits ``window``."""

    def __init__(
        self,
        model: str = "mistral-large-2402",
        *,
        window: int | None = None,
        tokenizer: str | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        answer_tokens: int = 1024,
        order: Order = "edges",
    ) -> None:
        self.model = model
        self.window = context_window_for(model, window)
        if self.window < 1:
            raise ConfigError("llm.context_window", f"is {self.window}", "give a positive size")
        self.version = tokenizer or tokenizer_for_model(model)
        self.tokenizer_name = f"mistral-{self.version}"
        self._tok = mistral_tokenizer(self.version).instruct_tokenizer.tokenizer
        self.additive = self.version in ADDITIVE
        if answer_tokens < 0:
            raise ConfigError("llm.answer_tokens", "is negative", "reserve 0 or more tokens")
        if order not in ("edges", "score"):
            raise ConfigError("order", f"unknown order {order!r}", "use 'edges' or 'score'")
        self.system_prompt = system_prompt
        self.answer_tokens = answer_tokens
        self.order = order

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ContextPacker:
        options: dict[str, Any] = {
            "window": settings.llm.context_window,
            "tokenizer": settings.tokenizer_version(),
            "answer_tokens": settings.llm.answer_tokens,
        }
        options.update(overrides)
        return cls(settings.llm.model, **options)

    # -- counting --------------------------------------------------------------------------
    def count(self, text: str) -> int:
        return len(self._tok.encode(text, bos=False, eos=False)) if text else 0

    def _segment(self, text: str) -> int:
        """Tokens ``SEGMENT + text`` adds to the user message (``text`` is stripped)."""
        return segment_tokens(self.version, text)

    def _header_cost(self, label: int, rest: str) -> int:
        """Tokens of a header line. SentencePiece splits words at spaces before merging, so
        ``[label] rest`` costs the label plus ``rest`` alone: one encoding per distinct
        header, however the labels are numbered in the end (checked by the tests)."""
        if not self.additive or not rest:
            return self._segment(_header(label, rest))
        return segment_tokens(self.version, f"[{label}]") + segment_tokens(self.version, rest) - 1

    def _tail_cost(self, chunk: Chunk, cut: int, text: str) -> int:
        """Tokens of the part of ``chunk`` after the overlap it shares with its neighbour.

        Overlaps end at a sentence, before a single space; SentencePiece splits words at
        spaces, so ``count(head + " " + tail) == count(head) + count(tail)`` and the tail
        costs the stored count minus the (short) head: no need to encode the whole tail.
        """
        if not text:
            return 0
        head = chunk.text[:cut]
        if (
            cut > 0
            and self.additive
            and chunk.tokenizer == self.tokenizer_name
            and chunk.token_count > 0
            and chunk.text == chunk.text.strip()
            and head == head.rstrip()
            and chunk.text[cut : cut + 1] == " "
            and chunk.text[cut + 1 :] == text
        ):
            return chunk.token_count - (segment_tokens(self.version, head) - 1) + 1
        return self._chunk_segment(chunk, text)

    def _chunk_segment(self, chunk: Chunk, text: str) -> int:
        # The count stored at ingestion is exact for the same tokenizer and the same text.
        if (
            self.additive
            and chunk.tokenizer == self.tokenizer_name
            and chunk.token_count > 0
            and text == chunk.text
        ):
            return chunk.token_count + 1
        return self._segment(text)

    # -- packing ---------------------------------------------------------------------------
    def pack(
        self,
        hits: Sequence[Hit],
        question: str,
        *,
        tools: Sequence[Mapping[str, Any]] = (),
        response_schema: Mapping[str, Any] | None = None,
        system_prompt: str | None = None,
        answer_tokens: int | None = None,
    ) -> PackedContext:
        """Fit as many of ``hits`` (best first) as the window allows, exactly.

        ``tools`` are Mistral function definitions (``{"type": "function", "function":
        {...}}``); ``response_schema`` is a JSON schema appended to the system prompt.
        """
        question = " ".join(question.split()) if isinstance(question, str) else ""
        if not question:
            raise RagError("the question is empty")
        reserve = self.answer_tokens if answer_tokens is None else answer_tokens
        if reserve < 0:
            raise RagError("answer_tokens must be 0 or more")
        system = _system_text(system_prompt or self.system_prompt, response_schema)
        tools_text = tools_json(tools)
        limit = self.window - reserve

        with_tools = base_request_tokens(self.version, system, CONTEXT_HEADER, tools_text)
        without = (
            base_request_tokens(self.version, system, CONTEXT_HEADER, "[]") if tools else with_tools
        )
        question_line = QUESTION_PREFIX + question
        question_cost = self._segment(question_line)
        fixed = with_tools + question_cost
        if fixed > limit:
            raise ContextOverflowError(
                f"the request without any context needs {fixed} tokens (template and system "
                f"prompt {without}, tools {with_tools - without}, question {question_cost}); "
                f"with {reserve} tokens reserved for the answer, the {self.window}-token window "
                f"of {self.model} leaves no room. Shorten the question or system prompt, or "
                "reserve fewer answer tokens (llm.answer_tokens)"
            )
        budget = limit - fixed
        runs, dropped = self._select(hits, budget)
        if not runs:
            runs = self._truncated_best(hits, budget, dropped)
        blocks = self._blocks(runs)
        while blocks and sum(b.tokens for b in blocks) > budget:  # guard; labels settled
            weakest = max(blocks, key=lambda b: b.rank)
            dropped.extend(_over_budget(weakest))
            runs = [r for r in runs if r.rank != weakest.rank]
            blocks = self._blocks(runs)
        blocks = self._ordered(blocks)
        user = _render(blocks, question_line)
        context = sum(b.tokens for b in blocks)
        total = fixed + context
        if not self.additive:
            total, blocks, user = self._verified(blocks, system, tools_text, question_line, limit,
                                                 dropped)  # fmt: skip
            context = total - fixed
        budget_report = TokenBudget(
            window=self.window,
            answer_reserve=reserve,
            template=without,
            tools=with_tools - without,
            question=question_cost,
            context=context,
            total=total,
        )
        return PackedContext(
            model=self.model,
            tokenizer=self.tokenizer_name,
            blocks=tuple(blocks),
            tokens=budget_report,
            messages=(
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ),
            tools=tuple(json.loads(tools_text)),
            dropped=tuple(dropped),
        )

    # -- selection -------------------------------------------------------------------------
    def _select(self, hits: Sequence[Hit], budget: int) -> tuple[list[_Run], list[DroppedChunk]]:
        """Greedy by rank; a chunk next to a chosen one of its document joins that block."""
        widest = int("9" * len(str(max(len(hits), 1))))
        layouts: dict[tuple[str, str], tuple[str, int]] = {}  # per call: packers are shared
        runs: dict[int, _Run] = {}  # by id(), in insertion order
        # Runs by (document, first index) and (document, last index): finding the blocks a
        # chunk extends stays O(1), so packing ~150 candidates into 32K stays in milliseconds.
        by_first: dict[tuple[str, int], list[_Run]] = {}
        by_last: dict[tuple[str, int], list[_Run]] = {}
        dropped: list[DroppedChunk] = []
        seen: set[str] = set()
        used = 0
        for rank, hit in enumerate(hits):
            chunk = hit.chunk
            if chunk.chunk_id in seen:
                dropped.append(DroppedChunk(chunk.chunk_id, "repeated"))
                continue
            seen.add(chunk.chunk_id)
            if not chunk.text.strip():
                dropped.append(DroppedChunk(chunk.chunk_id, "empty"))
                continue
            doc = chunk.doc_id
            joins = by_last.get((doc, chunk.index - 1), []) + by_first.get(
                (doc, chunk.index + 1), []
            )
            parts = sorted(
                [p for r in joins for p in r.parts] + [_Part(hit, rank, "", 0)],
                key=lambda p: p.hit.chunk.index,
            )
            layout = self._layout(parts, layouts)
            cost = self._header_cost(widest, _header_rest(parts)) + sum(c for _, c in layout)
            delta = cost - sum(r.cost for r in joins)
            if used + delta > budget:
                dropped.append(DroppedChunk(chunk.chunk_id, "over_budget", delta))
                continue
            used += delta
            for part, (text, part_cost) in zip(parts, layout, strict=True):
                part.text, part.cost = text, part_cost
            for old in joins:
                del runs[id(old)]
                by_first[(doc, old.first)].remove(old)
                by_last[(doc, old.last)].remove(old)
            run = _Run(doc, parts, cost)
            runs[id(run)] = run
            by_first.setdefault((doc, run.first), []).append(run)
            by_last.setdefault((doc, run.last), []).append(run)
        return list(runs.values()), dropped

    def _layout(
        self, parts: Sequence[_Part], cache: dict[tuple[str, str], tuple[str, int]]
    ) -> list[tuple[str, int]]:
        """Body text and cost of each part of a block; a part repeats no text of the last."""
        out: list[tuple[str, int]] = []
        for i, part in enumerate(parts):
            chunk = part.hit.chunk
            key = (parts[i - 1].hit.chunk.chunk_id if i else "", chunk.chunk_id)
            cached = cache.get(key)
            if cached is None:
                if i == 0:
                    text = chunk.text.strip()
                    cached = (text, self._chunk_segment(chunk, text))
                else:
                    cut = _overlap(parts[i - 1].hit.chunk.text, chunk.text)
                    text = chunk.text[cut:].strip()
                    cached = (text, self._tail_cost(chunk, cut, text))
                cache[key] = cached
            out.append(cached)
        return out

    def _truncated_best(
        self, hits: Sequence[Hit], budget: int, dropped: list[DroppedChunk]
    ) -> list[_Run]:
        """Nothing fits whole: keep the start of the best chunk, cut on a token boundary."""
        best = next((r for r in range(len(hits)) if hits[r].chunk.text.strip()), None)
        if best is None:
            return []
        hit = hits[best]
        part = _Part(hit, best, "", 0)
        header = self._header_cost(1, _header_rest([part]))
        room = budget - header
        tokens = self._tok.encode(hit.chunk.text.strip(), bos=False, eos=False)
        keep = min(len(tokens), room)
        while keep > 0:
            text = self._tok.decode(tokens[:keep]).strip()
            cost = self._segment(text) if text else 0
            if text and cost <= room:
                part.text, part.cost = text, cost
                dropped[:] = [d for d in dropped if d.chunk_id != hit.chunk.chunk_id]
                dropped.append(DroppedChunk(hit.chunk.chunk_id, "truncated", len(tokens) + 1))
                return [_Run(hit.chunk.doc_id, [part], header + cost)]
            keep -= max(1, cost - room)
        return []

    def _blocks(self, runs: Sequence[_Run]) -> list[ContextBlock]:
        """Label runs by relevance ([1] = best) and count their final headers exactly."""
        blocks = []
        for label, run in enumerate(sorted(runs, key=lambda r: r.rank), start=1):
            rest = _header_rest(run.parts)
            header = _header(label, rest)
            chunk = run.parts[0].hit.chunk
            segments = tuple(p.text for p in run.parts if p.text)
            truncated = len(run.parts) == 1 and run.parts[0].text != chunk.text.strip()
            blocks.append(
                ContextBlock(
                    label=label,
                    chunk_ids=tuple(p.hit.chunk.chunk_id for p in run.parts),
                    doc_id=run.doc_id,
                    source=chunk.source,
                    pages=tuple(sorted({pg for p in run.parts for pg in p.hit.chunk.pages})),
                    section=chunk.section,
                    header=header,
                    segments=segments,
                    tokens=self._header_cost(label, rest) + sum(p.cost for p in run.parts),
                    score=max(p.hit.score for p in run.parts),
                    rank=run.rank,
                    truncated=truncated,
                )
            )
        return blocks

    def _ordered(self, blocks: list[ContextBlock]) -> list[ContextBlock]:
        """``edges``: strongest first and last, weakest in the middle (lost in the middle)."""
        by_rank = sorted(blocks, key=lambda b: b.rank)
        if self.order == "score":
            return by_rank
        front = by_rank[0::2]
        back = by_rank[1::2]
        return front + back[::-1]

    def _verified(
        self,
        blocks: list[ContextBlock],
        system: str,
        tools_text: str,
        question_line: str,
        limit: int,
        dropped: list[DroppedChunk],
    ) -> tuple[int, list[ContextBlock], str]:
        """Non-additive tokenizers: count the whole request, drop the weakest until it fits."""
        while True:
            user = _render(blocks, question_line)
            total = count_request(self.version, system, user, tools_text)
            if total <= limit or not blocks:
                return total, blocks, user
            weakest = max(blocks, key=lambda b: b.rank)
            dropped.extend(_over_budget(weakest))
            blocks = [b for b in blocks if b is not weakest]


def _render(blocks: Sequence[ContextBlock], question_line: str) -> str:
    """The user message: context header, blocks (header + body segments), question."""
    body = "".join(SEGMENT + b.header + "".join(SEGMENT + t for t in b.segments) for b in blocks)
    return CONTEXT_HEADER + body + SEGMENT + question_line


def _over_budget(block: ContextBlock) -> list[DroppedChunk]:
    return [DroppedChunk(c, "over_budget", block.tokens) for c in block.chunk_ids]


# -- text layout -------------------------------------------------------------------------
def _header_rest(parts: Sequence[_Part]) -> str:
    return describe_chunks([p.hit.chunk for p in parts])


def describe_chunks(chunks: Sequence[Chunk]) -> str:
    """What follows the label on a passage's header line: file name, pages, section."""
    chunk = chunks[0]
    name = chunk.source.replace("\\", "/").rsplit("/", 1)[-1] or chunk.doc_id
    pages = sorted({pg for c in chunks for pg in c.pages})
    bits = [name]
    if pages:
        bits.append(f"p. {pages[0]}" if len(pages) == 1 else f"pp. {pages[0]}-{pages[-1]}")
    if chunk.section:
        bits.append(f"section: {chunk.section}")
    return " ".join(", ".join(bits).split())


def _header(label: int, rest: str) -> str:
    return f"[{label}] {rest}" if rest else f"[{label}]"


def _overlap(previous: str, following: str) -> int:
    """Length of the longest suffix of ``previous`` that starts ``following`` (chunk overlap)."""
    if not previous or not following:
        return 0
    probe = following[:64]
    start = previous.find(probe)
    while start != -1:
        tail = previous[start:]
        if following.startswith(tail):
            return len(tail)
        start = previous.find(probe, start + 1)
    for size in range(min(len(probe), len(previous)) - 1, 15, -1):
        if following.startswith(previous[-size:]):
            return size
    return 0


def _system_text(prompt: str, schema: Mapping[str, Any] | None) -> str:
    prompt = prompt.strip()
    if schema is None:
        return prompt
    return (
        f"{prompt}\n\nAnswer with one JSON object that matches this JSON schema:\n"
        f"{json.dumps(schema, ensure_ascii=False, sort_keys=True)}"
    )
