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
from functools import lru_cache
from typing import Any, Literal

from rag._config import Settings, context_window_for, tokenizer_for_model
from rag._errors import ConfigError, ContextOverflowError, RagError
from rag._tokens import mistral_tokenizer
from rag._types import Chunk, Hit

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages in the user's message. "
    "Cite every passage you use by its label, for example [1] or [2][3]. If the passages "
    "do not contain the answer, say that you cannot find it in the documents."
)
CONTEXT_HEADER = "Context passages:"
QUESTION_PREFIX = "Question: "
SEGMENT = "\n "  # see the module docstring: newline + space starts every segment
#: Tokenizers whose counts add up over segments (SentencePiece, no newline tokens).
ADDITIVE = frozenset({"v1", "v2", "v3", "v7"})

Order = Literal["edges", "score"]
DropReason = Literal["over_budget", "empty", "repeated", "truncated"]


@dataclass(frozen=True)
class ContextBlock:
    """One cited passage in the prompt: one chunk, or adjacent chunks of one document."""

    label: int
    chunk_ids: tuple[str, ...]
    doc_id: str
    source: str
    pages: tuple[int, ...]
    section: str | None
    #: The header line and the body lines (one per chunk, overlaps removed) as placed in
    #: the prompt, each after a newline and a space.
    header: str
    segments: tuple[str, ...]
    #: Tokens this block adds to the request (header and body segments). Exact for the
    #: SentencePiece tokenizers; an estimate for Tekken, whose request total is exact.
    tokens: int
    score: float
    #: 0-based rank of the block's best hit in the retrieval result.
    rank: int
    truncated: bool = False

    @property
    def citation(self) -> str:
        return f"[{self.label}]"

    @property
    def text(self) -> str:
        return "\n".join(self.segments)


@dataclass(frozen=True)
class TokenBudget:
    """Where the window goes, in tokens of the model's tokenizer."""

    window: int
    answer_reserve: int
    #: Chat template, system prompt (with the answer schema) and the context header.
    template: int
    tools: int
    question: int
    context: int
    #: Prompt tokens: everything above except the answer reserve.
    total: int

    @property
    def free(self) -> int:
        return self.window - self.answer_reserve - self.total


@dataclass(frozen=True)
class DroppedChunk:
    chunk_id: str
    reason: DropReason
    #: Tokens the chunk would have needed (0 when not counted).
    tokens: int = 0


@dataclass(frozen=True)
class PackedContext:
    """A request ready for Mistral's chat API, with its exact token accounting."""

    model: str
    tokenizer: str
    #: Blocks in prompt order (see ``ContextPacker.order``); labels follow relevance.
    blocks: tuple[ContextBlock, ...]
    tokens: TokenBudget
    messages: tuple[Mapping[str, str], ...]
    tools: tuple[Mapping[str, Any], ...]
    dropped: tuple[DroppedChunk, ...] = ()

    @property
    def truncated(self) -> bool:
        return any(b.truncated for b in self.blocks)

    @property
    def labels(self) -> dict[str, tuple[str, ...]]:
        """Citation label (``"[1]"``) → chunk ids, in label order."""
        return {b.citation: b.chunk_ids for b in sorted(self.blocks, key=lambda b: b.label)}

    def block(self, label: int | str) -> ContextBlock:
        """The block a citation refers to (``3`` or ``"[3]"``); KeyError if none."""
        number = int(str(label).strip().strip("[]"))
        for b in self.blocks:
            if b.label == number:
                return b
        raise KeyError(f"no context passage [{number}]")

    def count_exact(self) -> int:
        """Prompt tokens by a full mistral-common encoding (slow; for verification)."""
        return _count_request(
            tokenizer_for_name(self.tokenizer), self.messages[0]["content"],
            self.messages[1]["content"], _tools_json(self.tools),
        )  # fmt: skip


def tokenizer_for_name(name: str) -> str:
    return name.removeprefix("mistral-")


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
        return _segment_cost(self.version, text)

    def _header_cost(self, label: int, rest: str) -> int:
        """Tokens of a header line. SentencePiece splits words at spaces before merging, so
        ``[label] rest`` costs the label plus ``rest`` alone: one encoding per distinct
        header, however the labels are numbered in the end (checked by the tests)."""
        if not self.additive or not rest:
            return self._segment(_header(label, rest))
        return _segment_cost(self.version, f"[{label}]") + _segment_cost(self.version, rest) - 1

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
            return chunk.token_count - (_segment_cost(self.version, head) - 1) + 1
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
        tools_json = _tools_json(tools)
        limit = self.window - reserve

        with_tools = _encode_request(self.version, system, CONTEXT_HEADER, tools_json)
        without = (
            _encode_request(self.version, system, CONTEXT_HEADER, "[]") if tools else with_tools
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
            total, blocks, user = self._verified(blocks, system, tools_json, question_line, limit,
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
            tools=tuple(json.loads(tools_json)),
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
        tools_json: str,
        question_line: str,
        limit: int,
        dropped: list[DroppedChunk],
    ) -> tuple[int, list[ContextBlock], str]:
        """Non-additive tokenizers: count the whole request, drop the weakest until it fits."""
        while True:
            user = _render(blocks, question_line)
            total = _count_request(self.version, system, user, tools_json)
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
    """What follows the label on a block's header line: file name, pages, section."""
    chunk = parts[0].hit.chunk
    name = chunk.source.replace("\\", "/").rsplit("/", 1)[-1] or chunk.doc_id
    pages = sorted({pg for p in parts for pg in p.hit.chunk.pages})
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


def _tools_json(tools: Sequence[Mapping[str, Any]]) -> str:
    """Tools validated by mistral-common and serialised canonically (cache key)."""
    from mistral_common.protocol.instruct.tool_calls import Tool

    try:
        parsed = [Tool.model_validate(dict(t)) for t in tools]
    except Exception as exc:  # pydantic ValidationError and friends
        raise RagError(f"invalid tool definition: {str(exc).splitlines()[0]}") from None
    return json.dumps([t.model_dump(mode="json") for t in parsed], sort_keys=True)


@lru_cache(maxsize=256)
def _encode_request(version: str, system: str, user: str, tools_json: str) -> int:
    """Prompt tokens of a small, often repeated request (the empty-context base)."""
    return _count_request(version, system, user, tools_json)


def _count_request(version: str, system: str, user: str, tools_json: str) -> int:
    """Prompt tokens of a chat request with one system and one user message."""
    from mistral_common.protocol.instruct.messages import SystemMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Tool

    tools = [Tool.model_validate(t) for t in json.loads(tools_json)] or None
    request: ChatCompletionRequest = ChatCompletionRequest(
        messages=[SystemMessage(content=system), UserMessage(content=user)], tools=tools
    )
    try:
        return len(mistral_tokenizer(version).encode_chat_completion(request).tokens)
    except Exception as exc:
        raise RagError(
            f"mistral-common cannot encode this request for tokenizer {version}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


@lru_cache(maxsize=16384)
def _segment_cost(version: str, text: str) -> int:
    tok = mistral_tokenizer(version).instruct_tokenizer.tokenizer
    return len(tok.encode(text, bos=False, eos=False)) + 1
