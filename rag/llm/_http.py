"""Chat completions over plain HTTP (httpx): Azure AI serverless endpoints (both routes)
and OpenAI-compatible servers (vLLM, Ollama, TGI...).

The adapter raises the typed errors of :mod:`rag._errors` for refused or failed calls. A
finish reason of ``length``, ``content_filter`` or ``content_filter_error`` is not an
error here: the ChatResponse is returned and the answer stage decides what it means.
Retries and rate limits are :mod:`rag.llm._resilience`'s job, not this one's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import httpx

from rag._errors import LlmError, ProviderTimeoutError, ProviderUnavailableError
from rag.llm._types import ChatDelta, ChatEvent, ChatRequest, ChatResponse
from rag.llm._wire import (
    Dialect,
    StreamAccumulator,
    error_for_status,
    iter_sse,
    parse_response,
    request_body,
)

HttpProvider = Literal["azure", "openai-compatible"]


class HttpChatModel:
    """A ChatModel speaking chat completions to ``url`` in ``dialect``.

    Build it with :meth:`azure` or :meth:`openai_compatible`. ``timeout_s`` bounds each
    wait: the connection, the answer, and for a stream the gap between two pieces.
    """

    def __init__(
        self,
        *,
        provider: HttpProvider,
        model: str,
        url: str,
        dialect: Dialect,
        api_key: str | None = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider: str = provider
        self.model = model
        self.url = url
        self.dialect: Dialect = dialect
        self.timeout_s = timeout_s
        self._params = dict(params or {})
        self._clock = clock
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            # A redirect would resend the key to wherever it points.
            follow_redirects=False,
        )

    @classmethod
    def azure(
        cls,
        endpoint: str,
        *,
        model: str,
        api_key: str | None,
        route: Literal["mistral", "inference"] = "mistral",
        api_version: str | None = None,
        timeout_s: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> HttpChatModel:
        """Azure AI serverless: route ``mistral`` posts to ``/v1/chat/completions`` in
        Mistral's dialect; ``inference`` to ``/chat/completions?api-version=`` in OpenAI's."""
        base = endpoint.rstrip("/")
        native = route == "mistral"
        return cls(
            provider="azure",
            model=model,
            url=f"{base}/v1/chat/completions" if native else f"{base}/chat/completions",
            dialect="mistral" if native else "openai",
            api_key=api_key,
            params={"api-version": api_version} if api_version and not native else {},
            timeout_s=timeout_s,
            transport=transport,
        )

    @classmethod
    def openai_compatible(
        cls,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> HttpChatModel:
        """``base_url`` holds the version prefix already, e.g. ``http://gpu-1:8000/v1``."""
        return cls(
            provider="openai-compatible",
            model=model,
            url=f"{base_url.rstrip('/')}/chat/completions",
            dialect="openai",
            api_key=api_key,
            timeout_s=timeout_s,
            transport=transport,
        )

    # -- the port --
    def complete(self, request: ChatRequest) -> ChatResponse:
        body = request_body(request, self.dialect, stream=False)
        started = self._clock()
        try:
            response = self._client.post(self.url, params=self._params, json=body)
        except httpx.TimeoutException as exc:
            raise self._timeout() from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 300:
            raise error_for_status(
                response.status_code, response.headers, response.content, self.provider
            )
        try:
            data = response.json()
        except ValueError:
            raise self._not_json(response) from None
        return parse_response(data, self.provider, self._clock() - started)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        body = request_body(request, self.dialect, stream=True)
        started = self._clock()
        try:
            with self._client.stream("POST", self.url, params=self._params, json=body) as resp:
                if resp.status_code >= 300:
                    resp.read()
                    raise error_for_status(
                        resp.status_code, resp.headers, resp.content, self.provider
                    )
                if "text/event-stream" not in resp.headers.get("content-type", ""):
                    # Some servers ignore ``stream`` and answer in one piece.
                    yield from self._whole(resp, started)
                    return
                yield from self._events(resp, started)
        except httpx.TimeoutException as exc:
            raise self._timeout() from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers --
    def _events(self, resp: httpx.Response, started: float) -> Iterator[ChatEvent]:
        acc = StreamAccumulator(self.provider)
        for event, data in iter_sse(resp.iter_lines()):
            if data.strip() == "[DONE]":
                break
            try:
                chunk: Any = json.loads(data)
            except ValueError:
                raise self._not_json(resp) from None
            if event == "error" and not (isinstance(chunk, dict) and "error" in chunk):
                chunk = {"error": chunk}
            delta = acc.add(chunk)
            if delta is not None:
                yield delta
        yield acc.result(self._clock() - started)

    def _whole(self, resp: httpx.Response, started: float) -> Iterator[ChatEvent]:
        resp.read()
        try:
            data = resp.json()
        except ValueError:
            raise self._not_json(resp) from None
        answer = parse_response(data, self.provider, self._clock() - started)
        if answer.content:
            yield ChatDelta(answer.content)
        yield answer

    def _timeout(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{self.provider}: no answer within llm.timeout_s={self.timeout_s:g} s from "
            f"{self._where()}; raise llm.timeout_s or check the endpoint's load",
            provider=self.provider,
        )

    def _unreachable(self, exc: Exception) -> LlmError:
        return ProviderUnavailableError(
            f"{self.provider}: the connection to {self._where()} failed "
            f"({type(exc).__name__}); check llm.endpoint and the network",
            provider=self.provider,
        )

    def _not_json(self, resp: httpx.Response) -> ProviderUnavailableError:
        kind = resp.headers.get("content-type", "no content type").split(";")[0]
        return ProviderUnavailableError(
            f"{self.provider}: HTTP {resp.status_code} from {self._where()} was not "
            f"chat-completions JSON ({kind}); check llm.endpoint (and a proxy in between)",
            provider=self.provider,
            status=resp.status_code,
        )

    def _where(self) -> str:
        # Host and path only: no query or user info can ride along in a message.
        url = httpx.URL(self.url)
        port = f":{url.port}" if url.port else ""
        return f"{url.host}{port}{url.path}"
