"""The answer stage with a scripted chat model: JSON validation, citation checks, repair,
typed errors, the tool loop and its budget, streaming events."""

from __future__ import annotations

import json

import pytest

from rag import (
    AnswerTruncatedError,
    ContentFilterError,
    InvalidAnswerError,
    Principal,
    Retriever,
    ToolLoopError,
)
from rag.llm import (
    ANSWER_SCHEMA,
    AnswerDelta,
    AnswerDone,
    Answerer,
    AnswerRestart,
    ToolStep,
    tool,
    validate_answer,
)
from rag.llm._answer import Passage, quote_in
from rag.testing import ScriptedChatModel, grounded_answer

NOTICE = "The tenant must give ninety days notice before terminating the lease."


def _answerer(settings, corpus_store, chat, **kwargs):  # type: ignore[no-untyped-def]
    embedder, store = corpus_store
    retriever = Retriever(settings, embedder=embedder, store=store, query_steps=())
    return Answerer(settings, retriever=retriever, chat=chat, **kwargs)


def _label_of(chat: ScriptedChatModel, text: str) -> int:
    """The label the packer gave the passage holding ``text`` in the first request."""
    user = chat.requests[0].messages[1].content
    label = None
    for line in user.split("\n"):
        line = line.strip()
        if line.startswith("[") and "]" in line:
            label = int(line[1 : line.index("]")])
        elif text in line:
            return label  # type: ignore[return-value]
    raise AssertionError("passage not in the request")


def _json(answer: str, citations: list[tuple[int, str]], insufficient: bool = False) -> str:
    return json.dumps(
        {
            "answer": answer,
            "citations": [{"label": n, "quote": q} for n, q in citations],
            "insufficient_context": insufficient,
        }
    )


def test_grounded_answer_with_checked_citation(llm_settings, corpus_store) -> None:
    chat = ScriptedChatModel(default=grounded_answer)
    answer = _answerer(llm_settings, corpus_store, chat).answer(
        "How many days notice must the tenant give?", Principal("alice")
    )
    assert NOTICE in answer.text and not answer.insufficient_context
    [citation] = answer.citations
    assert citation.quote == NOTICE
    assert citation.source == "/docs/lease.pdf" and citation.pages == (3,)
    assert answer.provider == "scripted" and answer.calls == 1 and not answer.repaired
    assert answer.usage.total_tokens > 0 and answer.latency_s > 0
    assert {"retrieve", "pack", "guard", "model"} <= set(answer.timings_ms)
    assert not answer.reidentified  # privacy is off in these tests
    request = chat.requests[0]
    assert request.response_format["type"] == "json_schema"
    assert request.response_format["json_schema"]["schema"] == ANSWER_SCHEMA
    assert request.max_tokens == llm_settings.llm.answer_tokens
    assert [t["function"]["name"] for t in request.tools] == ["search_documents"]
    # The schema is in the system prompt too (JSON mode needs it), counted by the packer.
    assert '"insufficient_context"' in request.messages[0].content


def test_acl_applies_to_what_the_model_sees(llm_settings, corpus_store) -> None:
    chat = ScriptedChatModel(default=grounded_answer)
    answerer = _answerer(llm_settings, corpus_store, chat)
    answerer.answer("When is the salary review of the engineering team?", Principal("bob"))
    assert "happens every March" not in chat.requests[-1].messages[1].content
    answerer.answer("When is the salary review of the engineering team?",
                    Principal("carol", ("hr",)))  # fmt: skip
    assert "happens every March" in chat.requests[-1].messages[1].content


def test_quote_matching_normalises_whitespace_and_elisions() -> None:
    text = "The tenant must give\n ninety  days notice before terminating the lease."
    assert quote_in("must give ninety days notice", text)
    assert quote_in("The tenant ... before terminating", text)
    assert not quote_in("before terminating ... The tenant", text)  # order matters
    assert not quote_in("must give sixty days notice", text)
    assert not quote_in("...", text)


