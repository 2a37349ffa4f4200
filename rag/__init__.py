"""sovereign-rag base package: types, errors, settings, tokenizers, embedding, stores."""

from rag import _offline  # noqa: F401  (must run before third-party imports)
from rag._config import Settings, load_settings
from rag._embedding import Embedder, SentenceTransformerEmbedder
from rag._errors import (
    PARSE_REASONS,
    CollectionMismatchError,
    ConfigError,
    DependencyError,
    EmbeddingError,
    FilterError,
    ParseError,
    RagError,
    StoreError,
    StoreLockedError,
)
from rag._search import principals_for, search
from rag._sparse import Bm25Encoder
from rag._tokens import MistralTokens
from rag._types import PUBLIC, Chunk, Element, Hit, IndexedChunk, ParsedDocument, SparseVector

__all__ = [
    "PARSE_REASONS",
    "PUBLIC",
    "Bm25Encoder",
    "Chunk",
    "CollectionMismatchError",
    "ConfigError",
    "DependencyError",
    "Element",
    "Embedder",
    "EmbeddingError",
    "FilterError",
    "Hit",
    "IndexedChunk",
    "MistralTokens",
    "ParseError",
    "ParsedDocument",
    "RagError",
    "SentenceTransformerEmbedder",
    "Settings",
    "SparseVector",
    "StoreError",
    "StoreLockedError",
    "load_settings",
    "principals_for",
    "search",
]
