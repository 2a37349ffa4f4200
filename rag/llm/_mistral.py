"""Mistral's API through the official ``mistralai`` SDK.

Requests go in as plain dicts and responses come back through ``model_dump``, so the SDK's
types never leave this module and parsing is shared with the HTTP adapter
(:mod:`rag.llm._wire`). The SDK's own retries are off: :mod:`rag.llm._resilience` retries
every provider the same way. As in the HTTP adapter, finish reasons ``length`` and
``content_filter`` are returned, not raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from rag._errors import (
    BadRequestError,
    DependencyError,
    LlmError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from rag.llm._types import ChatEvent, ChatRequest, ChatResponse
from rag.llm._wire import StreamAccumulator, error_for_status, parse_response, request_body

DEFAULT_SERVER_URL = "https://api.mistral.ai"


class MistralChatModel:
    """A ChatModel on ``mistralai.client.Mistral``; ``timeout_s`` bounds each wait (for a
    stream, the gap between two pieces)."""

    provider = "mistral"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        server_url: str | None = None,
        timeout_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import httpx2
            from mistralai.client import Mistral
            from mistralai.client.utils import BackoffStrategy, RetryConfig
        except ImportError as exc:
            raise DependencyError(
                f"the Mistral SDK is not installed ({exc.name}); install it with "
                "`pip install mistralai` or set llm.provider to another provider"
            ) from None
        self.model = model
        self.server_url = (server_url or DEFAULT_SERVER_URL).rstrip("/")
        self.timeout_s = timeout_s
        self._clock = clock
        # Our own client: no redirects (a redirect would resend the key elsewhere), and
        # closing it is ours to do.
        self._http = httpx2.Client(follow_redirects=False)
        self._sdk = Mistral(
            api_key=api_key,
            server_url=self.server_url,
            client=self._http,
            timeout_ms=max(1, round(timeout_s * 1000)),
            # Strategy "none": the SDK sends once; retries happen in ResilientChatModel.
            retry_config=RetryConfig("none", BackoffStrategy(0, 0, 1.0, 0), False),
        )

    def complete(self, request: ChatRequest) -> ChatResponse:
        model, messages, options = self._arguments(request)
        started = self._clock()
        try:
            result = self._sdk.chat.complete(model=model, messages=messages, **options)
            data = result.model_dump(mode="json", by_alias=True, warnings=False)
        except Exception as exc:
            raise self._translate(exc) from _cause(exc)
        return parse_response(data, self.provider, self._clock() - started)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        model, messages, options = self._arguments(request)
        started = self._clock()
        acc = StreamAccumulator(self.provider)
        try:
            events = self._sdk.chat.stream(model=model, messages=messages, **options)
            with events:
                for event in events:
                    delta = acc.add(
                        event.data.model_dump(mode="json", by_alias=True, warnings=False)
                    )
                    if delta is not None:
                        yield delta
        except LlmError:
            raise
        except Exception as exc:
            raise self._translate(exc) from _cause(exc)
        yield acc.result(self._clock() - started)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MistralChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _arguments(self, request: ChatRequest) -> tuple[str, Any, dict[str, Any]]:
        # The SDK's parameter names are the body's keys (tools, tool_choice,
        # response_format, max_tokens, temperature, top_p, random_seed, safe_prompt).
        body = request_body(request, "mistral", stream=False)
        return body.pop("model"), body.pop("messages"), body

    def _translate(self, exc: Exception) -> LlmError:
        """The typed error for whatever the SDK or its HTTP client raised."""
        import httpx2
        from mistralai.client import errors

        if isinstance(exc, errors.MistralError):
            if exc.status_code >= 300:
                return error_for_status(exc.status_code, exc.headers, exc.body, self.provider)
            return ProviderUnavailableError(
                f"{self.provider}: HTTP {exc.status_code} from {self._host()} was not a "
                "chat-completions answer the SDK could read; check llm.endpoint (and a "
                "proxy in between)",
                provider=self.provider,
                status=exc.status_code,
            )
        if isinstance(exc, httpx2.TimeoutException):
            return ProviderTimeoutError(
                f"{self.provider}: no answer within llm.timeout_s={self.timeout_s:g} s from "
                f"{self._host()}; raise llm.timeout_s or check the endpoint's load",
                provider=self.provider,
            )
        if isinstance(exc, httpx2.TransportError | errors.NoResponseError):
            return ProviderUnavailableError(
                f"{self.provider}: the connection to {self._host()} failed "
                f"({type(exc).__name__}); check llm.endpoint and the network",
                provider=self.provider,
            )
        if isinstance(exc, ValueError | TypeError):
            # The SDK validates the request locally (pydantic) before sending anything.
            return BadRequestError(
                f"{self.provider}: the SDK refused the request before sending it "
                f"({type(exc).__name__}); check the tools and response_format",
                provider=self.provider,
            )
        raise exc

    def _host(self) -> str:
        return self.server_url.split("://", 1)[-1].split("/", 1)[0]


def _cause(exc: Exception) -> Exception | None:
    """Chain transport errors for debugging, nothing else: an SDK error's text holds the
    response body and a local validation error the request's values."""
    import httpx2

    return exc if isinstance(exc, httpx2.TransportError) else None