def test_validation_problems_name_labels_not_text() -> None:
    passage = Passage(1, NOTICE, "/docs/lease.pdf", "lease", None, ())
    _, _, problems = validate_answer(
        _json("See [1] and [4].", [(1, "ninety years"), (7, "x")]), {1: passage}
    )
    joined = " ".join(problems)
    assert "citation 1" in joined and "passage [1]" in joined
    assert "[7] is not a passage label" in joined and "[4]" in joined
    assert "ninety years" not in joined
    _, _, problems = validate_answer('{"answer": "x"', {1: passage})
    assert problems and "not valid JSON" in problems[0]
    _, _, problems = validate_answer(_json("It is so.", []), {1: passage})
    assert any("no citations" in p for p in problems)
    parsed, cites, problems = validate_answer(
        "```json\n" + _json("Not in the documents.", [], insufficient=True) + "\n```", {}
    )
    assert parsed is not None and parsed.insufficient_context and not problems and not cites
    parsed, cites, problems = validate_answer(
        json.dumps({"answer": "Yes [1]", "citations": [{"label": "[1]", "quote": "ninety days"}],
                    "insufficient_context": False}), {1: passage})  # fmt: skip
    assert not problems and cites[0].label == 1


def test_invalid_answer_is_repaired_once(llm_settings, corpus_store) -> None:
    chat = ScriptedChatModel()
    chat.reply('{"answer": "ninety days [1]", "citations": [{"label": 1, "quote": "ninety')
    answerer = _answerer(llm_settings, corpus_store, chat)
    chat.default = grounded_answer
    answer = answerer.answer("How many days notice must the tenant give?", Principal("a"))
    assert answer.repaired and answer.calls == 2 and NOTICE in answer.text
    repair = chat.requests[1].messages
    assert repair[-1].role == "user" and "not valid JSON" in repair[-1].content
    assert repair[-2].role == "assistant"  # the bad reply, so the model sees what it did
    assert chat.requests[1].tool_choice == "none"


def test_still_invalid_after_repair_is_a_typed_error(llm_settings, corpus_store) -> None:
    chat = ScriptedChatModel()
    chat.reply(_json("It is ninety days [1].", [(1, "a quote that is not there")]))
    chat.reply(_json("It is ninety days [9].", [(9, "ninety days")]))
    with pytest.raises(InvalidAnswerError) as caught:
        _answerer(llm_settings, corpus_store, chat).answer("notice period?", Principal("a"))
    assert any("[9] is not a passage label" in p for p in caught.value.problems)
    assert len(chat.requests) == 2  # one repair, no more


@pytest.mark.parametrize(
    ("reason", "error"),
    [("content_filter", ContentFilterError), ("content_filter_error", ContentFilterError),
     ("length", AnswerTruncatedError), ("model_length", AnswerTruncatedError)],
)  # fmt: skip
def test_finish_reasons_become_typed_errors(llm_settings, corpus_store, reason, error) -> None:
    chat = ScriptedChatModel().reply('{"answer": "cut', finish_reason=reason)
    with pytest.raises(error) as caught:
        _answerer(llm_settings, corpus_store, chat).answer("notice period?", Principal("a"))
    assert caught.value.provider == "scripted"
    assert "llm.answer_tokens" in str(caught.value) or "content filter" in str(caught.value)
    assert len(chat.requests) == 1


def test_search_tool_adds_citable_passages(llm_settings, corpus_store) -> None:
    settings = llm_settings.model_copy(
        update={"retrieval": llm_settings.retrieval.model_copy(update={"k": 1})}
    )
    chat = ScriptedChatModel()
    chat.reply(tool_calls=[("search_documents", {"query": "heating repairs landlord"})])
    chat.default = grounded_answer
    answer = _answerer(settings, corpus_store, chat).answer(
        "How long do travel expense reimbursements take?", Principal("a")
    )
    tool_message = chat.requests[1].messages[-1]
    assert tool_message.role == "tool" and tool_message.name == "search_documents"
    assert "[2]" in tool_message.content and "heating" in tool_message.content
    assert [r.name for r in answer.tool_runs] == ["search_documents"]
    assert answer.tool_runs[0].ok and answer.calls == 2
    assert {p.origin for p in answer.passages} == {"packed", "tool"}


def test_search_tool_bad_arguments_go_back_to_the_model(llm_settings, corpus_store) -> None:
    chat = ScriptedChatModel(default=grounded_answer)
    chat.reply(tool_calls=[("search_documents", {"q": "x"}), ("no_such_tool", {})])
    answer = _answerer(llm_settings, corpus_store, chat).answer("notice period?", Principal("a"))
    results = [m for m in chat.requests[1].messages if m.role == "tool"]
    assert "invalid arguments" in results[0].content and "query" in results[0].content
    assert "no tool named 'no_such_tool'" in results[1].content
    assert [(r.ok, r.error) for r in answer.tool_runs] == [
        (False, "bad_arguments"), (False, "unknown_tool"),
    ]  # fmt: skip


