"""sovereign-rag base package: types, errors, settings, tokenizers, embedding, stores."""

from rag import _offline  # noqa: F401  (must run before third-party imports)
from rag._config import Settings, load_settings
from rag._errors import (
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
from rag._types import PUBLIC, Chunk, Element, Hit, IndexedChunk, ParsedDocument, SparseVector

__all__ = [
    "PUBLIC",
    "Chunk",
    "CollectionMismatchError",
    "ConfigError",
    "DependencyError",
    "Element",
    "EmbeddingError",
    "FilterError",
    "Hit",
    "IndexedChunk",
    "ParseError",
    "ParsedDocument",
    "RagError",
    "Settings",
    "SparseVector",
    "StoreError",
    "StoreLockedError",
    "load_settings",
]
