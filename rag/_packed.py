"""What the packer returns (blocks, token budget, the request) and how requests are counted.

Counting uses mistral-common for the model's tokenizer version; see :mod:`rag._pack` for
the prompt layout that makes the counts add up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from rag._errors import RagError
from rag._tokens import mistral_tokenizer

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages in the user's message. "
    "Cite every passage you use by its label, for example [1] or [2][3]. If the passages "
    "do not contain the answer, say that you cannot find it in the documents."
)
CONTEXT_HEADER = "Context passages:"
QUESTION_PREFIX = "Question: "
SEGMENT = "\n "  # newline + space starts every segment (see rag._pack)
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
        return count_request(
            tokenizer_for_name(self.tokenizer), self.messages[0]["content"],
            self.messages[1]["content"], tools_json(self.tools),
        )  # fmt: skip


def tokenizer_for_name(name: str) -> str:
    return name.removeprefix("mistral-")


def tools_json(tools: Sequence[Mapping[str, Any]]) -> str:
    """Tools validated by mistral-common and serialised canonically (cache key)."""
    from mistral_common.protocol.instruct.tool_calls import Tool

    try:
        parsed = [Tool.model_validate(dict(t)) for t in tools]
    except Exception as exc:  # pydantic ValidationError and friends
        raise RagError(f"invalid tool definition: {str(exc).splitlines()[0]}") from None
    return json.dumps([t.model_dump(mode="json") for t in parsed], sort_keys=True)


@lru_cache(maxsize=256)
def base_request_tokens(version: str, system: str, user: str, tools_json: str) -> int:
    """Prompt tokens of a small, often repeated request (the empty-context base)."""
    return count_request(version, system, user, tools_json)


def count_request(version: str, system: str, user: str, tools_json: str) -> int:
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
            f"{type(exc).__name__} (the request holds document text, so the message is not shown)"
        ) from None


@lru_cache(maxsize=16384)
def segment_tokens(version: str, text: str) -> int:
    tok = mistral_tokenizer(version).instruct_tokenizer.tokenizer
    return len(tok.encode(text, bos=False, eos=False)) + 1
