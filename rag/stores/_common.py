"""Helpers shared by the Qdrant adapters; no SDK types here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from rag._errors import FilterError, StoreError
from rag._types import IndexedChunk
from rag.stores._base import INDEXED_KEYS, Filter, Match, SearchRequest

#: RRF constant, the same on both backends (it is Qdrant's server default), so Edge and a
#: server rank a hybrid query identically.
RRF_K = 2
#: ``info().documents`` counts distinct ``doc_id`` values with one facet request. Facets
#: return at most ``limit`` values, and every value is held in memory (and, for a server,
#: sent over the wire), so the count is capped here; beyond the cap it is a lower bound and
#: ``info().extra["documents_exact"]`` is False.
DOCUMENT_FACET_CAP = 100_000
#: Points per SDK call: bounds request size and memory for large ingests.
WRITE_BATCH = 512

_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`")


def sdk_reason(exc: BaseException) -> str:
    """A short, safe description of an SDK error for our own messages.

    Qdrant echoes fragments of rejected request bodies in quotes (serde's ``invalid type:
    string "..."``); those fragments could be document text, so quoted parts are redacted.
    Callers raise ``from None`` for the same reason: the original message stays out of logs.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _QUOTED.sub("<redacted>", text)
    return text if len(text) <= 200 else text[:200] + "..."


def safe_location(url: str) -> str:
    """``url`` without user info, query or fragment: safe to show in messages."""
    if url == ":memory:":
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def dense_list(vector: Sequence[float]) -> list[float]:
    """Plain float list from a list, tuple or numpy array (the SDKs want lists)."""
    tolist = getattr(vector, "tolist", None)
    values = tolist() if callable(tolist) else list(vector)
    return [float(v) for v in values]


def check_dimensions(points: Sequence[IndexedChunk], dimension: int) -> None:
    """Reject a wrong-sized dense vector before the SDK does, naming the chunk (not its text)."""
    for point in points:
        if len(point.dense) != dimension:
            raise StoreError(
                f"chunk {point.chunk.chunk_id} has a dense vector of size {len(point.dense)}, "
                f"the collection expects {dimension}: embed with the model the index was "
                "built with (embedding.model)"
            )


MatchKind = Literal["value", "any", "either"]


def match_plan(match: Match) -> tuple[MatchKind, list[str | int]]:
    """How to express ``match`` in Qdrant's filter language.

    One value: ``MatchValue``. Several values of one type (all str or all int): ``MatchAny``.
    Mixed str and int values are not accepted by ``MatchAny``, so they become ``either``: a
    nested ``should`` of ``MatchValue`` conditions with the same meaning.

    Boolean values are refused on every backend: qdrant-edge-py 0.9 turns ``True`` into
    the integer 1, so a boolean filter silently matches nothing there. Refusing it on the
    server too keeps a filter that works on one backend from breaking on the other.
    """
    if any(isinstance(v, bool) for v in match.values):
        raise FilterError(
            f"filter on {match.key!r} uses a boolean value, which Qdrant Edge cannot match; "
            "store the flag as a string (for example 'yes'/'no') and filter on that"
        )
    values: list[str | int] = [v for v in match.values if not isinstance(v, bool)]
    if len(values) == 1:
        return "value", values
    if all(isinstance(v, str) for v in values) or all(isinstance(v, int) for v in values):
        return "any", values
    return "either", values


def check_facet_key(key: str) -> None:
    # Qdrant facets only on keys with a payload index; checking here gives the same error
    # on every backend (local mode would otherwise allow what a server rejects).
    if key not in INDEXED_KEYS:
        raise FilterError(
            f"cannot facet on {key!r}: facets need a payload index; "
            f"use one of {', '.join(sorted(INDEXED_KEYS))}"
        )


def check_delete_filter(where: Filter) -> None:
    # An empty filter matches every point; deleting a whole index is never what a caller
    # of delete() meant, and it is one rm -r away when it is.
    if not (where.must or where.must_not):
        raise StoreError(
            "refusing to delete with an empty filter (it would delete every point); "
            "to rebuild an index, delete its directory or collection instead"
        )


def check_request(request: SearchRequest, dimension: int) -> None:
    """Reject a malformed search request with a message that says what is missing."""
    if request.limit < 1 or request.prefetch_limit < 1:
        raise StoreError("search limit and prefetch_limit must be at least 1")
    needs_dense = request.mode in ("dense", "hybrid")
    needs_sparse = request.mode in ("sparse", "hybrid")
    if needs_dense and request.dense is None:
        raise StoreError(f"{request.mode} search needs a dense query vector")
    if needs_sparse and request.sparse is None:
        raise StoreError(f"{request.mode} search needs a sparse query vector")
    if needs_dense and request.dense is not None and len(request.dense) != dimension:
        raise StoreError(
            f"query vector has size {len(request.dense)}, the collection expects {dimension}: "
            "embed queries with the model the index was built with (embedding.model)"
        )
    if request.fusion_weights is not None:
        if request.mode != "hybrid":
            raise StoreError("fusion_weights apply to hybrid search only")
        if len(request.fusion_weights) != 2 or min(request.fusion_weights) < 0:
            raise StoreError("fusion_weights must be two non-negative numbers (dense, sparse)")