def test_user_tool_is_called_with_validated_arguments(llm_settings, corpus_store) -> None:
    calls = []

    @tool
    def days_until(month: str, day: int = 1) -> dict[str, object]:
        """Days until a date of the current year.

        Args:
            month: month name in English
            day: day of the month
        """
        calls.append((month, day))
        return {"days": 42}

    chat = ScriptedChatModel(default=grounded_answer)
    chat.reply(tool_calls=[("days_until", {"month": "March", "day": "3"})])
    answerer = _answerer(llm_settings, corpus_store, chat, tools=[days_until])
    answer = answerer.answer("How many days notice must the tenant give?", Principal("a"))
    assert calls == [("March", 3)] and answer.tool_runs[0].ok
    assert chat.requests[1].messages[-1].content == '{"days": 42}'
    names = [t["function"]["name"] for t in chat.requests[0].tools]
    assert names == ["days_until", "search_documents"]


def test_tool_loop_stops_at_the_step_limit(llm_settings, corpus_store) -> None:
    settings = llm_settings.model_copy(
        update={"llm": llm_settings.llm.model_copy(update={"max_tool_steps": 2})}
    )
    chat = ScriptedChatModel()
    for _ in range(5):
        chat.reply(tool_calls=[("search_documents", {"query": "notice"})])
    with pytest.raises(ToolLoopError, match="2 tool step"):
        _answerer(settings, corpus_store, chat).answer("notice period?", Principal("a"))
    assert len(chat.requests) == 3
    assert [r.tool_choice for r in chat.requests] == ["auto", "auto", "none"]


def test_tool_results_are_cut_to_their_budget(llm_settings, corpus_store) -> None:
    settings = llm_settings.model_copy(
        update={"llm": llm_settings.llm.model_copy(update={"tool_result_tokens": 200})}
    )

    @tool
    def dump() -> str:
        """Returns a very long text."""
        return "word " * 5000

    chat = ScriptedChatModel(default=grounded_answer)
    chat.reply(tool_calls=[("dump", {})])
    chat.reply(tool_calls=[("dump", {})])
    answerer = _answerer(settings, corpus_store, chat, tools=[dump])
    answerer.answer("How many days notice must the tenant give?", Principal("a"))
    first, second = (r.messages[-1].content for r in chat.requests[1:3])
    assert first.endswith("[truncated: the result was longer than the room left for tool results]")
    assert answerer.packer.count(first) < 200
    assert second.startswith("error: no room is left")
    # Prompt sizes stay inside the window minus the answer reserve.
    limit = answerer.packer.window - settings.llm.answer_tokens
    assert all(r.prompt_tokens is not None and r.prompt_tokens <= limit for r in chat.requests)


def test_stream_yields_answer_text_then_the_validated_answer(llm_settings, corpus_store) -> None:
    chat = ScriptedChatModel(default=grounded_answer, chunk_chars=3)
    chat.reply(tool_calls=[("search_documents", {"query": "notice"})])
    events = list(
        _answerer(llm_settings, corpus_store, chat).stream(
            "How many days notice must the tenant give?", Principal("a")
        )
    )
    assert isinstance(events[0], ToolStep) and events[0].names == ("search_documents",)
    assert isinstance(events[-1], AnswerDone)
    text = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert text == events[-1].answer.text and NOTICE in text
    assert len([e for e in events if isinstance(e, AnswerDelta)]) > 5


def test_stream_restarts_when_the_answer_needs_repair(llm_settings, corpus_store) -> None:
    chat = ScriptedChatModel(default=grounded_answer)
    chat.reply(_json("Ninety days [1].", [(1, "not in the passage")]))
    events = list(
        _answerer(llm_settings, corpus_store, chat).stream(
            "How many days notice must the tenant give?", Principal("a")
        )
    )
    kinds = [type(e).__name__ for e in events]
    restart = kinds.index("AnswerRestart")
    before = "".join(e.text for e in events[:restart] if isinstance(e, AnswerDelta))
    after = "".join(e.text for e in events[restart:] if isinstance(e, AnswerDelta))
    assert before == "Ninety days [1]." and isinstance(events[restart], AnswerRestart)
    assert after == events[-1].answer.text and events[-1].answer.repaired
