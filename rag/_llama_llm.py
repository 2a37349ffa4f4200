"""Any :class:`rag.llm.ChatModel` as a LlamaIndex ``LLM`` (the query engine over our
answer stage is in :mod:`rag._llama_answer`).

``ChatModelLLM`` lets LlamaIndex pipelines call Mistral, Azure or vLLM through our adapters
(retries, shared rate limits, typed errors) and, given an egress guard, scans every request
body before it leaves the process.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from llama_index.core.base.llms.generic_utils import (
    chat_response_to_completion_response,
    prompt_to_messages,
    stream_chat_response_to_completion_response,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    TextBlock,
)
from llama_index.core.base.llms.types import ChatResponse as LlamaChatResponse
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM
from pydantic import Field, PrivateAttr

from rag._config import Settings, context_window_for
from rag._errors import (
    ProviderUnavailableError,
    RagError,
)
from rag.llm._events import check_finish
from rag.llm._privacy import AnswerPrivacy
from rag.llm._types import ChatDelta, ChatModel, ChatRequest, Message, Role
from rag.llm._types import ChatResponse as ModelResponse

if TYPE_CHECKING:
    from rag.privacy._guard import EgressGuard
    from rag.privacy._pseudonymize import Pseudonymizer

_T = TypeVar("_T")

#: LlamaIndex roles and their chat-completions equivalent.
_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "chatbot": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}
#: Request options a caller may set per call, e.g. ``llm.chat(messages, max_tokens=64)``.
#: Other keyword arguments (LlamaIndex passes some of its own) are not request options.
_OPTIONS = ("max_tokens", "temperature", "top_p", "random_seed", "safe_prompt")
#: A passage header line, ours (`` [2] lease.pdf, p. 4, section: Rent``) or a
#: ContextPackerPostprocessor node's in LlamaIndex's prompt; group 1 is the file name.
_HEADER = re.compile(r"^[ \t]*\[\d{1,4}\] ([^\n]+?)(?:, pp?\. \d|, section: |[ \t]*$)", re.M)
#: What may be masked as a file name: a name with an extension, and no e-mail in it.
_FILE_NAME = re.compile(r"[^\s@/\\][^@\n/\\]*\.[A-Za-z0-9]{1,8}")


class ChatModelLLM(LLM):
    """A LlamaIndex ``LLM`` over any :class:`rag.llm.ChatModel`.

    Requests go through the chat model's adapter (build it with
    :func:`rag.llm.open_chat_model`, or use :meth:`from_settings`, for retries and the
    shared rate limiter). With ``guard``, every request body is checked by the
    :class:`rag.privacy.EgressGuard` first: one holding personal data raises
    :class:`rag.EgressBlockedError` and is not sent (or is redacted, per
    ``privacy.egress``). File names on passage header lines (``[2] minutes.md, p. 4``) are
    skipped by the guard's pattern recognizers, as in our answer stage.

    Tool calling stays in :class:`rag.llm.Answerer` (``is_function_calling_model`` is
    False). An answer cut at ``max_tokens`` raises :class:`rag.AnswerTruncatedError`, one
    stopped by the content filter :class:`rag.ContentFilterError`; a stream raises after
    its last piece. ``raw`` of a response holds the provider's id, the finish reason and
    the token usage (LlamaIndex's token counter reads it).
    """

    model: str = Field(description="The model name sent with every request.")
    context_window: int = Field(gt=0, description="The model's window in tokens.")
    max_tokens: int = Field(gt=0, description="Tokens reserved for each answer.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    safe_prompt: bool = False
    random_seed: int | None = Field(default=None, ge=0)

    _chat: Any = PrivateAttr()
    _guard: Any = PrivateAttr(default=None)
    _owned: list[Any] = PrivateAttr(default_factory=list)

    def __init__(
        self,
        chat: ChatModel,
        *,
        guard: EgressGuard | None = None,
        context_window: int | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        top_p: float | None = None,
        safe_prompt: bool = False,
        random_seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(chat, ChatModel):
            raise RagError(
                f"chat must be a rag.llm.ChatModel, not {type(chat).__name__}; open one with "
                "rag.llm.open_chat_model(settings)"
            )
        super().__init__(
            model=chat.model,
            context_window=context_window_for(chat.model, context_window),
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            safe_prompt=safe_prompt,
            random_seed=random_seed,
            **kwargs,
        )
        self._chat = chat
        self._guard = guard

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        pseudonymizer: Pseudonymizer | None = None,
        **kwargs: Any,
    ) -> ChatModelLLM:
        """The configured chat model (retries, rate limits) and answer options; with
        ``privacy.enabled``, the egress guard too (over ``pseudonymizer``, else one opened
        from the settings). Close it when done."""
        from rag.llm._factory import open_chat_model

        llm = settings.llm
        window = context_window_for(llm.model, llm.context_window)  # fail before opening
        owned: list[Any] = []
        guard = None
        try:
            chat = open_chat_model(settings)
            owned.append(chat)
            if settings.privacy.enabled:
                from rag.privacy._guard import EgressGuard

                guard = EgressGuard.open(settings, pseudonymizer)
                if pseudonymizer is None:
                    owned.append(guard.vault)
            out = cls(
                chat,
                guard=guard,
                context_window=window,
                max_tokens=llm.answer_tokens,
                temperature=llm.temperature,
                top_p=llm.top_p,
                safe_prompt=llm.safe_prompt,
                random_seed=llm.random_seed,
                **kwargs,
            )
        except BaseException:
            for part in owned:
                part.close()
            raise
        out._owned = owned
        return out

    @classmethod
    def class_name(cls) -> str:
        return "SovereignRagChatModelLLM"

    @property
    def chat_model(self) -> ChatModel:
        chat: ChatModel = self._chat
        return chat

    @property
    def guard(self) -> EgressGuard | None:
        guard: EgressGuard | None = self._guard
        return guard

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens,
            is_chat_model=True,
            is_function_calling_model=False,
            model_name=self.model,
        )

    def close(self) -> None:
        """Closes what :meth:`from_settings` opened (a chat model passed in stays open)."""
        for part in self._owned:
            part.close()
        self._owned = []

    # -- LlamaIndex endpoints --------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> LlamaChatResponse:
        return self._complete(self._request(messages, kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        # Checked (and guarded) now, so a blocked request raises here, not at first read.
        return self._stream(self._request(messages, kwargs))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        # A chat model: the prompt is one user message (``formatted`` changes nothing).
        request = self._request(prompt_to_messages(prompt), kwargs)
        return chat_response_to_completion_response(self._complete(request))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        request = self._request(prompt_to_messages(prompt), kwargs)
        return stream_chat_response_to_completion_response(self._stream(request))

    # Async endpoints run the blocking client (and its backoff sleeps) in a worker thread,
    # so an event loop is never blocked by a slow provider.
    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> LlamaChatResponse:
        request = await asyncio.to_thread(self._request, messages, kwargs)
        return await asyncio.to_thread(self._complete, request)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        request = await asyncio.to_thread(self._request, messages, kwargs)
        return _in_threads(self._stream(request))

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        request = await asyncio.to_thread(self._request, prompt_to_messages(prompt), kwargs)
        return chat_response_to_completion_response(
            await asyncio.to_thread(self._complete, request)
        )

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        request = await asyncio.to_thread(self._request, prompt_to_messages(prompt), kwargs)
        return _in_threads(stream_chat_response_to_completion_response(self._stream(request)))

    # -- our side --------------------------------------------------------------------------
    def _request(self, messages: Sequence[ChatMessage], options: Mapping[str, Any]) -> ChatRequest:
        values = {key: getattr(self, key) for key in _OPTIONS}
        values.update({k: v for k, v in options.items() if k in _OPTIONS and v is not None})
        response_format = options.get("response_format")
        if response_format is not None and not isinstance(response_format, Mapping):
            raise RagError(
                "response_format must be a mapping such as {'type': 'json_object'}, not "
                f"{type(response_format).__name__}"
            )
        request = ChatRequest(
            messages=tuple(_message(m) for m in messages),
            model=self.model,
            response_format=response_format,
            **values,
        )
        return self._guarded(request)

    def _guarded(self, request: ChatRequest) -> ChatRequest:
        """The request as it may leave: checked (audited), redacted if so configured."""
        names = header_file_names(m.content for m in request.messages)
        return AnswerPrivacy(guard=self._guard).guarded(request, self._chat.provider, names)

    def _complete(self, request: ChatRequest) -> LlamaChatResponse:
        response = self._checked(self._chat.complete(request))
        return _llama_response(response.content, response)

    def _stream(self, request: ChatRequest) -> ChatResponseGen:
        pieces: list[str] = []
        final: ModelResponse | None = None
        for event in self._chat.stream(request):
            if isinstance(event, ChatDelta):
                pieces.append(event.text)
                yield LlamaChatResponse(
                    message=ChatMessage(role=MessageRole.ASSISTANT, content="".join(pieces)),
                    delta=event.text,
                )
            else:
                final = event
        if final is None:
            raise ProviderUnavailableError(
                f"{self._chat.provider} ended the stream without a final chunk; try again",
                provider=self._chat.provider,
            )
        self._checked(final)
        # The last item carries usage and the finish reason (LlamaIndex's token counter).
        yield _llama_response(final.content, final, delta="")

    def _checked(self, response: ModelResponse) -> ModelResponse:
        check_finish(response, self._chat.provider, self.max_tokens)
        return response


def _message(message: ChatMessage) -> Message:
    role = _ROLES.get(str(message.role.value))
    if role is None:
        raise RagError(
            f"LlamaIndex role {message.role.value!r} has no chat-completions equivalent; use "
            "system, user, assistant or tool messages"
        )
    texts = []
    for block in message.blocks:
        if not isinstance(block, TextBlock):
            raise RagError(
                f"a {role} message holds a {block.block_type} block, and the chat model "
                "takes text only; convert it to text first"
            )
        texts.append(block.text)
    content = "\n".join(texts)  # as ChatMessage.content joins them
    if role != "tool":
        return Message(role, content)
    call_id = message.additional_kwargs.get("tool_call_id")
    if not call_id:
        raise RagError(
            "a tool message needs additional_kwargs['tool_call_id'] (the id of the call it answers)"
        )
    name = message.additional_kwargs.get("name")
    return Message("tool", content, tool_call_id=str(call_id), name=str(name) if name else None)


def _llama_response(text: str, response: ModelResponse, delta: str | None = None
                    ) -> LlamaChatResponse:  # fmt: skip
    usage = asdict(response.usage)
    raw = {
        "id": response.id,
        "model": response.model,
        "provider": response.provider,
        "finish_reason": response.finish_reason,
        "usage": usage,
        "latency_s": response.latency_s,
        "attempts": response.attempts,
    }
    return LlamaChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
        delta=delta,
        raw=raw,
        additional_kwargs=dict(usage),
    )


async def _in_threads(items: Iterator[_T]) -> AsyncGenerator[_T, None]:
    """A blocking iterator read in worker threads, one item per hop, closed when left."""
    done: Any = object()
    try:
        while True:
            item = await asyncio.to_thread(next, items, done)
            if item is done:
                return
            yield item
    finally:
        close: Callable[[], None] | None = getattr(items, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


def header_file_names(texts: Iterator[str] | Sequence[str]) -> set[str]:
    """File names on passage header lines (``[2] minutes.md, p. 4``) in ``texts``.

    They are kept in clear by design; the guard's pattern recognizers skip them (its
    known-value match still sees them). Names holding ``@`` are never skipped.
    """
    names = set()
    for text in texts:
        for match in _HEADER.finditer(text):
            name = match.group(1).strip()
            if _FILE_NAME.fullmatch(name):
                names.add(name)
    return names


# -- the answer stage as a query engine ----------------------------------------------------
