"""Test doubles that users of the library need too (no model weights, no network):
a fake embedder, a fake PII detector, a scripted chat model, and the Mistral API
simulator (a real HTTP server on loopback)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from rag._errors import EmbeddingError
from rag._simulator import MistralSimulator, RecordedRequest

__all__ = [
    "FakeDetector",
    "FakeEmbedder",
    "MistralSimulator",
    "RecordedRequest",
    "ScriptedChatModel",
    "grounded_answer",
]

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder.

    Texts sharing words get similar vectors, so search tests rank meaningfully. A "token"
    is a word; like a real model it refuses passages longer than ``max_tokens`` instead
    of truncating them, and it records every text it embedded.
    """

    def __init__(self, dimension: int = 64, max_tokens: int = 128, name: str = "fake") -> None:
        self.name = name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.passages: list[str] = []
        self.queries: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
            v[h % self.dimension] += 1.0 if (h >> 32) & 1 else -1.0
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            v[0] = 1.0
            return v
        return v / norm

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        for i, text in enumerate(texts):
            if self.count_tokens(text) > self.max_tokens:
                raise EmbeddingError(f"passage {i} is longer than {self.max_tokens} tokens")
        self.passages.extend(texts)
        return (
            np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension))
        )

    def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return self._vector(text)


class FakeDetector:
    """A PII detector without models: given names and a few patterns (e-mail, phone, IBAN).

    For tests of everything around detection (vault, placeholders, ingestion, guard): it
    finds exactly the ``names`` it was given (as PERSON, or the entity given per name),
    so a test controls what "the model" misses. Picklable, like the real detector.
    """

    name = "fake-detector"
    _PATTERNS = (
        ("EMAIL_ADDRESS", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
        ("PHONE_NUMBER", re.compile(r"\+\d{1,3}(?:[ .-]?\d{2,4}){2,5}\b")),
        ("IBAN_CODE", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")),
    )

    def __init__(self, names: Sequence[str] | dict[str, str] = ()) -> None:
        self.names = dict(names) if isinstance(names, dict) else dict.fromkeys(names, "PERSON")
        self.calls = 0

    def warm_up(self) -> None:
        pass

    def detect(self, texts: Sequence[str], language: str = "en") -> list[list[Any]]:
        from rag.privacy._detect import Span

        self.calls += 1
        out = self.detect_patterns(texts, language)
        for spans, text in zip(out, texts, strict=True):
            for name, entity in self.names.items():
                for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text):
                    spans.append(Span(m.start(), m.end(), entity, 0.85, "ner"))
        return out

    def detect_patterns(self, texts: Sequence[str], language: str = "en") -> list[list[Any]]:
        from rag.privacy._detect import Span

        return [
            [
                Span(m.start(), m.end(), entity, 1.0, "pattern")
                for entity, pattern in self._PATTERNS
                for m in pattern.finditer(text)
            ]
            for text in texts
        ]


class ScriptedChatModel:
    """A :class:`rag.llm.ChatModel` that returns queued replies and records every request.

    ``reply(content)`` / ``reply(tool_calls=[("name", {"arg": 1})])`` queue turns; with the
    queue empty it answers ``default`` (a function of the request) or raises. ``requests``
    holds every :class:`~rag.llm.ChatRequest` it was sent, so tests can assert what would
    have left the process. ``stream`` cuts the content into ``chunk_chars`` pieces.
    """

    provider = "scripted"

    def __init__(
        self,
        model: str = "mistral-large-2402",
        *,
        default: Any = None,
        chunk_chars: int = 5,
    ) -> None:
        from rag.llm._types import ChatRequest

        self.model = model
        self.default = default
        self.chunk_chars = chunk_chars
        self.requests: list[ChatRequest] = []
        self._queue: list[Any] = []
        self._ids = 0

    def reply(
        self,
        content: str = "",
        *,
        tool_calls: Sequence[tuple[str, Any]] = (),
        finish_reason: str | None = None,
    ) -> ScriptedChatModel:
        from rag.llm._types import ToolCall

        calls = []
        for name, arguments in tool_calls:
            self._ids += 1
            text = arguments if isinstance(arguments, str) else json.dumps(arguments)
            calls.append(ToolCall(f"call{self._ids:05d}", name, text))
        reason = finish_reason or ("tool_calls" if calls else "stop")
        self._queue.append((content, tuple(calls), reason))
        return self

    def complete(self, request: Any) -> Any:
        from rag.llm._types import ChatResponse, Usage

        self.requests.append(request)
        if self._queue:
            content, calls, reason = self._queue.pop(0)
        elif self.default is not None:
            content, calls, reason = self.default(request), (), "stop"
        else:
            raise AssertionError("ScriptedChatModel: no reply queued for this request")
        words = sum(len(m.content.split()) for m in request.messages)
        usage = Usage(words, len(content.split()), words + len(content.split()))
        return ChatResponse(content, reason, usage, self.model, calls, provider=self.provider)

    def stream(self, request: Any) -> Iterator[Any]:
        from rag.llm._types import ChatDelta

        response = self.complete(request)
        text = response.content
        for i in range(0, len(text), self.chunk_chars):
            yield ChatDelta(text[i : i + self.chunk_chars])
        yield response

    def close(self) -> None:
        pass


def grounded_answer(request: Any) -> str:
    """The simulator's deterministic answer to a :class:`~rag.llm.ChatRequest`: the context
    sentence that best overlaps the question, cited (JSON when JSON was asked for)."""
    from rag._simulator_answers import default_answer

    return default_answer(request.body())
