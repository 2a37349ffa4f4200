"""Test doubles that users of the library need too (no model weights, no network)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag._errors import EmbeddingError

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
