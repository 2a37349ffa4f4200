"""The ChatModel port and the values that cross it.

Requests and responses are provider-neutral frozen dataclasses. Adapters (Mistral's SDK,
Azure's two routes, OpenAI-compatible servers) translate them to and from the wire, and
raise the typed errors of :mod:`rag._errors`; SDK types never leave an adapter.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]
#: ``stop | length | tool_calls | content_filter | content_filter_error`` on Azure and
#: Mistral (``model_length`` and ``error`` on Mistral too); kept as the provider sent it.
FinishReason = str
#: ``auto``: the model may call a tool; ``none``: it may not; ``any``: it must (Mistral's
#: name; OpenAI-dialect servers get ``required``).
ToolChoice = Literal["auto", "none", "any"]


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is JSON text, as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    #: Assistant messages that call tools.
    tool_calls: tuple[ToolCall, ...] = ()
    #: Tool results: the id of the call answered, and the tool's name.
    tool_call_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The message in the chat-completions wire format (Mistral and OpenAI agree)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        if self.role == "tool":
            out["tool_call_id"] = self.tool_call_id
            if self.name:
                out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        calls = tuple(
            ToolCall(
                id=str(c.get("id") or ""),
                name=str(c["function"]["name"]),
                arguments=_arguments_text(c["function"].get("arguments")),
            )
            for c in data.get("tool_calls") or ()
        )
        return cls(
            role=data["role"],
            content=data.get("content") or "",
            tool_calls=calls,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


@dataclass(frozen=True)
class Usage:
    """Tokens as the provider reported them (summed over calls with ``+``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions call, provider-neutral.

    ``response_format`` is ``{"type": "json_schema", "json_schema": {"name", "schema",
    "strict"}}`` or ``{"type": "json_object"}`` (adapters pass it on as is).
    ``prompt_tokens`` is the exact prompt size when the caller counted it (the rate
    limiter's estimate otherwise comes from the text length).
    """

    messages: tuple[Message, ...]
    model: str
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: Mapping[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    safe_prompt: bool = False
    random_seed: int | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    prompt_tokens: int | None = None

    def with_(self, **changes: Any) -> ChatRequest:
        return replace(self, **changes)

    def body(self) -> dict[str, Any]:
        """What leaves the process, in Mistral's dialect (what the egress guard scans)."""
        out: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_dict() for m in self.messages],
        }
        if self.tools:
            out["tools"] = [dict(t) for t in self.tools]
            if self.tool_choice is not None:
                out["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            out["response_format"] = dict(self.response_format)
        for key in ("max_tokens", "temperature", "top_p", "random_seed"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.safe_prompt:
            out["safe_prompt"] = True
        return out

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, request_id: str, prompt_tokens: int | None
                  ) -> ChatRequest:  # fmt: skip
        """The inverse of :meth:`body` (the egress guard may hand back a redacted body)."""
        return cls(
            messages=tuple(Message.from_dict(m) for m in body["messages"]),
            model=body["model"],
            tools=tuple(body.get("tools") or ()),
            tool_choice=body.get("tool_choice"),
            response_format=body.get("response_format"),
            max_tokens=body.get("max_tokens"),
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            safe_prompt=bool(body.get("safe_prompt", False)),
            random_seed=body.get("random_seed"),
            request_id=request_id,
            prompt_tokens=prompt_tokens,
        )

    def estimated_tokens(self) -> int:
        """Tokens this request may use: the prompt (counted, else ~4 characters per token)
        plus the answer reserve. For client-side rate limiting."""
        prompt = self.prompt_tokens
        if prompt is None:
            text = sum(len(m.content) + sum(len(c.arguments) for c in m.tool_calls)
                       for m in self.messages)  # fmt: skip
            text += sum(len(json.dumps(t)) for t in self.tools)
            prompt = text // 4 + 1
        return prompt + (self.max_tokens or 0)


@dataclass(frozen=True)
class ChatResponse:
    """A complete answer turn: text and/or tool calls, why it stopped, tokens, timing."""

    content: str
    finish_reason: FinishReason
    usage: Usage
    model: str
    tool_calls: tuple[ToolCall, ...] = ()
    #: The provider's response id (for support tickets); may be empty.
    id: str = ""
    provider: str = ""
    latency_s: float = 0.0
    #: Attempts it took (1 = no retry).
    attempts: int = 1

    def message(self) -> Message:
        return Message("assistant", self.content, self.tool_calls)


@dataclass(frozen=True)
class ChatDelta:
    """A piece of streamed answer text."""

    text: str


#: What :meth:`ChatModel.stream` yields: text deltas, then exactly one ChatResponse (the
#: whole turn, tool calls assembled, usage included) as the last item.
ChatEvent = ChatDelta | ChatResponse


@runtime_checkable
class ChatModel(Protocol):
    """The port every provider adapter implements."""

    #: ``mistral``, ``azure``, ``openai-compatible`` (or a test double's name).
    provider: str
    model: str

    def complete(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]: ...

    def close(self) -> None: ...
