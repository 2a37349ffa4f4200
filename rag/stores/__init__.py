"""Qdrant backends behind one small port."""

from rag.stores._base import (
    DENSE,
    SPARSE,
    CollectionInfo,
    Filter,
    Match,
    SearchRequest,
    VectorStore,
)
from rag.stores._factory import open_store

__all__ = [
    "DENSE",
    "SPARSE",
    "CollectionInfo",
    "Filter",
    "Match",
    "SearchRequest",
    "VectorStore",
    "open_store",
]
