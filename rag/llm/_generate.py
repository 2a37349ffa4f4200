"""The answer stage: retrieve, pack, ask the model, run its tool calls, check its JSON.

Every request goes through the egress guard before it leaves the process; the model only
sees pseudonymized text (the question is pseudonymized by the retriever's query step, tool
results by the pseudonymizer). The answer is re-identified only for principals listed in
``privacy.reidentify``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag._config import Settings
from rag._errors import (
    BadRequestError,
    InvalidAnswerError,
    ProviderUnavailableError,
    ToolLoopError,
)
from rag._pack import ContextPacker
from rag._retrieve import Principal, Retrieval, Retriever
from rag.llm._answer import (
    ANSWER_SCHEMA,
    Answer,
    Citation,
    Passage,
    ToolRun,
    passages_from_blocks,
    validate_answer,
)
from rag.llm._events import (
    AnswerDelta,
    AnswerDone,
    AnswerEvent,
    AnswerRestart,
    StreamedText,
    ToolStep,
    check_finish,
)
from rag.llm._privacy import AnswerPrivacy
from rag.llm._toolrun import ToolRunner, as_tool
from rag.llm._tools import Tool, ToolSet
from rag.llm._types import ChatDelta, ChatModel, ChatRequest, ChatResponse, Message, Usage

log = logging.getLogger(__name__)

ANSWER_SYSTEM_PROMPT = (
    "You answer questions about the user's documents using only the numbered context "
    "passages in the user's message and passages returned by tools. Cite the passages you "
    "use inline by label, for example [1] or [2][3], and list each one in 'citations' with "
    "its label number and a short quote copied word for word from that passage. If the "
    "passages do not contain the answer, say so and set 'insufficient_context' to true. "
    "Placeholders such as <PERSON_3f9a1c2b> stand for personal data hidden from you: copy "
    "them exactly as written and never guess what they stand for."
)
SEARCH_HINT = (
    " If the passages are not enough, call search_documents with a better query before answering."
)
#: Tokens kept for the repair request's instructions (its problems list is capped).
REPAIR_TOKENS = 256
_MAX_PROBLEMS = 8


@dataclass
class _Run:
    """State of one answer: conversation, passages, budget, counters."""

    request_id: str
    principal: Principal | None
    started: float
    retrieval: Retrieval
    tools: ToolSet
    passages: dict[int, Passage]
    messages: list[Message]
    prompt_tokens: int
    response_format: dict[str, Any]
    reveal: Any = None  # a RevealSession when the principal may re-identify
    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    repaired: bool = False
    #: Whether answer text of the current turn was streamed out already.
    streamed: bool = False
    tool_runs: list[ToolRun] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Answerer:
    """Answers questions over the index with a chat model, as validated JSON with citations.

    Build it with :meth:`open` (configured provider, embedder and index) or from parts:
    a :class:`~rag.Retriever`, any :class:`ChatModel`, and optional user tools (functions
    with type hints, or :func:`rag.llm.tool` objects).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retriever: Retriever,
        chat: ChatModel,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        packer: ContextPacker | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.chat = chat
        self.packer = packer or ContextPacker.from_settings(settings)
        self.tools = ToolSet()
        for t in tools:
            self.tools.add(as_tool(t))
        self._schema_refused = False
        self._owned: list[Any] = []
        self._privacy = AnswerPrivacy.build(settings, retriever)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        chat: ChatModel | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
    ) -> Answerer:
        """The configured provider, embedding model and index; close it when done."""
        from rag.llm._factory import open_chat_model

        model = chat or open_chat_model(settings)  # before the index: a config error stops here
        retriever = Retriever.open(settings)
        answerer = cls(settings, retriever=retriever, chat=model, tools=tools)
        answerer._owned = [retriever] + ([model] if chat is None else [])
        return answerer

    def close(self) -> None:
        for part in self._owned:
            part.close()
        self._owned = []

    def __enter__(self) -> Answerer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API ------------------------------------------------------------------------
    def answer(
        self,
        question: str,
        principal: Principal | None = None,
        *,
        filters: Any = None,
        k: int | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        reidentify: bool = True,
    ) -> Answer:
        """Answer ``question`` for ``principal`` from the documents it may read.

        Raises a :class:`~rag.LlmError` subclass when the provider fails for good, the
        content filter stops the answer, the answer is cut at ``max_tokens``, the model
        loops on tools, or its JSON stays invalid after one repair.
        """
        for event in self._events(question, principal, filters, k, tools, reidentify, False):
            if isinstance(event, AnswerDone):
                return event.answer
        raise AssertionError("the answer loop ended without an answer")  # pragma: no cover

    def stream(
        self,
        question: str,
        principal: Principal | None = None,
        *,
        filters: Any = None,
        k: int | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        reidentify: bool = True,
    ) -> Iterator[AnswerEvent]:
        """Like :meth:`answer`, streamed: :class:`AnswerDelta` pieces of the answer text
        (re-identified if allowed, never splitting a placeholder), :class:`ToolStep` and
        :class:`AnswerRestart` events, and :class:`AnswerDone` with the validated answer.
        """
        return self._events(question, principal, filters, k, tools, reidentify, True)

    # -- the loop --------------------------------------------------------------------------
    def _events(
        self,
        question: str,
        principal: Principal | None,
        filters: Any,
        k: int | None,
        extra_tools: Sequence[Tool | Callable[..., Any]],
        reidentify: bool,
        stream: bool,
    ) -> Iterator[AnswerEvent]:
        run = self._start(question, principal, filters, k, extra_tools, reidentify)
        try:
            runner = ToolRunner(self, run)
            steps = self.settings.llm.max_tool_steps if len(run.tools) else 0
            for step in range(steps + 1):
                offer = "auto" if step < steps else "none"
                response = yield from self._turn(run, stream, tool_choice=offer)
                if not response.tool_calls:
                    yield from self._finish(run, response, stream)
                    return
                if step >= steps:
                    raise ToolLoopError(
                        f"the model still called tools after {steps} tool step(s) "
                        "(llm.max_tool_steps); raise the limit or check the tools' results",
                        provider=self.chat.provider,
                    )
                yield ToolStep(step + 1, tuple(c.name for c in response.tool_calls))
                run.messages.append(response.message())
                run.messages.extend(runner.run_calls(response.tool_calls))
        finally:
            if run.reveal is not None:
                run.reveal.close()

    def _start(
        self,
        question: str,
        principal: Principal | None,
        filters: Any,
        k: int | None,
        extra_tools: Sequence[Tool | Callable[..., Any]],
        reidentify: bool,
    ) -> _Run:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        retrieval = self.retriever.retrieve(question, principal, filters, k)
        retrieved = time.perf_counter()
        tools = ToolSet()
        for t in [*self.tools, *extra_tools]:
            tools.add(as_tool(t))
        llm = self.settings.llm
        if llm.search_tool and llm.max_tool_steps > 0:
            from rag.llm._toolrun import SEARCH_TOOL

            tools.add(SEARCH_TOOL, builtin=True)
        offered = bool(len(tools)) and llm.max_tool_steps > 0
        reserve = llm.answer_tokens + REPAIR_TOKENS + (llm.tool_result_tokens if offered else 0)
        prompt = ANSWER_SYSTEM_PROMPT + (SEARCH_HINT if offered else "")
        packed = self.packer.pack(
            retrieval.hits,
            retrieval.question,
            tools=tools.definitions() if offered else (),
            response_schema=ANSWER_SCHEMA,
            system_prompt=prompt,
            answer_tokens=reserve,
        )
        chunks = {h.chunk.chunk_id: h.chunk for h in retrieval.hits}
        passages = {p.label: p for p in passages_from_blocks(packed.blocks, chunks)}
        reveal = None
        if reidentify and principal is not None and self._privacy.may_reveal(principal):
            reveal = self._privacy.reidentifier.session(principal, request_id=request_id)
        run = _Run(
            request_id=request_id,
            principal=principal,
            started=started,
            retrieval=retrieval,
            tools=tools if offered else ToolSet(),
            passages=passages,
            messages=[Message(m["role"], m["content"]) for m in packed.messages],  # type: ignore[arg-type]
            prompt_tokens=packed.tokens.total,
            response_format=self._response_format(),
            reveal=reveal,
        )
        run.timings["retrieve"] = (retrieved - started) * 1000
        run.timings["pack"] = (time.perf_counter() - retrieved) * 1000
        return run

    def _response_format(self) -> dict[str, Any]:
        from rag.llm._factory import structured_output_mode

        mode = structured_output_mode(self.settings)
        if mode == "json_schema" and not self._schema_refused:
            return {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True},
            }
        return {"type": "json_object"}

    def _request(self, run: _Run, tool_choice: str | None) -> ChatRequest:
        llm = self.settings.llm
        return ChatRequest(
            messages=tuple(run.messages),
            model=llm.model,
            tools=tuple(run.tools.definitions()) if len(run.tools) else (),
            tool_choice=tool_choice if len(run.tools) else None,  # type: ignore[arg-type]
            response_format=run.response_format,
            max_tokens=llm.answer_tokens,
            temperature=llm.temperature,
            top_p=llm.top_p,
            safe_prompt=llm.safe_prompt,
            random_seed=llm.random_seed,
            request_id=f"{run.request_id}-{run.calls + 1}",
            prompt_tokens=run.prompt_tokens,
        )

    def _turn(
        self, run: _Run, stream: bool, *, tool_choice: str | None
    ) -> Generator[AnswerEvent, None, ChatResponse]:
        """One model call (guarded; JSON schema refused → JSON mode once); returns the
        response (via StopIteration) after yielding streamed text."""
        request = self._guarded(run, tool_choice)
        started = time.perf_counter()
        run.calls += 1
        try:
            response = yield from self._call(run, request, stream)
        except BadRequestError as exc:
            fmt = request.response_format or {}
            if fmt.get("type") != "json_schema" or exc.status not in (400, 422):
                raise
            # The server does not take a JSON schema: JSON mode (schema in the prompt) it is.
            log.warning("%s refused response_format json_schema; using JSON mode", exc.provider)
            self._schema_refused = True
            run.response_format = {"type": "json_object"}
            request = self._guarded(run, tool_choice)
            response = yield from self._call(run, request, stream)
        run.timings["model"] = (
            run.timings.get("model", 0.0) + (time.perf_counter() - started) * 1000
        )
        run.usage = run.usage + response.usage
        check_finish(response, self.chat.provider, self.settings.llm.answer_tokens)
        return response

    def _guarded(self, run: _Run, tool_choice: str | None) -> ChatRequest:
        """The next request, through the egress guard (its time is ``timings_ms["guard"]``)."""
        started = time.perf_counter()
        sources = {p.source for p in run.passages.values()}
        request = self._request(run, tool_choice)
        request = self._privacy.guarded(request, self.chat.provider, sources)
        spent = (time.perf_counter() - started) * 1000
        run.timings["guard"] = run.timings.get("guard", 0.0) + spent
        return request

    def _call(
        self, run: _Run, request: ChatRequest, stream: bool
    ) -> Generator[AnswerEvent, None, ChatResponse]:
        if not stream:
            return self.chat.complete(request)
        extractor = StreamedText(run.reveal)
        response: ChatResponse | None = None
        for event in self.chat.stream(request):
            if isinstance(event, ChatDelta):
                text = extractor.feed(event.text)
                if text:
                    yield AnswerDelta(text)
            else:
                response = event
        if response is None:
            raise ProviderUnavailableError(
                f"{self.chat.provider} ended the stream without a final chunk; try again",
                provider=self.chat.provider,
            )
        if response.tool_calls and extractor.emitted:
            yield AnswerRestart("the model called a tool instead of answering")
        elif not response.tool_calls:
            tail = extractor.flush()
            if tail:
                yield AnswerDelta(tail)
        run.streamed = extractor.emitted
        return response

    def _finish(self, run: _Run, response: ChatResponse, stream: bool) -> Iterator[AnswerEvent]:
        parsed, citations, problems = validate_answer(response.content, run.passages)
        if problems:
            log.info("answer %s invalid (%d problem(s)); one repair", run.request_id, len(problems))
            if stream and run.streamed:
                yield AnswerRestart("the answer was invalid; a corrected one follows")
            self._add_repair(run, response.content, problems)
            run.repaired = True
            response = yield from self._turn(run, stream, tool_choice="none")
            if response.tool_calls:
                problems = ["the model called a tool instead of repairing its answer"]
                parsed = None
            else:
                parsed, citations, problems = validate_answer(response.content, run.passages)
            if problems:
                raise InvalidAnswerError(
                    "the model's answer was still invalid after one repair: "
                    + "; ".join(problems[:_MAX_PROBLEMS]),
                    problems,
                    provider=self.chat.provider,
                )
        assert parsed is not None
        text = parsed.answer
        if run.reveal is not None:
            text = run.reveal.reidentify(text)
            citations = [_reidentified(c, run.reveal) for c in citations]
        yield AnswerDone(
            Answer(
                text=text,
                citations=tuple(citations),
                insufficient_context=parsed.insufficient_context,
                reidentified=run.reveal is not None,
                usage=run.usage,
                provider=self.chat.provider,
                model=response.model or self.settings.llm.model,
                latency_s=time.perf_counter() - run.started,
                request_id=run.request_id,
                question=run.retrieval.question,
                repaired=run.repaired,
                tool_runs=tuple(run.tool_runs),
                calls=run.calls,
                passages=tuple(run.passages[n] for n in sorted(run.passages)),
                timings_ms=dict(run.timings),
            )
        )

    def _add_repair(self, run: _Run, content: str, problems: list[str]) -> None:
        """The repair turn: the bad reply (if the window has room) and what was wrong."""
        listed = "\n".join(f"- {p}" for p in problems[:_MAX_PROBLEMS])
        ask = (
            "Your previous reply was invalid:\n"
            f"{listed}\n"
            "Reply again with only the JSON object described in the system prompt. Cite only "
            "passage labels you were shown, and copy each quote word for word from its passage."
        )
        llm = self.settings.llm
        room = self.packer.window - llm.answer_tokens - run.prompt_tokens - REPAIR_TOKENS
        cost = self.packer.count(content) + 24
        if content.strip() and cost <= room:
            run.messages.append(Message("assistant", content))
            run.prompt_tokens += cost
        run.messages.append(Message("user", ask))
        run.prompt_tokens += self.packer.count(ask) + 8


def _reidentified(citation: Citation, reveal: Any) -> Citation:
    from dataclasses import replace

    return replace(citation, quote=reveal.reidentify(citation.quote))
