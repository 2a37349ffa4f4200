"""Running the model's tool calls: the built-in ``search_documents`` and user tools.

Arguments arrive holding placeholders. A user tool gets them re-identified only if it was
registered with ``reidentify=True`` *and* the principal may re-identify; every result is
pseudonymized before it goes back to the model, and cut to the room the packer left for
tool results (``llm.tool_result_tokens``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag._errors import RagError
from rag._pack import describe_chunks
from rag.llm._answer import Passage, ToolRun
from rag.llm._tools import Tool, ToolArgumentError, tool
from rag.llm._types import Message, ToolCall

if TYPE_CHECKING:
    from rag.llm._generate import Answerer, _Run

log = logging.getLogger(__name__)

#: Template tokens around one tool call or tool result message (tags, JSON keys, call id).
MESSAGE_OVERHEAD = 24
_LOW_WATER = 64
_FULL = (
    "error: no room is left in the context window for more tool results; answer with the "
    "passages you have"
)


class _SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000)
    filters: dict[str, str | int | list[str | int]] | None = None


def _not_called(args: _SearchArgs) -> str:  # pragma: no cover - dispatched by name
    raise RuntimeError("search_documents runs inside the answer stage")


SEARCH_TOOL = Tool(
    name="search_documents",
    description=(
        "Search the user's documents again, with another query, for passages the context "
        "does not have yet. Returns new numbered passages that you may cite like the others."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "what to look for, in the words the documents would use",
            },
            "filters": {
                "type": "object",
                "description": (
                    "optional: payload keys (source, doc_id, meta.filetype, meta.subject...) "
                    "mapped to a value or a list of accepted values"
                ),
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string"},
                        {"type": "integer"},
                        {"type": "array", "items": {"type": ["string", "integer"]}},
                    ]
                },
            },
        },
        "required": ["query"],
    },
    fn=_not_called,
    model=_SearchArgs,
)


class _UnknownTool(Exception):
    """The model named a tool that was not offered (its message goes back to the model)."""


def as_tool(item: Tool | Callable[..., Any]) -> Tool:
    """A registered :class:`Tool`, or a plain typed function turned into one."""
    return item if isinstance(item, Tool) else tool(item)


class ToolRunner:
    """Executes one answer's tool calls and keeps its tool-result budget."""

    def __init__(self, answerer: Answerer, run: _Run) -> None:
        self.answerer = answerer
        self.run = run
        self.left = answerer.settings.llm.tool_result_tokens

    def run_calls(self, calls: Sequence[ToolCall]) -> list[Message]:
        """Tool messages answering ``calls``, in order (failures become error results)."""
        out = []
        started_all = time.perf_counter()
        for call in calls:
            self._spend(self._count(call.name + call.arguments) + MESSAGE_OVERHEAD)
            started = time.perf_counter()
            ok, error = True, ""
            try:
                text = self._dispatch(call)
            except _UnknownTool as exc:
                ok, error, text = False, "unknown_tool", str(exc)
            except ToolArgumentError as exc:
                ok, error, text = False, "bad_arguments", f"error: {exc}"
            except RagError as exc:  # a bad filter key, an access error: the model may fix it
                ok, error, text = False, type(exc).__name__, f"error: {exc}"
            except Exception as exc:  # a user tool failed: its message may hold anything
                log.warning("tool %s failed: %s", call.name, type(exc).__name__)
                ok, error = False, type(exc).__name__
                text = f"error: the tool failed ({type(exc).__name__})"
            text = self._fit(text)
            self.run.tool_runs.append(ToolRun(call.name, ok, time.perf_counter() - started, error))
            out.append(Message("tool", text, tool_call_id=call.id, name=call.name))
        spent = (time.perf_counter() - started_all) * 1000
        self.run.timings["tools"] = self.run.timings.get("tools", 0.0) + spent
        return out

    def _dispatch(self, call: ToolCall) -> str:
        if call.name == SEARCH_TOOL.name:
            return self._search(call.arguments)
        found = self.run.tools.get(call.name)
        if found is None:
            names = ", ".join(self.run.tools.names()) or "none"
            raise _UnknownTool(f"error: there is no tool named {call.name!r} (tools: {names})")
        arguments = call.arguments
        if found.reidentify and self.run.reveal is not None:
            arguments = _reidentify_arguments(arguments, self.run.reveal.reidentify)
        result = found.invoke(arguments)
        return self.answerer._privacy.pseudonymize(result)

    def _search(self, arguments: str) -> str:
        try:
            args = _SearchArgs.model_validate_json(arguments or "{}")
        except ValidationError as exc:
            problems = [
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['type']}" for e in exc.errors()
            ]
            raise ToolArgumentError(SEARCH_TOOL.name, problems, ("query", "filters")) from None
        settings = self.answerer.settings
        retrieval = self.answerer.retriever.retrieve(
            args.query, self.run.principal, args.filters or None, settings.retrieval.k
        )
        shown = {c.chunk_id for p in self.run.passages.values() for c in p.chunks}
        fresh = [h for h in retrieval.hits if h.chunk.chunk_id not in shown]
        if not fresh:
            return "No new passages: what the search found is already in the context."
        room = self.left - MESSAGE_OVERHEAD
        parts = ["Passages found:"]
        used = self._count(parts[0])
        added = 0
        for hit in fresh:
            chunk = hit.chunk
            label = max(self.run.passages, default=0) + 1
            body = chunk.text.strip()
            segment = f"\n [{label}] {describe_chunks([chunk])}\n {body}"
            cost = self._count(segment) + 2
            if used + cost > room:
                break
            parts.append(segment)
            used += cost
            added += 1
            self.run.passages[label] = Passage(
                label, body, chunk.source, chunk.doc_id, chunk.section, (chunk,), origin="tool"
            )
        if not added:
            return _FULL
        return "".join(parts)

    def _fit(self, text: str) -> str:
        """``text`` within the tool-result budget (cut on a token boundary if needed)."""
        cost = self._count(text) + MESSAGE_OVERHEAD
        if cost <= self.left:
            self._spend(cost)
            return text
        if self.left < _LOW_WATER:
            self._spend(self._count(_FULL) + MESSAGE_OVERHEAD)
            return _FULL
        tok = self.answerer.packer._tok
        keep = max(self.left - MESSAGE_OVERHEAD - 32, 0)
        cut = tok.decode(tok.encode(text, bos=False, eos=False)[:keep])
        cut += " [truncated: the result was longer than the room left for tool results]"
        self._spend(self._count(cut) + MESSAGE_OVERHEAD)
        return cut

    def _spend(self, tokens: int) -> None:
        self.left -= tokens
        self.run.prompt_tokens += tokens

    def _count(self, text: str) -> int:
        return self.answerer.packer.count(text)


def _reidentify_arguments(arguments: str, reidentify: Callable[[str], str]) -> str:
    """Placeholders in the (JSON) arguments replaced by values, structure kept."""
    try:
        data = json.loads(arguments)
    except json.JSONDecodeError:
        return reidentify(arguments)

    def walk(obj: Any) -> Any:
        if isinstance(obj, str):
            return reidentify(obj)
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        return obj

    return json.dumps(walk(data), ensure_ascii=False)
