"""Provider adapters: the wire translation, then every route against the Mistral simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from rag._config import LlmSettings, Settings
from rag._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContentFilterError,
    LlmError,
    ProviderNotConfiguredError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from rag._simulator import MistralSimulator
from rag.llm._factory import open_chat_model, structured_output_mode
from rag.llm._http import HttpChatModel
from rag.llm._resilience import ResilientChatModel
from rag.llm._types import ChatDelta, ChatModel, ChatRequest, ChatResponse, Message, ToolCall
from rag.llm._wire import (
    StreamAccumulator,
    error_for_status,
    iter_sse,
    parse_response,
    parse_retry_after,
    read_error,
    request_body,
)

TOOL = {
    "type": "function",
    "function": {
        "name": "search_documents",
        "description": "Search the documents.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
}
PROMPT = (
    "Context passages:\n [1] a.pdf, p. 1\n The sky over <PERSON_3f9a1c2b>'s farm is blue."
    "\n [2] b.pdf, p. 4\n Cows eat grass.\n Question: What colour is the sky?"
)


def request(**changes: Any) -> ChatRequest:
    base = ChatRequest((Message("user", PROMPT),), "mistral-large-2402", max_tokens=64)
    return base.with_(**changes)


# -- wire translation (pure) --


def test_mistral_dialect_keeps_mistral_fields() -> None:
    r = request(tools=(TOOL,), tool_choice="any", random_seed=3, safe_prompt=True)
    body = request_body(r, "mistral", stream=True)
    assert body["tool_choice"] == "any" and body["random_seed"] == 3
    assert body["safe_prompt"] is True and body["stream"] is True
    assert "stream_options" not in body and "seed" not in body


def test_openai_dialect_renames_and_drops() -> None:
    r = request(tools=(TOOL,), tool_choice="any", random_seed=3, safe_prompt=True)
    body = request_body(r, "openai", stream=True)
    assert body["tool_choice"] == "required" and body["seed"] == 3
    assert "random_seed" not in body and "safe_prompt" not in body
    assert body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in request_body(r, "openai", stream=False)


def test_parse_response_reads_tool_calls_and_content_chunks() -> None:
    data = {
        "id": "x1",
        "model": "m",
        "choices": [
            {
                "message": {
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"q": 1}}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    r = parse_response(data, "p", 0.5)
    assert r.content == "ab" and r.finish_reason == "tool_calls" and r.latency_s == 0.5
    assert r.tool_calls == (ToolCall("c1", "f", '{"q": 1}'),)
    assert r.usage.total_tokens == 0 and r.provider == "p" and r.id == "x1"


@pytest.mark.parametrize("data", [{}, {"choices": []}, [], {"choices": [{"index": 0}]}])
def test_parse_response_refuses_what_is_not_a_completion(data: Any) -> None:
    with pytest.raises(ProviderUnavailableError, match="could not be read"):
        parse_response(data, "p", 0.0)


def test_stream_accumulator_assembles_openai_fragments_by_index() -> None:
    acc = StreamAccumulator("p")
    fragments = [
        {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
        {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": "{"}},
        {"index": 0, "function": {"arguments": '{"x":'}},
        {"index": 0, "function": {"arguments": " 1}"}},
        {"index": 1, "function": {"arguments": "}"}},
    ]
    assert acc.add({"id": "s", "model": "m", "choices": [{"delta": {"content": "Hi"}}]}) == (
        ChatDelta("Hi")
    )
    for f in fragments:
        assert acc.add({"choices": [{"delta": {"tool_calls": [f]}}]}) is None
    acc.add({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    acc.add({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    r = acc.result(1.0)
    assert r.tool_calls == (ToolCall("a", "f", '{"x": 1}'), ToolCall("b", "g", "{}"))
    assert r.content == "Hi" and r.usage.total_tokens == 5 and (r.model, r.id) == ("m", "s")


def test_stream_accumulator_keeps_whole_calls_apart() -> None:
    acc = StreamAccumulator("p")
    calls = [
        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}},
        {"index": 0, "id": "b", "function": {"name": "g", "arguments": '{"y": 2}'}},
    ]
    acc.add({"choices": [{"delta": {"tool_calls": calls}, "finish_reason": "tool_calls"}]})
    assert [c.name for c in acc.result(0).tool_calls] == ["f", "g"]


def test_stream_accumulator_refuses_a_cut_stream_and_error_chunks() -> None:
    acc = StreamAccumulator("p")
    acc.add({"choices": [{"delta": {"content": "half"}}]})
    with pytest.raises(ProviderUnavailableError, match="finish_reason"):
        acc.result(0)
    with pytest.raises(ProviderUnavailableError, match="overloaded"):
        acc.add({"error": {"message": "overloaded", "code": "busy"}})


def test_iter_sse_handles_multiline_data_comments_and_fields() -> None:
    lines = [
        ": ping",
        'data: {"a":',
        "data: 1}",
        "",
        "event: error",
        "data:{}",
        "id: 7",
        "",
        "",
        "retry: 5",
        "data: [DONE]",
    ]
    assert list(iter_sse(lines)) == [
        ("message", '{"a":\n1}'),
        ("error", "{}"),
        ("message", "[DONE]"),
    ]


def test_parse_retry_after_forms() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": "7"}) == 7
    assert parse_retry_after({"retry-after": "2.5", "Retry-After-Ms": "1200"}) == 1.2
    date = {"Retry-After": "Wed, 01 May 2024 12:00:30 GMT"}
    assert parse_retry_after(date, now=lambda: now) == 30
    past = {"Retry-After": "Wed, 01 May 2024 11:00:00 GMT"}
    assert parse_retry_after(past, now=lambda: now) == 0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_read_error_shapes_never_echo_input() -> None:
    assert read_error(b'{"error": {"code": "content_filter", "message": "filtered"}}') == (
        "content_filter",
        "filtered",
    )
    assert read_error({"object": "error", "message": "bad", "type": "invalid"}) == (
        "invalid",
        "bad",
    )
    detail = {"detail": [{"loc": ["body", "messages", 0], "msg": "bad role", "input": "SECRET"}]}
    _, message = read_error(json.dumps(detail))
    assert message == "body.messages.0: bad role" and "SECRET" not in message
    assert len(read_error({"message": "x" * 5000})[1]) <= 200
    assert read_error(b"<html>oops</html>") == ("", "(a non-JSON body of 17 characters)")


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, {}, AuthenticationError),
        (403, {}, AuthenticationError),
        (400, {"error": {"code": "content_filter"}}, ContentFilterError),
        (400, {"message": "bad"}, BadRequestError),
        (404, {}, BadRequestError),
        (422, {}, BadRequestError),
        (429, {}, RateLimitError),
        (500, {}, ProviderUnavailableError),
        (503, {}, ProviderUnavailableError),
        (504, {}, ProviderTimeoutError),
    ],
)
def test_error_for_status(status: int, body: Any, kind: type[LlmError]) -> None:
    error = error_for_status(status, {"Retry-After": "3"}, body, "azure")
    assert type(error) is kind and error.status == status and error.provider == "azure"
    if kind is RateLimitError:
        assert isinstance(error, RateLimitError) and error.retry_after == 3
    if kind is AuthenticationError:
        assert "RAG_LLM__API_KEY" in str(error)
    if status == 404:
        assert "llm.endpoint" in str(error) and "llm.azure_route" in str(error)


# -- the HTTP adapter's edges (a mock transport) --


def mock_model(handler: Any) -> HttpChatModel:
    return HttpChatModel.openai_compatible(
        "http://gpu-1:8000/v1", model="m", transport=httpx.MockTransport(handler)
    )


COMPLETION = {
    "id": "c",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def sse(*events: str) -> httpx.Response:
    body = "".join(f"{e}\n\n" for e in events)
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def test_a_server_that_ignores_stream_answers_in_one_piece() -> None:
    model = mock_model(lambda req: httpx.Response(200, json=COMPLETION))
    events = list(model.stream(request()))
    assert events[0] == ChatDelta("hi")
    assert isinstance(events[1], ChatResponse) and events[1].usage.total_tokens == 2


def test_a_stream_cut_before_its_end_is_unavailable() -> None:
    chunk = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "h"}}]}
    model = mock_model(lambda req: sse(f"data: {json.dumps(chunk)}"))
    with pytest.raises(ProviderUnavailableError, match="finish_reason"):
        list(model.stream(request()))


def test_an_error_event_in_a_stream_is_unavailable() -> None:
    model = mock_model(lambda req: sse('event: error\ndata: {"message": "overloaded"}'))
    with pytest.raises(ProviderUnavailableError, match="overloaded"):
        list(model.stream(request()))


def test_a_redirect_is_not_followed() -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(str(req.url))
        return httpx.Response(301, headers={"location": "https://elsewhere.example/v1"})

    with pytest.raises(BadRequestError, match="redirect"):
        mock_model(handler).complete(request())
    assert seen == ["http://gpu-1:8000/v1/chat/completions"]


# -- every route against the simulator --

#: route -> (provider, azure_route, endpoint suffix, expected path, expected query)
ROUTES: dict[str, tuple[str, str, str, str, dict[str, str]]] = {
    "mistral": ("mistral", "mistral", "", "/v1/chat/completions", {}),
    "azure-mistral": ("azure", "mistral", "", "/v1/chat/completions", {}),
    "azure-inference": (
        "azure",
        "inference",
        "",
        "/chat/completions",
        {"api-version": "2024-05-01-preview"},
    ),
    "openai-compatible": ("openai-compatible", "mistral", "/v1", "/v1/chat/completions", {}),
}
OPENAI_DIALECT = {"azure-inference", "openai-compatible"}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)  # no real wait


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[MistralSimulator]:
    with MistralSimulator(api_key="test-key", chunk_chars=7) as s:
        yield s


@pytest.fixture
def sim(shared_sim: MistralSimulator) -> Iterator[MistralSimulator]:
    """The module's simulator, with no requests, faults or replies left from other tests
    (tests whose faults outlive them, like ``slow``, start their own)."""
    shared_sim.clear()
    yield shared_sim
    shared_sim.clear()


#: Models opened by a test, closed after it.
OPENED: list[ChatModel] = []


@pytest.fixture(autouse=True)
def _close_models() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def settings_for(route: str, url: str, **llm: Any) -> Settings:
    provider, azure_route, suffix, _, _ = ROUTES[route]
    values: dict[str, Any] = {
        "provider": provider,
        "azure_route": azure_route,
        "endpoint": url + suffix,
        "api_key": "test-key",
        "timeout_s": 2.0,
        "max_retries": 2,
        "backoff_s": 0.01,
        "tokens_per_minute": None,
        "requests_per_minute": None,
        **llm,
    }
    return Settings(llm=LlmSettings(**values))


def open_model(route: str, sim: MistralSimulator, **llm: Any) -> tuple[ChatModel, Sleeps]:
    sleeps = Sleeps()
    model = open_chat_model(settings_for(route, sim.url, **llm), sleep=sleeps)
    OPENED.append(model)
    return model, sleeps


def run(model: ChatModel, r: ChatRequest, streamed: bool) -> ChatResponse:
    if not streamed:
        return model.complete(r)
    events = list(model.stream(r))
    final = events[-1]
    assert isinstance(final, ChatResponse)
    assert all(isinstance(e, ChatDelta) for e in events[:-1])
    assert "".join(e.text for e in events[:-1] if isinstance(e, ChatDelta)) == final.content
    return final


routes = pytest.mark.parametrize("route", list(ROUTES))
modes = pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])


@routes
@modes
def test_answer_usage_path_and_auth(route: str, streamed: bool, sim: MistralSimulator) -> None:
    model, _ = open_model(route, sim)
    response = run(model, request(), streamed)
    assert response.content == "The sky over <PERSON_3f9a1c2b>'s farm is blue. [1]"
    assert response.finish_reason == "stop" and response.model == sim.model
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )
    assert response.attempts == 1 and response.provider == ROUTES[route][0]
    (sent,) = sim.requests
    _, _, _, path, query = ROUTES[route]
    assert (sent.method, sent.path, sent.query) == ("POST", path, query)
    assert sent.header("Authorization") == "Bearer test-key"
    assert sent.json["model"] == "mistral-large-2402" and sent.json["max_tokens"] == 64
    assert bool(sent.json.get("stream")) is streamed
    if streamed and route in OPENAI_DIALECT:
        assert sent.json["stream_options"] == {"include_usage": True}


def test_a_stream_arrives_in_pieces(sim: MistralSimulator) -> None:
    model, _ = open_model("azure-inference", sim)
    deltas = [e for e in model.stream(request()) if isinstance(e, ChatDelta)]
    assert len(deltas) > 3 and all(len(d.text) <= 7 for d in deltas)


@routes
def test_request_options_in_the_route_dialect(route: str, sim: MistralSimulator) -> None:
    model, _ = open_model(route, sim)
    sim.reply(content="ok")
    model.complete(
        request(
            tools=(TOOL,),
            tool_choice="any",
            random_seed=3,
            safe_prompt=True,
            response_format=SCHEMA,
        )
    )
    body = sim.requests[0].json
    assert body["response_format"] == SCHEMA and body["tools"] == [TOOL]
    if route in OPENAI_DIALECT:
        assert (body["tool_choice"], body["seed"]) == ("required", 3)
        assert "safe_prompt" not in body and "random_seed" not in body
    else:
        assert (body["tool_choice"], body["random_seed"], body["safe_prompt"]) == ("any", 3, True)


@routes
@modes
def test_json_answer_with_response_format(
    route: str, streamed: bool, sim: MistralSimulator
) -> None:
    model, _ = open_model(route, sim)
    answer = json.loads(run(model, request(response_format=SCHEMA), streamed).content)
    assert answer["citations"] == [
        {"label": 1, "quote": "The sky over <PERSON_3f9a1c2b>'s farm is blue."}
    ]


@routes
@modes
def test_tool_call_round_trip(route: str, streamed: bool, sim: MistralSimulator) -> None:
    model, _ = open_model(route, sim)
    sim.reply(tool_calls=[{"name": "search_documents", "arguments": {"query": "sky colour"}}])
    first = run(model, request(tools=(TOOL,), tool_choice="auto"), streamed)
    assert first.finish_reason == "tool_calls" and first.content == ""
    (call,) = first.tool_calls
    assert call.name == "search_documents" and json.loads(call.arguments) == {"query": "sky colour"}
    assert len(call.id) == 9
    result = Message(
        "tool",
        "\n [3] c.pdf, p. 2\n The sky is grey in winter.",
        tool_call_id=call.id,
        name=call.name,
    )
    follow = request(tools=(TOOL,)).with_(
        messages=(Message("user", PROMPT), first.message(), result)
    )
    second = run(model, follow, streamed)
    assert second.finish_reason == "stop" and "[" in second.content
    sent = sim.requests[1].json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {
        "role": "tool",
        "content": result.content,
        "tool_call_id": call.id,
        "name": "search_documents",
    }


@routes
@modes
def test_finish_reasons_are_returned_not_raised(
    route: str, streamed: bool, sim: MistralSimulator
) -> None:
    model, _ = open_model(route, sim)
    sim.fault("content_filter")
    assert run(model, request(), streamed).finish_reason == "content_filter"
    sim.fault("length")
    assert run(model, request(), streamed).finish_reason == "length"


# -- faults --


@routes
@modes
def test_unauthorized_is_not_retried(route: str, streamed: bool, sim: MistralSimulator) -> None:
    model, sleeps = open_model(route, sim, api_key="wrong-key")
    with pytest.raises(AuthenticationError, match="RAG_LLM__API_KEY") as info:
        run(model, request(), streamed)
    assert info.value.status == 401 and info.value.provider == ROUTES[route][0]
    assert "wrong-key" not in str(info.value)
    sim.fault("unauthorized")
    model, sleeps = open_model(route, sim)
    with pytest.raises(AuthenticationError):
        run(model, request(), streamed)
    assert len(sim.requests) == 2 and sleeps == []


@routes
@modes
def test_rate_limit_waits_retry_after_then_succeeds(
    route: str, streamed: bool, sim: MistralSimulator
) -> None:
    model, sleeps = open_model(route, sim)
    sim.fault("rate_limit", retry_after=1)
    response = run(model, request(), streamed)
    assert response.attempts == 2 and len(sim.requests) == 2
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 1.1


@routes
@modes
def test_server_error_then_success(route: str, streamed: bool, sim: MistralSimulator) -> None:
    model, sleeps = open_model(route, sim)
    sim.fault("server_error", status=503)
    assert run(model, request(), streamed).attempts == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.01


@routes
@modes
def test_exhausted_server_errors(route: str, streamed: bool, sim: MistralSimulator) -> None:
    model, sleeps = open_model(route, sim, max_retries=1)
    sim.fault("server_error", times=2, status=502)
    with pytest.raises(ProviderUnavailableError, match=r"after 2 attempts") as info:
        run(model, request(), streamed)
    assert info.value.status == 502 and len(sleeps) == 1


@routes
@modes
def test_slow_answer_times_out(route: str, streamed: bool) -> None:
    with MistralSimulator() as sim:  # its own: stop() wakes the slow request
        model, _ = open_model(route, sim, timeout_s=0.3, max_retries=0)
        sim.fault("slow", delay_s=3)
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError, match=r"llm\.timeout_s"):
            run(model, request(), streamed)
        assert time.monotonic() - started < 1.5


@routes
@modes
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("disconnect", ProviderUnavailableError),
        ("malformed_body", ProviderUnavailableError),
        ("content_filter_prompt", ContentFilterError),
    ],
)
def test_fault_maps_to_typed_error(
    route: str, streamed: bool, fault: str, kind: type[LlmError], sim: MistralSimulator
) -> None:
    model, _ = open_model(route, sim, max_retries=0)
    sim.fault(fault)
    with pytest.raises(kind) as info:
        run(model, request(), streamed)
    assert type(info.value) is kind
    assert PROMPT not in str(info.value) and "PERSON_3f9a1c2b" not in str(info.value)


@routes
def test_retried_faults_recover(route: str, sim: MistralSimulator) -> None:
    model, sleeps = open_model(route, sim)
    sim.fault("disconnect")
    sim.fault("malformed_body")
    assert model.complete(request()).attempts == 3 and len(sleeps) == 2


@routes
@modes
def test_json_schema_unsupported_is_a_bad_request(route: str, streamed: bool) -> None:
    with MistralSimulator(supports_json_schema=False) as sim:
        model, sleeps = open_model(route, sim)
        with pytest.raises(BadRequestError, match="response_format") as info:
            run(model, request(response_format=SCHEMA), streamed)
        assert info.value.status == 422 and len(sim.requests) == 1 and sleeps == []
        assert json.loads(
            run(model, request(response_format={"type": "json_object"}), streamed).content
        )["citations"]


# -- the factory --


def test_openai_compatible_without_a_key_sends_no_authorization() -> None:
    with MistralSimulator(api_key=None) as sim:
        model, _ = open_model("openai-compatible", sim, api_key=None)
        model.complete(request())
        assert sim.requests[0].header("Authorization") is None


def test_factory_refuses_incomplete_settings() -> None:
    with pytest.raises(ProviderNotConfiguredError):
        open_chat_model(Settings())
    for provider in ("mistral", "azure"):
        llm = LlmSettings(provider=provider, endpoint="http://127.0.0.1:9")
        with pytest.raises(ConfigError, match="RAG_LLM__API_KEY") as info:
            open_chat_model(Settings(llm=llm))
        assert info.value.setting == "llm.api_key"
    for provider in ("azure", "openai-compatible"):
        llm = LlmSettings(provider=provider, api_key="k")
        with pytest.raises(ConfigError, match="RAG_LLM__ENDPOINT") as info:
            open_chat_model(Settings(llm=llm))
        assert info.value.setting == "llm.endpoint"


def test_factory_shares_one_limiter_per_deployment() -> None:
    s = settings_for("azure-mistral", "http://127.0.0.1:9", tokens_per_minute=1000)
    a, b = open_chat_model(s), open_chat_model(s)
    other = open_chat_model(settings_for("azure-inference", "http://127.0.0.1:9"))
    OPENED.extend((a, b, other))
    assert isinstance(a, ResilientChatModel) and isinstance(b, ResilientChatModel)
    assert isinstance(other, ResilientChatModel)
    assert a.limiter is b.limiter and a.limiter is not other.limiter
    assert a.limiter.tokens_per_minute == 1000 and a.limiter.requests_per_minute is None


@pytest.mark.parametrize(
    ("provider", "mode", "expected"),
    [
        ("azure", "auto", "json_object"),
        ("mistral", "auto", "json_schema"),
        ("openai-compatible", "auto", "json_schema"),
        ("azure", "json_schema", "json_schema"),
        ("mistral", "json_object", "json_object"),
    ],
)
def test_structured_output_mode(provider: str, mode: str, expected: str) -> None:
    llm = LlmSettings(provider=provider, structured_output=mode)
    assert structured_output_mode(Settings(llm=llm)) == expected
