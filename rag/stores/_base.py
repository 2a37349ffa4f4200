"""The store port: what the rest of the system needs from a Qdrant backend.

Both backends (Qdrant Edge in-process, Qdrant server via qdrant-client) store one point
per chunk with a named dense vector ``dense``, a named sparse vector ``bm25`` (IDF applied
by Qdrant) and the payload built by :func:`chunk_payload`. SDK types never leave the
adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal, Protocol, runtime_checkable

from rag._errors import FilterError
from rag._types import Chunk, Hit, IndexedChunk, SparseVector

DENSE = "dense"
SPARSE = "bm25"

#: Payload keys written by the pipeline, with the kind of value each holds. A filter on a
#: key outside this table (or ``meta.<name>``) is an error, not a silently empty result.
PAYLOAD_KEYS: Mapping[str, str] = {
    "doc_id": "keyword",
    "chunk_id": "keyword",
    "chunk_index": "integer",
    "chunk_count": "integer",
    "content_hash": "keyword",
    "source": "keyword",
    "pages": "integer",
    "section": "keyword",
    "element_types": "keyword",
    "acl": "keyword",
    "token_count": "integer",
    "tokenizer": "keyword",
    "text": "text",
}
#: Keys that get a payload index at collection creation.
INDEXED_KEYS: Mapping[str, str] = {
    "doc_id": "keyword",
    "acl": "keyword",
    "content_hash": "keyword",
    "source": "keyword",
}
META_PREFIX = "meta."
#: Facet limit for "every value" (e.g. all sources of a collection); bounds memory.
ALL_VALUES = 1_000_000


@dataclass(frozen=True)
class Match:
    """Condition ``key`` has any of ``values`` (for list payloads: any element matches).

    Stores refuse boolean values with ``FilterError``: Qdrant Edge cannot match them, so
    store flags as strings.
    """

    key: str
    values: tuple[str | int | bool, ...]

    def __post_init__(self) -> None:
        _check_key(self.key)
        if not self.values:
            raise FilterError(f"filter on {self.key!r} has no values; give at least one")
        for value in self.values:
            if not isinstance(value, (str, int)):  # bool is an int; adapters refuse it
                raise FilterError(
                    f"filter on {self.key!r} has a value of type {type(value).__name__}; "
                    "match strings or integers (use Range for numeric or date bounds)"
                )


def _check_key(key: str) -> None:
    if key not in PAYLOAD_KEYS and not (
        key.startswith(META_PREFIX) and len(key) > len(META_PREFIX)
    ):
        known = ", ".join(sorted(PAYLOAD_KEYS))
        raise FilterError(f"unknown filter key {key!r}: use one of {known} or 'meta.<field>'")


Bound = int | float | date | datetime


def _iso(value: date | datetime) -> str:
    """RFC 3339 UTC text, as Qdrant's datetime ranges want it; naive times are UTC."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Range:
    """Condition ``gte <= key <= lte`` (``gt``/``lt`` strict) on a number or a date.

    Bounds are all numbers or all dates/datetimes. Dates compare with RFC 3339 payload
    values such as ``meta.modified_at``; a naive date or datetime is taken as UTC, and a
    date bound means midnight UTC of that day.
    """

    key: str
    gte: Bound | None = None
    gt: Bound | None = None
    lte: Bound | None = None
    lt: Bound | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        bounds = [b for b in (self.gte, self.gt, self.lte, self.lt) if b is not None]
        if not bounds:
            raise FilterError(f"range on {self.key!r} has no bound; give gte, gt, lte or lt")
        kinds = {self._kind(b) for b in bounds}
        if len(kinds) > 1:
            raise FilterError(f"range on {self.key!r} mixes numbers and dates")

    def _kind(self, bound: object) -> str:
        if isinstance(bound, bool):
            raise FilterError(f"range on {self.key!r} has a boolean bound")
        if isinstance(bound, (date, datetime)):
            return "datetime"
        if isinstance(bound, (int, float)):
            return "number"
        raise FilterError(
            f"range on {self.key!r} has a bound of type {type(bound).__name__}; "
            "use numbers or datetime.date/datetime values"
        )

    @property
    def is_datetime(self) -> bool:
        return any(isinstance(b, (date, datetime)) for b in (self.gte, self.gt, self.lte, self.lt))

    def bounds(self) -> dict[str, float | str]:
        """The bounds that are set, as floats or RFC 3339 strings."""
        out: dict[str, float | str] = {}
        for name in ("gte", "gt", "lte", "lt"):
            b = getattr(self, name)
            if b is not None:
                out[name] = _iso(b) if isinstance(b, (date, datetime)) else float(b)
        return out


