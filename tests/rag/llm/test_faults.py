"""Done-when fault tests: the whole answer stage (real adapters, real HTTP) against the
simulator's faults. Each ends as specified and none hangs (bounded timeouts, no real
back-off sleeps)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from rag import (
    AnswerTruncatedError,
    ContentFilterError,
    Principal,
    ProviderTimeoutError,
    RateLimitError,
    Retriever,
    ToolLoopError,
)
from rag._config import LlmSettings
from rag.llm import Answerer, open_chat_model
from rag.testing import MistralSimulator

ROUTES: dict[str, dict[str, Any]] = {
    "mistral": {"provider": "mistral"},
    "azure-mistral": {"provider": "azure", "azure_route": "mistral"},
    "azure-inference": {"provider": "azure", "azure_route": "inference"},
    "openai-compatible": {"provider": "openai-compatible"},
}
QUESTION = "How many days notice must the tenant give?"
ALICE = Principal("alice")


@pytest.fixture(scope="module")
def sim() -> Iterator[MistralSimulator]:
    with MistralSimulator(api_key="k") as server:
        yield server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _answerer(settings, corpus_store, sim, route="mistral", **llm):  # type: ignore[no-untyped-def]
    cfg = {**ROUTES[route], "api_key": "k", "max_retries": 2, "timeout_s": 5.0, **llm}
    cfg["endpoint"] = sim.url + ("/v1" if cfg["provider"] == "openai-compatible" else "")
    llm_cfg = LlmSettings.model_validate({**settings.llm.model_dump(), **cfg})
    settings = settings.model_copy(update={"llm": llm_cfg})
    sleeps = Sleeps()
    embedder, store = corpus_store
    retriever = Retriever(settings, embedder=embedder, store=store, query_steps=())
    chat = open_chat_model(settings, sleep=sleeps)
    sim.clear()
    return Answerer(settings, retriever=retriever, chat=chat), sleeps


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_429_honours_retry_after_then_answers(llm_settings, corpus_store, sim, route) -> None:
    answerer, sleeps = _answerer(llm_settings, corpus_store, sim, route)
    sim.fault("rate_limit", retry_after=3)
    answer = answerer.answer(QUESTION, ALICE)
    assert answer.citations and len(sim.requests) == 2
    assert len(sleeps) == 1 and 3 <= sleeps[0] < 4  # Retry-After, plus a little jitter


def test_429_with_retry_after_beyond_the_limit_fails_at_once(llm_settings, corpus_store, sim):  # type: ignore[no-untyped-def]
    answerer, sleeps = _answerer(llm_settings, corpus_store, sim, max_retry_after_s=10)
    sim.fault("rate_limit", retry_after=600)
    with pytest.raises(RateLimitError) as caught:
        answerer.answer(QUESTION, ALICE)
    assert caught.value.retry_after == 600 and not sleeps and len(sim.requests) == 1


def test_429_every_time_gives_up_after_the_retries(llm_settings, corpus_store, sim) -> None:
    answerer, sleeps = _answerer(llm_settings, corpus_store, sim)
    sim.fault("rate_limit", times=None, retry_after=1)
    with pytest.raises(RateLimitError, match="3 attempts"):
        answerer.answer(QUESTION, ALICE)
    assert len(sim.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_500_then_success(llm_settings, corpus_store, sim, route) -> None:
    answerer, sleeps = _answerer(llm_settings, corpus_store, sim, route)
    sim.fault("server_error", status=503)
    answer = answerer.answer(QUESTION, ALICE)
    assert answer.citations and len(sim.requests) == 2 and len(sleeps) == 1


@pytest.mark.parametrize("route", ["mistral", "openai-compatible"])
def test_timeouts_are_retried_then_raised(llm_settings, corpus_store, sim, route) -> None:
    answerer, _ = _answerer(llm_settings, corpus_store, sim, route, timeout_s=0.3, max_retries=1)
    sim.fault("slow", delay_s=3)
    assert answerer.answer(QUESTION, ALICE).citations  # one slow answer, then a good one
    sim.fault("slow", times=2, delay_s=3)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match=r"llm.timeout_s"):
        answerer.answer(QUESTION, ALICE)
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_json_then_repaired(llm_settings, corpus_store, sim, stream) -> None:
    answerer, _ = _answerer(llm_settings, corpus_store, sim)
    sim.fault("malformed")
    if stream:
        *_, done = answerer.stream(QUESTION, ALICE)
        answer = done.answer  # type: ignore[attr-defined]
    else:
        answer = answerer.answer(QUESTION, ALICE)
    assert answer.repaired and answer.calls == 2 and answer.citations
    repair = sim.requests[1].json["messages"][-1]
    assert repair["role"] == "user" and "not valid JSON" in repair["content"]


def test_malformed_http_body_is_retried(llm_settings, corpus_store, sim) -> None:
    answerer, sleeps = _answerer(llm_settings, corpus_store, sim)
    sim.fault("malformed_body")
    assert answerer.answer(QUESTION, ALICE).citations and len(sleeps) == 1


@pytest.mark.parametrize("kind", ["content_filter", "content_filter_prompt"])
def test_content_filter_is_a_typed_error(llm_settings, corpus_store, sim, kind) -> None:
    answerer, sleeps = _answerer(llm_settings, corpus_store, sim, "azure-inference")
    sim.fault(kind)
    with pytest.raises(ContentFilterError, match="content filter"):
        answerer.answer(QUESTION, ALICE)
    assert len(sim.requests) == 1 and not sleeps  # never retried


def test_length_is_a_typed_error(llm_settings, corpus_store, sim) -> None:
    answerer, _ = _answerer(llm_settings, corpus_store, sim)
    sim.fault("length")
    with pytest.raises(AnswerTruncatedError, match=r"llm.answer_tokens"):
        answerer.answer(QUESTION, ALICE)


def test_tool_loop_hits_its_step_limit(llm_settings, corpus_store, sim) -> None:
    answerer, _ = _answerer(llm_settings, corpus_store, sim, max_tool_steps=3)
    sim.reply(tool_calls=[{"name": "search_documents", "arguments": {"query": "x"}}], times=None)
    with pytest.raises(ToolLoopError, match=r"llm.max_tool_steps"):
        answerer.answer(QUESTION, ALICE)
    assert len(sim.requests) == 4
    assert [r.json.get("tool_choice") for r in sim.requests] == ["auto"] * 3 + ["none"]


def test_json_schema_refused_falls_back_to_json_mode(llm_settings, corpus_store) -> None:
    with MistralSimulator(api_key="k", supports_json_schema=False) as strict:
        answerer, _ = _answerer(llm_settings, corpus_store, strict, "openai-compatible")
        assert answerer.answer(QUESTION, ALICE).citations
        assert answerer.answer(QUESTION, ALICE).citations
        kinds = [r.json["response_format"]["type"] for r in strict.requests]
        assert kinds == ["json_schema", "json_object", "json_object"]  # remembered
