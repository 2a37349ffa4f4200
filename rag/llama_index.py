"""LlamaIndex adapter: use sovereign-rag's embedder inside a LlamaIndex pipeline.

    from llama_index.core.ingestion import IngestionPipeline
    from rag.llama_index import LlamaIndexEmbedding

    embed_model = LlamaIndexEmbedding.from_settings(settings.embedding)

Unlike LlamaIndex's HuggingFace embedding, it refuses a passage longer than the model
reads instead of silently embedding only its beginning; pair it with
``ingest.llama_index.MistralTokenChunker`` so nodes always fit.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import PrivateAttr

from rag._config import EmbeddingSettings
from rag._embedding import Embedder, SentenceTransformerEmbedder


class LlamaIndexEmbedding(BaseEmbedding):
    """A LlamaIndex ``BaseEmbedding`` over any :class:`rag.Embedder`."""

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings, **kwargs: Any) -> LlamaIndexEmbedding:
        return cls(SentenceTransformerEmbedder(settings), **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "SovereignRagEmbedding"

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _get_query_embedding(self, query: str) -> Embedding:
        return [float(x) for x in self._embedder.embed_query(query)]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return [[float(x) for x in row] for row in self._embedder.embed_passages(texts)]
