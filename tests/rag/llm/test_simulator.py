"""The Mistral API simulator, driven by plain httpx and by the real mistralai SDK."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rag._simulator import MistralSimulator

KEY = "test-key"
PLACEHOLDER = "<PERSON_3f9a1c2b>"
PROMPT = (
    "Context passages:"
    "\n [1] handbook.pdf, p. 2, section: Travel"
    "\n Trains are booked through the portal. Taxis need a receipt."
    "\n [2] contract.pdf, p. 4"
    f"\n The contract was signed by {PLACEHOLDER} in March. It runs for two years."
    "\n Question: Who signed the contract?"
)
SIGNED = f"The contract was signed by {PLACEHOLDER} in March."
JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
}


def chat(question_prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "Answer from the passages."},
        {"role": "user", "content": question_prompt},
    ]
    return {"model": "mistral-large-2402", "messages": messages, **extra}


@pytest.fixture
def sim() -> Iterator[MistralSimulator]:
    with MistralSimulator(api_key=KEY) as s:
        yield s


@pytest.fixture
def client(sim: MistralSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=sim.url, headers=headers, timeout=3.0) as c:
        yield c


def post(client: httpx.Client, body: Any, path: str = "/v1/chat/completions") -> httpx.Response:
    return client.post(path, json=body)


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def events(response: httpx.Response) -> list[dict[str, Any]]:
    """SSE data lines, checking the stream ends with [DONE]."""
    assert response.headers["content-type"].startswith("text/event-stream")
    data = [ln[len("data: ") :] for ln in response.text.split("\n\n") if ln.strip()]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


# Routes and auth


def test_both_routes_answer_and_list_the_model(sim: MistralSimulator) -> None:
    with httpx.Client(base_url=sim.url, timeout=3.0) as c:
        mistral = c.post(
            "/v1/chat/completions", json=chat(), headers={"Authorization": f"Bearer {KEY}"}
        )
        azure = c.post(
            "/chat/completions?api-version=2024-05-01-preview",
            json={"messages": chat()["messages"]},  # Azure deployments imply the model
            headers={"api-key": KEY},
        )
        models = c.get("/models", headers={"api-key": KEY})
    assert content(mistral) == content(azure) == f"{SIGNED} [2]"
    assert azure.json()["model"] == "mistral-large-2402"
    assert azure.headers["content-length"] == str(len(azure.content))
    assert models.json() == {
        "object": "list",
        "data": [{"id": "mistral-large-2402", "object": "model", "owned_by": "mistralai"}],
    }
    assert sim.requests[1].query == {"api-version": "2024-05-01-preview"}


def test_unknown_route_and_wrong_method_are_json_errors(client: httpx.Client) -> None:
    missing = client.post("/v1/embeddings", json={})
    assert missing.status_code == 404
    assert missing.json()["object"] == "error"
    wrong = client.get("/v1/chat/completions")
    assert wrong.status_code == 405


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"api-key": "wrong"}, {"Authorization": KEY}]
)
def test_auth_refusal(sim: MistralSimulator, headers: dict[str, str]) -> None:
    response = httpx.post(sim.url + "/v1/chat/completions", json=chat(), headers=headers, timeout=3)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["message"]
    assert KEY not in response.text
    assert len(sim.requests) == 1  # refused requests are recorded too


def test_no_api_key_means_no_auth() -> None:
    with MistralSimulator(api_key=None) as sim:
        response = httpx.post(sim.url + "/v1/chat/completions", json=chat(), timeout=3)
    assert content(response) == f"{SIGNED} [2]"


# Default answers


@pytest.mark.parametrize("fmt", [{"type": "json_object"}, JSON_SCHEMA])
def test_grounded_json_answer_cites_the_right_passage(client: httpx.Client, fmt: Any) -> None:
    answer = json.loads(content(post(client, chat(response_format=fmt))))
    assert answer == {
        "answer": f"{SIGNED} [2]",
        "citations": [{"label": 2, "quote": SIGNED}],
        "insufficient_context": False,
    }
    assert SIGNED in PROMPT  # the quote is verbatim, placeholder included


def test_insufficient_context(client: httpx.Client) -> None:
    prompt = PROMPT.replace("Who signed the contract?", "What is the capital of Peru?")
    answer = json.loads(
        content(post(client, chat(prompt, response_format={"type": "json_object"})))
    )
    assert answer == {
        "answer": "The documents do not contain the answer.",
        "citations": [],
        "insufficient_context": True,
    }
    assert content(post(client, chat(prompt))) == "The documents do not contain the answer."


def test_plain_text_mode_and_ties(client: httpx.Client) -> None:
    assert content(post(client, chat(response_format={"type": "text"}))) == f"{SIGNED} [2]"
    # "receipt" and "portal" score one each: the lower label, then the earlier sentence.
    prompt = PROMPT.replace("Who signed the contract?", "Receipt or portal?")
    assert content(post(client, chat(prompt))) == "Trains are booked through the portal. [1]"


def test_tool_passages_and_repair_requests(client: httpx.Client) -> None:
    body = chat(PROMPT.replace("Who signed the contract?", "How long is the warranty?"))
    body["messages"] += [
        {"role": "assistant", "content": "{broken", "tool_calls": []},
        {
            "role": "tool",
            "tool_call_id": "abc123def",
            "name": "search_documents",
            "content": "Found 1 passage:\n [3] warranty.pdf, p. 1\n The warranty lasts six months.",
        },
        {"role": "user", "content": "Your answer was invalid JSON; repair it."},
    ]
    assert content(post(client, body)) == "The warranty lasts six months. [3]"


def test_usage_counts_words(client: httpx.Client) -> None:
    body = chat()
    data = post(client, body).json()
    words = sum(len(m["content"].split()) for m in body["messages"])
    answer_words = len(data["choices"][0]["message"]["content"].split())
    assert data["usage"] == {
        "prompt_tokens": math.ceil(words * 4 / 3),
        "completion_tokens": math.ceil(answer_words * 4 / 3),
        "total_tokens": math.ceil(words * 4 / 3) + math.ceil(answer_words * 4 / 3),
    }
    assert re.fullmatch(r"cmpl-[0-9a-f]{32}", data["id"])


# Streaming


def test_streaming_reassembles_and_splits_the_placeholder(client: httpx.Client) -> None:
    body = chat(response_format={"type": "json_object"})
    whole = content(post(client, body))
    chunks = events(post(client, {**body, "stream": True}))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks]
    assert "".join(pieces) == whole
    assert max(len(p) for p in pieces) == 7
    assert PLACEHOLDER in whole and not any(PLACEHOLDER in p for p in pieces)
    assert [c["choices"][0]["finish_reason"] for c in chunks[-2:]] == [None, "stop"]
    assert chunks[-1]["usage"]["total_tokens"] > 0 and "usage" not in chunks[-2]


def test_scripted_tool_calls(client: httpx.Client, sim: MistralSimulator) -> None:
    call = {"name": "search_documents", "arguments": {"query": "warranty"}}
    sim.reply(tool_calls=[call], times=2)
    sim.reply(content="Done.")
    first = post(client, chat()).json()["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    (made,) = first["message"]["tool_calls"]
    assert made["type"] == "function" and made["function"]["name"] == "search_documents"
    assert json.loads(made["function"]["arguments"]) == {"query": "warranty"}
    assert re.fullmatch(r"[0-9A-Za-z]{9}", made["id"])
    chunks = events(post(client, chat(stream=True)))
    deltas = [c["choices"][0]["delta"] for c in chunks if "tool_calls" in c["choices"][0]["delta"]]
    assert len(deltas) == 1 and deltas[0]["tool_calls"][0]["index"] == 0
    assert deltas[0]["tool_calls"][0]["id"] != made["id"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert content(post(client, chat())) == "Done."
    assert content(post(client, chat())) == f"{SIGNED} [2]"  # the script ran out


def test_reply_forever_and_clear(client: httpx.Client, sim: MistralSimulator) -> None:
    sim.reply(tool_calls=[{"name": "search_documents", "arguments": "{}"}], times=None)
    for _ in range(4):
        assert post(client, chat()).json()["choices"][0]["finish_reason"] == "tool_calls"
    sim.fault("server_error")
    sim.clear()
    assert sim.requests == []
    assert content(post(client, chat())) == f"{SIGNED} [2]"


# Faults


def test_rate_limit_then_recovery(client: httpx.Client, sim: MistralSimulator) -> None:
    sim.fault("rate_limit", retry_after=2)
    limited = post(client, chat())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2" and limited.headers["retry-after-ms"] == "2000"
    assert limited.json()["object"] == "error"
    assert content(post(client, chat())) == f"{SIGNED} [2]"


def test_faults_are_consumed_in_order(client: httpx.Client, sim: MistralSimulator) -> None:
    sim.fault("server_error", times=2, status=503)
    sim.fault("unauthorized")
    sim.fault("content_filter_prompt")
    statuses = [post(client, chat(), "/chat/completions").status_code for _ in range(5)]
    assert statuses == [503, 503, 401, 400, 200]


def test_azure_route_errors_use_the_azure_shape(
    client: httpx.Client, sim: MistralSimulator
) -> None:
    sim.fault("content_filter_prompt")
    sim.fault("server_error")
    filtered = post(client, chat(), "/chat/completions")
    assert filtered.json()["error"]["code"] == "content_filter"
    assert post(client, chat(), "/chat/completions").json()["error"]["code"] == "500"


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_content(client: httpx.Client, sim: MistralSimulator, stream: bool) -> None:
    sim.fault("malformed")
    response = post(client, chat(response_format={"type": "json_object"}, stream=stream))
    text = streamed_text(events(response)) if stream else content(response)
    assert text and json.loads(content(post(client, chat(response_format={"type": "json_object"}))))
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_malformed_body(client: httpx.Client, sim: MistralSimulator) -> None:
    sim.fault("malformed_body")
    response = post(client, chat())
    assert response.status_code == 200
    assert response.content == b"<html>oops"
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize("stream", [False, True])
def test_content_filter_and_length(
    client: httpx.Client, sim: MistralSimulator, stream: bool
) -> None:
    full = content(post(client, chat()))
    sim.fault("content_filter")
    sim.fault("length")
    results = []
    for _ in range(2):
        response = post(client, chat(stream=stream))
        if stream:
            chunks = events(response)
            results.append((streamed_text(chunks), chunks[-1]["choices"][0]["finish_reason"]))
        else:
            choice = response.json()["choices"][0]
            results.append((choice["message"]["content"], choice["finish_reason"]))
    assert results[0] == ("", "content_filter")
    assert results[1][1] == "length"
    assert results[1][0] and full.startswith(results[1][0]) and results[1][0] != full


def test_slow_answers_after_the_delay(client: httpx.Client, sim: MistralSimulator) -> None:
    sim.fault("slow", delay_s=0.3)
    started = time.monotonic()
    assert content(post(client, chat())) == f"{SIGNED} [2]"
    assert 0.3 <= time.monotonic() - started < 2.5


def test_disconnect_resets_the_connection(client: httpx.Client, sim: MistralSimulator) -> None:
    sim.fault("disconnect")
    with pytest.raises(httpx.TransportError):
        post(client, chat())
    assert content(post(client, chat())) == f"{SIGNED} [2]"


def test_fault_and_reply_arguments_are_checked(sim: MistralSimulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sim.fault("explode")
    with pytest.raises(ValueError, match="retry_afterr"):
        sim.fault("rate_limit", retry_afterr=1)
    with pytest.raises(ValueError, match="5xx"):
        sim.fault("server_error", status=404)
    with pytest.raises(ValueError, match="times"):
        sim.reply("x", times=0)
    with pytest.raises(ValueError, match="name"):
        sim.reply(tool_calls=[{"arguments": {}}])


# Request validation


def test_json_schema_refused_when_unsupported() -> None:
    with (
        MistralSimulator(api_key=None, supports_json_schema=False) as sim,
        httpx.Client(base_url=sim.url, timeout=3) as c,
    ):
        refused = post(c, chat(response_format=JSON_SCHEMA))
        fallback = post(c, chat(response_format={"type": "json_object"}))
    assert refused.status_code == 422
    assert "response_format" in refused.json()["message"]
    assert json.loads(content(fallback))["citations"][0]["label"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 422),
        (b'{"messages": []}', 422),
        (b'{"messages": [{"role": "robot", "content": "hi"}]}', 422),
        (b'{"messages": [{"role": "user", "content": "hi"}], "response_format": "json"}', 422),
        (b'{"messages": [{"role": "user", "content": "hi"}], "tool_choice": "always"}', 422),
    ],
)
def test_invalid_requests(client: httpx.Client, body: bytes, status: int) -> None:
    response = client.post("/v1/chat/completions", content=body)
    assert response.status_code == status
    assert response.json()["object"] == "error"


def test_lenient_on_what_the_api_accepts(client: httpx.Client) -> None:
    body = chat(tool_choice="required", safe_prompt=True, random_seed=7, some_new_field={"x": 1})
    body["messages"][1]["content"] = [{"type": "text", "text": PROMPT}]
    assert content(post(client, body)) == f"{SIGNED} [2]"


def test_requests_are_recorded_as_received(client: httpx.Client, sim: MistralSimulator) -> None:
    sim.fault("rate_limit")
    body = chat()
    post(client, body)
    client.get("/nowhere")
    first, second = sim.requests
    assert (first.method, first.path, first.json) == ("POST", "/v1/chat/completions", body)
    assert json.loads(first.body) == body
    assert first.header("authorization") == f"Bearer {KEY}"
    assert first.header("AUTHORIZATION") == first.headers["Authorization"]  # as httpx sent it
    assert (second.method, second.path, second.json, second.body) == ("GET", "/nowhere", None, b"")
    assert first.received_at <= second.received_at


# Lifecycle


def test_stop_returns_promptly_while_a_slow_request_waits() -> None:
    sim = MistralSimulator(api_key=None).start()
    sim.fault("slow", delay_s=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(sim.url + "/v1/chat/completions", json=chat(), timeout=5)
        except httpx.HTTPError as e:
            errors.append(e)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    deadline = time.monotonic() + 3
    while not sim.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.requests, "the slow request never arrived"
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2.0
    caller.join(timeout=3)
    assert not caller.is_alive() and len(errors) == 1  # the client saw the connection drop
    sim.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url


def test_stop_without_start_and_restart() -> None:
    sim = MistralSimulator()
    sim.stop()
    with sim:
        first = sim.url
    with sim:
        assert sim.url.startswith("http://127.0.0.1:")
    assert first.startswith("http://127.0.0.1:")


# The real SDK


def test_mistralai_sdk_complete_and_stream(sim: MistralSimulator) -> None:
    from mistralai.client import Mistral
    from mistralai.client.errors import SDKError
    from mistralai.client.utils import BackoffStrategy, RetryConfig

    no_retries = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)
    sdk = Mistral(api_key=KEY, server_url=sim.url, retry_config=no_retries, timeout_ms=3000)
    messages: Any = chat()["messages"]
    done: Any = sdk.chat.complete(
        model="mistral-large-2402", messages=messages, response_format={"type": "json_object"}
    )
    assert json.loads(str(done.choices[0].message.content))["citations"][0]["quote"] == SIGNED
    assert done.usage.total_tokens > 0
    sim.reply(tool_calls=[{"name": "search_documents", "arguments": {"query": "x"}}])
    called: Any = sdk.chat.complete(model="mistral-large-2402", messages=messages)
    assert called.choices[0].message.tool_calls[0].function.name == "search_documents"
    pieces: list[str] = []
    finish: Any = None
    with sdk.chat.stream(model="mistral-large-2402", messages=messages) as stream:
        for event in stream:
            choice = event.data.choices[0]
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(str(p) for p in pieces) == f"{SIGNED} [2]" and finish == "stop"
    sim.fault("rate_limit")
    with pytest.raises(SDKError) as refused:
        sdk.chat.complete(model="mistral-large-2402", messages=messages)
    assert refused.value.status_code == 429
    sent = sim.requests[0]
    assert (
        sent.header("authorization") == f"Bearer {KEY}"
        and sent.json["model"] == "mistral-large-2402"
    )
