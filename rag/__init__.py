"""sovereign-rag base package: types, errors, settings, tokenizers, embedding, stores."""

from rag import _offline  # noqa: F401  (must run before third-party imports)
from rag._config import Settings, load_settings
from rag._embedding import Embedder, SentenceTransformerEmbedder
from rag._errors import (
    PARSE_REASONS,
    AccessError,
    CollectionMismatchError,
    ConfigError,
    ContextOverflowError,
    DependencyError,
    EgressBlockedError,
    EmbeddingError,
    FilterError,
    ParseError,
    PrivacyError,
    RagError,
    StoreError,
    StoreLockedError,
    VaultError,
)
from rag._pack import (
    DEFAULT_SYSTEM_PROMPT,
    ContextBlock,
    ContextPacker,
    DroppedChunk,
    PackedContext,
    TokenBudget,
)
from rag._retrieve import DroppedHit, Principal, Retrieval, Retriever
from rag._sparse import Bm25Encoder
from rag._tokens import MistralTokens
from rag._types import PUBLIC, Chunk, Element, Hit, IndexedChunk, ParsedDocument, SparseVector

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "PARSE_REASONS",
    "PUBLIC",
    "AccessError",
    "Bm25Encoder",
    "Chunk",
    "CollectionMismatchError",
    "ConfigError",
    "ContextBlock",
    "ContextOverflowError",
    "ContextPacker",
    "DependencyError",
    "DroppedChunk",
    "DroppedHit",
    "EgressBlockedError",
    "Element",
    "Embedder",
    "EmbeddingError",
    "FilterError",
    "Hit",
    "IndexedChunk",
    "MistralTokens",
    "PackedContext",
    "ParseError",
    "ParsedDocument",
    "Principal",
    "PrivacyError",
    "RagError",
    "Retrieval",
    "Retriever",
    "SentenceTransformerEmbedder",
    "Settings",
    "SparseVector",
    "StoreError",
    "StoreLockedError",
    "TokenBudget",
    "VaultError",
    "load_settings",
]
