"""What the answer stage streams, and the checks every model turn goes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag._errors import AnswerTruncatedError, ContentFilterError, ProviderUnavailableError
from rag.llm._answer import Answer
from rag.llm._types import ChatResponse

_FILTERED = ("content_filter", "content_filter_error")
_CUT = ("length", "model_length")


@dataclass(frozen=True)
class AnswerDelta:
    """A piece of the answer text (provisional until :class:`AnswerDone`)."""

    text: str


@dataclass(frozen=True)
class AnswerRestart:
    """The text streamed so far is void (the answer was invalid, or became a tool call)."""

    reason: str


@dataclass(frozen=True)
class ToolStep:
    """The model called tools; ``names`` in call order."""

    step: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class AnswerDone:
    """The validated answer (re-identified if allowed): the stream's last event."""

    answer: Answer


AnswerEvent = AnswerDelta | AnswerRestart | ToolStep | AnswerDone


def check_finish(response: ChatResponse, provider: str, answer_tokens: int) -> None:
    """Raise the typed error for a turn the provider ended by its filter, a cut or an error."""
    if response.finish_reason in _FILTERED:
        raise ContentFilterError(
            f"{provider}'s content filter stopped the answer (finish_reason "
            f"{response.finish_reason}); rephrase the question, or ask the deployment's "
            "administrator about its content filter policy",
            provider=provider,
        )
    if response.finish_reason in _CUT:
        raise AnswerTruncatedError(
            f"the answer was cut at max_tokens ({answer_tokens}); raise llm.answer_tokens or "
            "ask a narrower question",
            provider=provider,
        )
    if response.finish_reason == "error":
        raise ProviderUnavailableError(
            f"{provider} ended the answer with an error; try again", provider=provider
        )


class StreamedText:
    """Answer text out of streamed JSON, cut so that no piece splits a placeholder, and
    re-identified when the principal may see values."""

    def __init__(self, session: Any) -> None:
        """``session``: a RevealSession when the principal may see values, else None."""
        from rag.llm._stream import AnswerTextExtractor, ReidentifyingStream

        self._json = AnswerTextExtractor(json=True)
        reveal = session.reveal if session is not None else _reveal_nothing
        self._safe = ReidentifyingStream(reveal)
        self.emitted = False

    def feed(self, piece: str) -> str:
        text = self._safe.feed(self._json.feed(piece))
        self.emitted = self.emitted or bool(text)
        return text

    def flush(self) -> str:
        text = self._safe.feed(self._json.flush()) + self._safe.flush()
        self.emitted = self.emitted or bool(text)
        return text


def _reveal_nothing(placeholders: list[str]) -> dict[str, str]:
    return {}
