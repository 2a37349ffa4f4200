"""Pure translation between the ChatModel values and the chat-completions wire format.

Two dialects share one shape: ``mistral`` (Mistral's API and Azure's native Mistral route)
and ``openai`` (Azure AI Model Inference, vLLM, Ollama, TGI...). Nothing here does I/O, so
both HTTP adapters and the SDK adapter use the same parsing and the same error mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from rag._errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    LlmError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from rag.llm._types import ChatDelta, ChatRequest, ChatResponse, ToolCall, Usage

Dialect = Literal["mistral", "openai"]

#: Provider messages are cut to this many characters: enough to say what was refused,
#: too short to carry much of a prompt a provider might quote back.
MAX_ERROR_MESSAGE = 200

_KEY_FIX = "check llm.api_key (RAG_LLM__API_KEY) and that llm.endpoint is the key's endpoint"
_NOT_FOUND_FIX = "check llm.endpoint, llm.azure_route and llm.model (the deployment's model name)"


def request_body(request: ChatRequest, dialect: Dialect, *, stream: bool) -> dict[str, Any]:
    """The JSON body for ``request`` in ``dialect``; ``request.body()`` is Mistral's."""
    body = request.body()
    if stream:
        body["stream"] = True
    if dialect == "openai":
        if body.get("tool_choice") == "any":
            body["tool_choice"] = "required"
        if "random_seed" in body:
            body["seed"] = body.pop("random_seed")
        # OpenAI-dialect servers reject unknown fields or ignore them; neither helps.
        body.pop("safe_prompt", None)
        if stream:
            # vLLM and OpenAI send usage in a stream only when asked.
            body["stream_options"] = {"include_usage": True}
    return body


def content_text(content: Any) -> str:
    """Message content as text: a string, or Mistral's list of content chunks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for chunk in content:
            if isinstance(chunk, str):
                parts.append(chunk)
            elif isinstance(chunk, Mapping) and chunk.get("type", "text") == "text":
                parts.append(str(chunk.get("text") or ""))
        return "".join(parts)
    return str(content)


def _arguments(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _usage(data: Any) -> Usage:
    if not isinstance(data, Mapping):
        return Usage()
    prompt = int(data.get("prompt_tokens") or 0)
    completion = int(data.get("completion_tokens") or 0)
    total = int(data.get("total_tokens") or prompt + completion)
    return Usage(prompt, completion, total)


def _unreadable(provider: str, what: str) -> ProviderUnavailableError:
    return ProviderUnavailableError(
        f"{provider}: the chat response could not be read ({what}); the endpoint may not be "
        "a chat-completions API, or it failed mid-answer (check llm.endpoint; retried)",
        provider=provider,
    )


def parse_response(data: Any, provider: str, latency: float) -> ChatResponse:
    """A non-streamed chat-completions body as a ChatResponse.

    ``finish_reason`` ``length`` and ``content_filter`` are returned, not raised: the answer
    stage decides what a cut or filtered answer means.
    """
    if isinstance(data, Mapping) and "error" in data:
        code, message = read_error(data)
        raise ProviderUnavailableError(
            f"{provider}: the provider answered with an error ({code or 'no code'}: {message})",
            provider=provider,
        )
    choices = data.get("choices") if isinstance(data, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise _unreadable(provider, "no choices")
    choice = choices[0]
    turn = choice.get("message")
    if not isinstance(turn, Mapping):
        raise _unreadable(provider, "no message")
    try:
        calls = tuple(
            ToolCall(
                id=str(c.get("id") or ""),
                name=str(c["function"]["name"]),
                arguments=_arguments(c["function"].get("arguments")) or "{}",
            )
            for c in turn.get("tool_calls") or ()
        )
    except (KeyError, TypeError, AttributeError):
        raise _unreadable(provider, "a tool call without a function name") from None
    return ChatResponse(
        content=content_text(turn.get("content")),
        finish_reason=str(choice.get("finish_reason") or ""),
        usage=_usage(data.get("usage")),
        model=str(data.get("model") or ""),
        tool_calls=calls,
        id=str(data.get("id") or ""),
        provider=provider,
        latency_s=latency,
    )


@dataclass
class _PartialCall:
    index: int | None
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamAccumulator:
    """Collects parsed SSE chunks into text deltas and, at the end, one ChatResponse.

    Tool calls are assembled by ``index``: OpenAI-dialect servers stream a call's
    ``arguments`` in pieces (the id and name come with the first piece), Mistral sends
    whole calls. A piece with a new id at a known index starts a new call, so whole calls
    that all say ``index: 0`` are not glued together.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._text: list[str] = []
        self._calls: list[_PartialCall] = []
        self._by_index: dict[int, _PartialCall] = {}
        self._finish = ""
        self._usage = Usage()
        self._model = ""
        self._id = ""

    def add(self, chunk: Any) -> ChatDelta | None:
        """Take one chunk; returns the text delta it carried, if any."""
        if not isinstance(chunk, Mapping):
            raise _unreadable(self.provider, "a stream chunk that is not an object")
        if "error" in chunk:
            code, message = read_error(chunk)
            raise ProviderUnavailableError(
                f"{self.provider}: the stream ended with an error "
                f"({code or 'no code'}: {message}); retried",
                provider=self.provider,
            )
        self._model = self._model or str(chunk.get("model") or "")
        self._id = self._id or str(chunk.get("id") or "")
        if chunk.get("usage"):
            self._usage = _usage(chunk["usage"])
        text = ""
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) not in (0, None):
                continue
            delta = choice.get("delta") or {}
            text += content_text(delta.get("content"))
            for fragment in delta.get("tool_calls") or ():
                self._merge_call(fragment)
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
        if not text:
            return None
        self._text.append(text)
        return ChatDelta(text)

    def _merge_call(self, fragment: Any) -> None:
        if not isinstance(fragment, Mapping):
            raise _unreadable(self.provider, "a streamed tool call that is not an object")
        index = fragment.get("index")
        call_id = str(fragment.get("id") or "")
        function = fragment.get("function") or {}
        slot: _PartialCall | None = None
        if index is not None and index in self._by_index:
            known = self._by_index[index]
            if not call_id or not known.id or known.id == call_id:
                slot = known
        elif index is None and not call_id and self._calls:
            slot = self._calls[-1]
        if slot is None:
            slot = _PartialCall(index)
            self._calls.append(slot)
            if index is not None:
                self._by_index[index] = slot
        slot.id = slot.id or call_id
        slot.name = slot.name or str(function.get("name") or "")
        slot.arguments.append(_arguments(function.get("arguments")))

    def result(self, latency: float) -> ChatResponse:
        """The whole turn; raises when the stream stopped before the model finished."""
        if not self._finish:
            raise _unreadable(self.provider, "the stream ended before a finish_reason")
        calls = []
        for c in self._calls:
            if not c.name:
                raise _unreadable(self.provider, "a streamed tool call without a name")
            calls.append(ToolCall(c.id, c.name, "".join(c.arguments) or "{}"))
        return ChatResponse(
            content="".join(self._text),
            finish_reason=self._finish,
            usage=self._usage,
            model=self._model,
            tool_calls=tuple(calls),
            id=self._id,
            provider=self.provider,
            latency_s=latency,
        )


