"""The JSON answer: its schema, how it is parsed, and how its citations are checked.

The model answers with ``{"answer", "citations": [{"label", "quote"}],
"insufficient_context"}``. An answer is accepted only if it parses, matches the schema,
every cited label is a passage the model was shown, and every quote occurs in that
passage (after Unicode NFKC and whitespace normalisation; a quote elided with "..." must
occur piece by piece, in order). Problems are described by labels, counts and field names,
never by text, so they can be logged and sent back to the model for one repair.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag._types import Chunk
from rag.llm._types import Usage

_WS = re.compile(r"\s+")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…|\[\.\.\.\])\s*")
_INLINE_LABEL = re.compile(r"\[(\d{1,4})\]")
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


class CitationModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    label: int = Field(description="number of the context passage, e.g. 2 for [2]")
    quote: str = Field(
        min_length=1, description="a short excerpt copied word for word from that passage"
    )

    @field_validator("label", mode="before")
    @classmethod
    def _label_number(cls, v: Any) -> Any:
        # Models often write the label as they see it: "[2]".
        if isinstance(v, str) and re.fullmatch(r"\s*\[?\s*\d+\s*\]?\s*", v):
            return int(v.strip().strip("[]").strip())
        return v


class AnswerModel(BaseModel):
    """What the model must return (validated with pydantic)."""

    model_config = ConfigDict(extra="ignore")

    answer: str
    citations: list[CitationModel]
    insufficient_context: bool


#: JSON schema sent as ``response_format`` and appended to the system prompt. Written out
#: (not generated) so it is strict-mode ready: every field required, no extra fields.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {
            "type": "string",
            "description": "the answer, citing passages inline by label, e.g. [2]",
        },
        "citations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "integer", "description": "passage number, 2 for [2]"},
                    "quote": {
                        "type": "string",
                        "description": "a short excerpt copied word for word from the passage",
                    },
                },
                "required": ["label", "quote"],
                "additionalProperties": False,
            },
        },
        "insufficient_context": {
            "type": "boolean",
            "description": "true when the passages do not contain the answer",
        },
    },
    "required": ["answer", "citations", "insufficient_context"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Passage:
    """A labelled passage the model was shown (packed, or found by a tool call)."""

    label: int
    text: str
    source: str
    doc_id: str
    section: str | None
    chunks: tuple[Chunk, ...]
    #: ``packed`` (in the first request) or ``tool`` (returned by search_documents).
    origin: str = "packed"

    @property
    def pages(self) -> tuple[int, ...]:
        return tuple(sorted({p for c in self.chunks for p in c.pages}))


@dataclass(frozen=True)
class Citation:
    """A verified citation: the passage label, the quote, and where the quote comes from."""

    label: int
    quote: str
    source: str
    doc_id: str
    #: Pages of the chunk(s) holding the quote (empty for formats without pages).
    pages: tuple[int, ...]
    chunk_ids: tuple[str, ...]
    section: str | None = None


@dataclass(frozen=True)
class ToolRun:
    """One tool call of the loop: name, outcome and duration (arguments are not kept)."""

    name: str
    ok: bool
    seconds: float
    #: Why it failed (an error type or ``bad_arguments``), empty when ``ok``.
    error: str = ""


@dataclass(frozen=True)
class Answer:
    """A validated answer with checked citations, token usage and provenance."""

    text: str
    citations: tuple[Citation, ...]
    insufficient_context: bool
    #: Whether placeholders were replaced by values (only for allowed principals).
    reidentified: bool
    usage: Usage
    provider: str
    model: str
    #: Wall time of the whole answer (retrieval, every model call and tool call).
    latency_s: float
    request_id: str
    #: The question as the model saw it (pseudonymized).
    question: str
    #: Whether the first answer was invalid and one repair round-trip fixed it.
    repaired: bool = False
    tool_runs: tuple[ToolRun, ...] = ()
    #: Model calls made (turns of the tool loop, plus a repair).
    calls: int = 1
    passages: tuple[Passage, ...] = field(default=(), repr=False)
    #: Milliseconds spent in ``retrieve``, ``pack``, ``guard`` (the egress guard, every
    #: request), ``model`` (all calls) and ``tools``.
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``rag ask --json``); passages are left out."""
        from dataclasses import asdict

        out = asdict(self)
        out.pop("passages")
        return out


