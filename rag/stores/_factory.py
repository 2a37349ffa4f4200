"""Pick the store backend named by ``settings.store.backend``."""

from __future__ import annotations

from rag._config import Settings
from rag._errors import ConfigError, DependencyError
from rag.stores._base import VectorStore


def open_store(settings: Settings, dimension: int) -> VectorStore:
    """Open (creating if needed) the collection for chunks with ``dimension``-sized vectors.

    Backend modules are imported here, not at package import, so a missing SDK makes one
    backend unavailable instead of making ``rag.stores`` unimportable.
    """
    store = settings.store
    if store.backend == "edge":
        try:
            from rag.stores._edge import EdgeStore
        except ImportError as exc:
            raise DependencyError(
                f"store.backend 'edge' needs qdrant-edge-py ({exc.name} is missing): "
                "pip install qdrant-edge-py==0.9.0, or use store.backend = 'qdrant'"
            ) from None
        return EdgeStore(settings.index_dir / store.collection, dimension)

    if not store.url:
        raise ConfigError(
            "store.url",
            "is required when store.backend is 'qdrant'",
            "set it to the server address, e.g. http://localhost:6333 "
            "(RAG_STORE__URL), or use store.backend = 'edge'",
        )
    try:
        from rag.stores._qdrant import QdrantServerStore
    except ImportError as exc:
        raise DependencyError(
            f"store.backend 'qdrant' needs qdrant-client ({exc.name} is missing): "
            "pip install 'qdrant-client>=1.15,<2', or use store.backend = 'edge'"
        ) from None
    return QdrantServerStore(
        store.url,
        store.collection,
        dimension,
        api_key=store.api_key.get_secret_value() if store.api_key else None,
        timeout_s=store.timeout_s,
        prefer_grpc=store.prefer_grpc,
    )
