"""Against a real provider, only when its key is set (marker ``integration``; never in CI).

    RAG_TEST_LLM_PROVIDER=mistral RAG_TEST_LLM_API_KEY=... \\
        .venv/bin/python -m pytest -m integration tests/rag/llm/test_integration.py

Optional: RAG_TEST_LLM_ENDPOINT (Azure endpoint, self-hosted base URL), RAG_TEST_LLM_MODEL,
RAG_TEST_LLM_AZURE_ROUTE. Only the synthetic lease corpus of conftest.py is sent.
"""

from __future__ import annotations

import os

import pytest

from rag import Principal, Retriever
from rag._config import LlmSettings
from rag.llm import AnswerDelta, AnswerDone, Answerer, open_chat_model

pytestmark = pytest.mark.integration

PROVIDER = os.environ.get("RAG_TEST_LLM_PROVIDER")


@pytest.fixture
def answerer(llm_settings, corpus_store):  # type: ignore[no-untyped-def]
    if not PROVIDER or not os.environ.get("RAG_TEST_LLM_API_KEY"):
        pytest.skip("set RAG_TEST_LLM_PROVIDER and RAG_TEST_LLM_API_KEY to run")
    cfg = {
        **llm_settings.llm.model_dump(),
        "provider": PROVIDER,
        "api_key": os.environ["RAG_TEST_LLM_API_KEY"],
        "endpoint": os.environ.get("RAG_TEST_LLM_ENDPOINT"),
        "model": os.environ.get("RAG_TEST_LLM_MODEL", "mistral-large-latest"),
        "azure_route": os.environ.get("RAG_TEST_LLM_AZURE_ROUTE", "mistral"),
        "max_retries": 3,
        "answer_tokens": 512,
    }
    settings = llm_settings.model_copy(update={"llm": LlmSettings.model_validate(cfg)})
    embedder, store = corpus_store
    retriever = Retriever(settings, embedder=embedder, store=store, query_steps=())
    chat = open_chat_model(settings)
    try:
        yield Answerer(settings, retriever=retriever, chat=chat)
    finally:
        chat.close()


def test_real_provider_answers_with_verified_citations(answerer) -> None:  # type: ignore[no-untyped-def]
    answer = answerer.answer("How many days notice must the tenant give?", Principal("a"))
    assert not answer.insufficient_context and answer.citations
    assert "ninety" in answer.text.lower() or "90" in answer.text
    assert answer.usage.prompt_tokens > 0


def test_real_provider_streams(answerer) -> None:  # type: ignore[no-untyped-def]
    events = list(answerer.stream("When is rent due?", Principal("a")))
    assert isinstance(events[-1], AnswerDone)
    assert any(isinstance(e, AnswerDelta) for e in events)
