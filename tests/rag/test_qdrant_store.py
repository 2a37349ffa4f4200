"""Qdrant server backend only, and the factory. Network use is loopback only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from qdrant_client import models

from rag import CollectionMismatchError, ConfigError, Settings, StoreError, load_settings
from rag._config import StoreSettings
from rag.stores import open_store
from rag.stores._edge import EdgeStore
from rag.stores._qdrant import QdrantServerStore


def settings(tmp_path: Path, **store: object) -> Settings:
    return load_settings(home=tmp_path, store=StoreSettings(**store))  # type: ignore[arg-type]


def test_qdrant_backend_without_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        open_store(settings(tmp_path, backend="qdrant"), 8)
    assert err.value.setting == "store.url"


def test_factory_opens_edge_under_home(tmp_path: Path) -> None:
    store = open_store(settings(tmp_path, collection="docs"), 8)
    try:
        assert isinstance(store, EdgeStore)
        assert store.path == tmp_path / "index" / "docs"
    finally:
        store.close()


def test_factory_opens_in_memory_server_store(tmp_path: Path) -> None:
    store = open_store(settings(tmp_path, backend="qdrant", url=":memory:"), 8)
    try:
        assert isinstance(store, QdrantServerStore)
        assert store.info().location == ":memory:"
    finally:
        store.close()


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_refused_connection_is_a_clear_store_error(tmp_path: Path) -> None:
    config = settings(
        tmp_path,
        backend="qdrant",
        url="http://admin:hunter2@127.0.0.1:1",  # port 1 on loopback: refused at once
        api_key="very-secret-key",
        timeout_s=2,
    )
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_store(config, 8)
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "http://127.0.0.1:1" in message and "store.url" in message
    assert "hunter2" not in message and "very-secret-key" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_existing_collection_with_other_dimension_is_a_mismatch() -> None:
    store = QdrantServerStore(":memory:", "documents", 8)
    try:
        # Local mode keeps collections per client, so build the foreign collection on it.
        client = store._live
        client.create_collection(
            "old",
            vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.COSINE)},
            sparse_vectors_config={"bm25": models.SparseVectorParams()},
        )
        store.collection = "old"
        with pytest.raises(CollectionMismatchError, match="size 4") as err:
            store._check_layout()
        assert "embedding.model" in str(err.value) and "store.collection" in str(err.value)
    finally:
        store.close()


def test_closed_store_says_so() -> None:
    store = QdrantServerStore(":memory:", "documents", 8)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count()
