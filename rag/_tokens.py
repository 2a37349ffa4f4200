"""Counting text in Mistral tokens, with mistral-common's bundled tokenizers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from rag._errors import ConfigError, DependencyError

TOKENIZER_VERSIONS = ("v1", "v2", "v3", "v3-tekken", "v7")


class TokenCounter(Protocol):
    """Counts tokens of one tokenizer."""

    name: str

    def count(self, text: str) -> int: ...


class MistralTokens:
    """Token counts exactly as the Mistral model of the given tokenizer version sees them."""

    def __init__(self, version: str = "v2") -> None:
        self.name = f"mistral-{version}"
        self._tok = _raw_tokenizer(version)

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, bos=False, eos=False)) if text else 0


def _raw_tokenizer(version: str) -> Any:
    """The text tokenizer (``encode``/``decode``) of a version."""
    return mistral_tokenizer(version).instruct_tokenizer.tokenizer


@lru_cache(maxsize=8)
def mistral_tokenizer(version: str) -> Any:
    """mistral-common's ``MistralTokenizer`` (chat template included) of a version."""
    if version not in TOKENIZER_VERSIONS:
        raise ConfigError(
            "chunking.tokenizer",
            f"unknown Mistral tokenizer {version!r}",
            f"use one of {', '.join(TOKENIZER_VERSIONS)} or 'auto'",
        )
    try:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise DependencyError("mistral-common is not installed; run scripts/setup.sh") from exc
    try:
        factory = {
            "v1": MistralTokenizer.v1,
            "v2": MistralTokenizer.v2,
            "v3": MistralTokenizer.v3,
            "v3-tekken": lambda: MistralTokenizer.v3(is_tekken=True),
            "v7": MistralTokenizer.v7,
        }[version]
        return factory()
    except ImportError as exc:
        raise DependencyError(
            f"Mistral tokenizer {version} needs the 'sentencepiece' package: "
            "pip install 'mistral-common[sentencepiece]'"
        ) from exc