Condition = Match | Range


@dataclass(frozen=True)
class Filter:
    """All ``must`` conditions hold and no ``must_not`` condition holds."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def __and__(self, other: Filter | None) -> Filter:
        if other is None:
            return self
        return Filter(self.must + other.must, self.must_not + other.must_not)

    @staticmethod
    def of(**equals: str | int | bool | Sequence[str | int | bool]) -> Filter:
        conditions = []
        for key, value in equals.items():
            values = tuple(value) if isinstance(value, (list, tuple, set)) else (value,)
            conditions.append(Match(key, values))
        return Filter(must=tuple(conditions))


@dataclass(frozen=True)
class SearchRequest:
    """Dense, sparse or hybrid (RRF fusion of both, done by Qdrant) search."""

    mode: Literal["dense", "sparse", "hybrid"]
    limit: int
    dense: Sequence[float] | None = None
    sparse: SparseVector | None = None
    filter: Filter | None = None
    prefetch_limit: int = 50
    fusion_weights: tuple[float, float] | None = None  # (dense, sparse), hybrid only


@dataclass(frozen=True)
class CollectionInfo:
    points: int
    documents: int
    dimension: int | None
    backend: str
    location: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class VectorStore(Protocol):
    """Small port over a Qdrant collection; see the module docstring for the layout."""

    def upsert(self, points: Sequence[IndexedChunk]) -> None:
        """Insert or replace points (ids are the chunk ids), durably once this returns."""

    def delete(self, where: Filter) -> None:
        """Delete every point matching ``where``, durably once this returns.

        A filter without conditions is refused with ``StoreError`` (it would match every
        point); rebuild an index by deleting its directory or collection instead.
        """

    def count(self, where: Filter | None = None) -> int:
        """Exact number of points matching ``where`` (all points if None)."""

    def search(self, request: SearchRequest) -> list[Hit]:
        """Best ``request.limit`` hits, highest score first."""

    def scroll(
        self, where: Filter | None = None, limit: int = 100, offset: str | None = None
    ) -> tuple[list[Chunk], str | None]:
        """One page of stored chunks and the offset of the next page (None at the end)."""

    def facet(self, key: str, where: Filter | None = None, limit: int = 1000) -> dict[str, int]:
        """Point counts per distinct value of an indexed keyword key (see ``INDEXED_KEYS``)."""

    def info(self) -> CollectionInfo:
        """Counts and layout of the collection."""

    def close(self) -> None:
        """Release the collection (and the embedded shard's lock)."""


def chunk_payload(point: IndexedChunk) -> dict[str, Any]:
    """The payload stored for a point. Document metadata goes under ``meta``."""
    c = point.chunk
    return {
        "doc_id": c.doc_id,
        "chunk_id": c.chunk_id,
        "chunk_index": c.index,
        "chunk_count": point.chunk_count,
        "content_hash": point.content_hash,
        "source": c.source,
        "pages": list(c.pages),
        "section": c.section,
        "element_types": list(c.element_types),
        "acl": list(c.acl),
        "token_count": c.token_count,
        "tokenizer": c.tokenizer,
        "text": c.text,
        "meta": dict(c.metadata),
    }


def chunk_from_payload(payload: Mapping[str, Any]) -> Chunk:
    return Chunk(
        chunk_id=str(payload["chunk_id"]),
        doc_id=str(payload["doc_id"]),
        index=int(payload["chunk_index"]),
        text=str(payload["text"]),
        source=str(payload["source"]),
        pages=tuple(int(p) for p in payload.get("pages") or ()),
        section=payload.get("section"),
        element_types=tuple(payload.get("element_types") or ()),
        acl=tuple(payload.get("acl") or ()),
        token_count=int(payload.get("token_count") or 0),
        metadata=dict(payload.get("meta") or {}),
        tokenizer=str(payload.get("tokenizer") or ""),
    )