def iter_sse(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events as ``(event, data)``: multi-line data joined by newlines,
    comments (``:``) and other fields skipped, an event dispatched at each blank line."""
    event = ""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:  # a last event without its blank line
        yield event or "message", "\n".join(data)


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], datetime] | None = None
) -> float | None:
    """Seconds the provider asks to wait: ``retry-after-ms``, else ``Retry-After`` as
    seconds or an HTTP date; None when absent or unreadable."""
    lower = {k.lower(): v for k, v in headers.items()}
    millis = lower.get("retry-after-ms")
    if millis:
        try:
            value = float(millis) / 1000
            if value >= 0:
                return value
        except ValueError:
            pass
    text = (lower.get("retry-after") or "").strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def _short(text: Any) -> str:
    flat = re.sub(r"\s+", " ", str(text)).strip()
    if len(flat) > MAX_ERROR_MESSAGE:
        flat = flat[: MAX_ERROR_MESSAGE - 1] + "…"
    return flat


def read_error(body: Any) -> tuple[str, str]:
    """``(code, short message)`` from an error body (OpenAI/Azure, Mistral or FastAPI
    validation shape). Validation ``input`` echoes are never read; the message is cut
    to :data:`MAX_ERROR_MESSAGE` characters."""
    data = body
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except ValueError:
            return "", f"(a non-JSON body of {len(body)} characters)" if body.strip() else ""
    if not isinstance(data, Mapping):
        return "", ""
    error = data.get("error")
    if isinstance(error, str):
        return "", _short(error)
    source: Mapping[str, Any] = error if isinstance(error, Mapping) else data
    code = source.get("code") or source.get("type") or ""
    inner = source.get("innererror")
    if isinstance(inner, Mapping) and inner.get("code") == "ResponsibleAIPolicyViolation":
        code = "content_filter"
    message = source.get("message") or ""
    detail = data.get("detail")
    if not message and isinstance(detail, list):
        # FastAPI/pydantic validation errors: keep where and what, never ``input``.
        message = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc') or ())}: {d.get('msg', '')}"
            for d in detail
            if isinstance(d, Mapping)
        )
    elif not message and isinstance(detail, str):
        message = detail
    if isinstance(message, Mapping | list):
        message = json.dumps(message)
    return _short(code), _short(message)


def error_for_status(status: int, headers: Mapping[str, str], body: Any, provider: str) -> LlmError:
    """The typed error for an HTTP error (or redirect) response; the caller raises it."""
    code, message = read_error(body)
    if code == str(status):
        code = ""  # Mistral's "code": "429" says nothing the status does not
    said = f" ({code}: {message})" if code else (f" ({message})" if message else "")
    where = f"{provider} answered HTTP {status}{said}"
    if status in (401, 403):
        return AuthenticationError(
            f"{where}: the credentials were refused; {_KEY_FIX}",
            provider=provider,
            status=status,
        )
    if status == 429:
        return RateLimitError(
            f"{where}: rate limited; lower llm.requests_per_minute / llm.tokens_per_minute "
            "or raise the deployment's quota",
            provider=provider,
            retry_after=parse_retry_after(headers),
        )
    if status in (408, 504):
        return ProviderTimeoutError(
            f"{where}: the provider timed out; retry later or raise llm.timeout_s",
            provider=provider,
            status=status,
        )
    if status >= 500:
        return ProviderUnavailableError(
            f"{where}: the provider failed; retry later or check the endpoint's health",
            provider=provider,
            status=status,
        )
    if status < 400:
        return BadRequestError(
            f"{where}: a redirect, which is not followed (it would resend the key); set "
            "llm.endpoint to the URL it points to",
            provider=provider,
            status=status,
        )
    if code == "content_filter":
        return ContentFilterError(
            f"{where}: the provider's content filter refused the prompt; rephrase the "
            "question or review the deployment's content filter",
            provider=provider,
            status=status,
        )
    fix = (
        _NOT_FOUND_FIX
        if status == 404
        else "check llm.model, llm.structured_output and the request options"
    )
    return BadRequestError(
        f"{where}: the request was refused; {fix}", provider=provider, status=status
    )
