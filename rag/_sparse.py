"""BM25 sparse vectors for hybrid search.

Qdrant Edge ships Qdrant's own BM25 (tokenizer, stopwords, stemmer, TF saturation); we use
it client-side for both backends so a point carries the same sparse vector wherever it is
stored, and Qdrant applies IDF at query time (``Modifier.IDF`` on the ``bm25`` vector).

Pseudonymization placeholders such as ``<PERSON_3f9a1c>`` must stay one search term: the
stock tokenizer would split them into ``person`` + ``3f9a1c`` (and every placeholder of a
type would then match on ``person``). They are rewritten to a single opaque word first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rag._config import SparseSettings
from rag._errors import ConfigError
from rag._types import SparseVector

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*?)_([0-9a-f]{4,64})>")


def _protect_placeholders(text: str) -> str:
    return PLACEHOLDER.sub(lambda m: f" {m.group(1).lower().replace('_', '')}x{m.group(2)} ", text)


class Bm25Encoder:
    """Document and query sparse vectors with the configured language analysis.

    ``expand`` returns extra search words for a text (the privacy layer's keyed words of
    the values behind its placeholders); they are indexed with the text, never stored in
    it.
    """

    def __init__(
        self, settings: SparseSettings, expand: Callable[[str], str] | None = None
    ) -> None:
        self.settings = settings
        self.expand = expand
        self._model = _build(settings)

    def _text(self, text: str) -> str:
        protected = _protect_placeholders(text)
        if self.expand is not None:
            extra = self.expand(text)
            if extra:
                protected = f"{protected}\n{extra}"
        return protected

    def encode_document(self, text: str) -> SparseVector:
        return _convert(self._model.embed_document(self._text(text)))

    def encode_query(self, text: str) -> SparseVector:
        return _convert(self._model.embed_query(self._text(text)))


def _build(settings: SparseSettings) -> Any:
    import qdrant_edge as qe

    try:
        return qe.Bm25(
            qe.Bm25Config(
                k=settings.k, b=settings.b, avg_len=settings.avg_len, language=settings.language
            )
        )
    except ValueError as exc:
        raise ConfigError("sparse.language", str(exc), "use e.g. english, french, german") from None


def _convert(vector: Any) -> SparseVector:
    return SparseVector(tuple(vector.indices), tuple(float(v) for v in vector.values))
