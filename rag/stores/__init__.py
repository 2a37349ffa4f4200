"""Qdrant backends behind one small port."""

from rag.stores._base import (
    ALL_VALUES,
    DENSE,
    SPARSE,
    CollectionInfo,
    Filter,
    Match,
    Range,
    SearchRequest,
    VectorStore,
)
from rag.stores._factory import open_store

__all__ = [
    "ALL_VALUES",
    "DENSE",
    "SPARSE",
    "CollectionInfo",
    "Filter",
    "Match",
    "Range",
    "SearchRequest",
    "VectorStore",
    "open_store",
]