def normalize_quote(text: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def quote_in(quote: str, text: str) -> bool:
    """Whether ``quote`` occurs in ``text`` (normalised; "..." elisions in order)."""
    hay = normalize_quote(text)
    pieces = [p for p in _ELLIPSIS.split(normalize_quote(quote)) if p]
    if not pieces:
        return False
    start = 0
    for piece in pieces:
        found = hay.find(piece, start)
        if found < 0:
            return False
        start = found + len(piece)
    return True


def parse_answer(content: str) -> tuple[AnswerModel | None, list[str]]:
    """The model's content as an :class:`AnswerModel`, or the problems that prevent it."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        return None, ["the reply is empty; expected one JSON object"]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"the reply is not valid JSON ({exc.msg} at line {exc.lineno}, "
                      f"column {exc.colno})"]  # fmt: skip
    if not isinstance(data, dict):
        return None, [f"the reply is a JSON {type(data).__name__}, not an object"]
    try:
        return AnswerModel.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:10]:
            where = ".".join(str(p) for p in err["loc"]) or "reply"
            problems.append(f"field {where!r}: {err['msg']}")
        return None, problems


def check_citations(
    answer: AnswerModel, passages: Mapping[int, Passage]
) -> tuple[list[Citation], list[str]]:
    """Verified citations, or the problems (unknown labels, quotes not in the passage)."""
    problems: list[str] = []
    citations: list[Citation] = []
    known = ", ".join(f"[{n}]" for n in sorted(passages)) or "none"
    for i, cited in enumerate(answer.citations, 1):
        passage = passages.get(cited.label)
        if passage is None:
            problems.append(
                f"citation {i}: [{cited.label}] is not a passage label (labels: {known})"
            )
            continue
        if not quote_in(cited.quote, passage.text):
            problems.append(
                f"citation {i}: the quote does not occur word for word in passage "
                f"[{cited.label}]; copy it exactly"
            )
            continue
        holders = tuple(c for c in passage.chunks if quote_in(cited.quote, c.text))
        holders = holders or passage.chunks
        citations.append(
            Citation(
                label=cited.label,
                quote=cited.quote,
                source=passage.source,
                doc_id=passage.doc_id,
                pages=tuple(sorted({p for c in holders for p in c.pages})),
                chunk_ids=tuple(c.chunk_id for c in holders),
                section=passage.section,
            )
        )
    inline = sorted({int(n) for n in _INLINE_LABEL.findall(answer.answer)} - set(passages))
    if inline:
        problems.append(
            "the answer text cites " + ", ".join(f"[{n}]" for n in inline)
            + f", which are not passage labels (labels: {known})"
        )  # fmt: skip
    if not answer.insufficient_context:
        if not answer.answer.strip():
            problems.append("'answer' is empty although insufficient_context is false")
        if not answer.citations:
            problems.append(
                "no citations although insufficient_context is false: cite at least one "
                "passage, or set insufficient_context to true"
            )
    return citations, problems


def validate_answer(
    content: str, passages: Mapping[int, Passage]
) -> tuple[AnswerModel | None, list[Citation], list[str]]:
    """Parse and check one reply: (answer, citations, problems); valid when no problems."""
    parsed, problems = parse_answer(content)
    if parsed is None:
        return None, [], problems
    citations, problems = check_citations(parsed, passages)
    return parsed, citations, problems


def passages_from_blocks(blocks: Sequence[Any], chunks: Mapping[str, Chunk]) -> list[Passage]:
    """Passages of a :class:`~rag.PackedContext`'s blocks, with their chunks."""
    out = []
    for block in blocks:
        members = tuple(chunks[c] for c in block.chunk_ids if c in chunks)
        out.append(
            Passage(block.label, block.text, block.source, block.doc_id, block.section, members)
        )
    return out
