"""Test doubles that users of the library need too (no model weights, no network)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

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
