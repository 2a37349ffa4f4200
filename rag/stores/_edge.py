"""Embedded Qdrant Edge backend: one shard directory per collection, one process at a time.

Durability. Every write goes to Qdrant Edge's WAL before ``update`` returns; the WAL lives
in memory-mapped files, so a write that returned survives ``kill -9`` of this process (the
kernel still holds the pages) and is replayed on the next open. Surviving a power cut or
an OS crash additionally needs ``flush()``, which fsyncs; :meth:`EdgeStore.upsert` and
:meth:`EdgeStore.delete` flush once per call (about 10 ms) unless ``flush_writes=False``.
Writes are idempotent upserts/deletes by id, so replaying a half-finished batch job gives
exactly the points of a clean run.

Optimizing. Edge runs no background optimizer: new points stay in appendable segments that
are searched by brute force, and deletes leave tombstones. :meth:`EdgeStore.optimize`
merges segments, vacuums deletes and builds HNSW indexes. It blocks, so it is never run on
the query path; the batch job calls it once at the end of a run that changed points.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FacetRequest,
    FieldCondition,
    Fusion,
    MatchAny,
    MatchValue,
    Modifier,
    PayloadSchemaType,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    RangeDateTime,
    RangeFloat,
    ScrollRequest,
    UpdateOperation,
)
from qdrant_edge import Filter as EdgeFilter
from qdrant_edge import SparseVector as EdgeSparse

from rag._errors import CollectionMismatchError, RagError, StoreError, StoreLockedError
from rag._types import Chunk, Hit, IndexedChunk, SparseVector
from rag.stores._base import (
    DENSE,
    INDEXED_KEYS,
    SPARSE,
    CollectionInfo,
    Condition,
    Filter,
    Range,
    SearchRequest,
    chunk_from_payload,
    chunk_payload,
)
from rag.stores._common import (
    DOCUMENT_FACET_CAP,
    RRF_K,
    WRITE_BATCH,
    check_delete_filter,
    check_dimensions,
    check_facet_key,
    check_request,
    dense_list,
    match_plan,
    sdk_reason,
)
from rag.stores._holder import ShardLock, describe_holder, remove_holder, write_holder

_CONFIG_FILE = "edge_config.json"  # written by Qdrant Edge at create time


def _condition(match: Condition) -> Any:
    if isinstance(match, Range):
        bounds: Any = match.bounds()
        if match.is_datetime:
            return FieldCondition(match.key, range=RangeDateTime(**bounds))
        return FieldCondition(match.key, range=RangeFloat(**bounds))
    kind, values = match_plan(match)
    if kind == "value":
        return FieldCondition(match.key, match=MatchValue(values[0]))
    if kind == "any":
        return FieldCondition(match.key, match=MatchAny(values))  # type: ignore[arg-type]
    return EdgeFilter(should=[FieldCondition(match.key, match=MatchValue(v)) for v in values])


def edge_filter(where: Filter | None) -> EdgeFilter | None:
    """Our filter in Qdrant Edge terms (None when it has no conditions)."""
    if where is None or not (where.must or where.must_not):
        return None
    return _edge_filter(where)


def _edge_filter(where: Filter) -> EdgeFilter:
    # ``meta.x`` keys are already Qdrant's nested-key syntax, so keys pass through as-is.
    return EdgeFilter(
        must=[_condition(m) for m in where.must] or None,
        must_not=[_condition(m) for m in where.must_not] or None,
    )


def _sparse(vector: SparseVector) -> EdgeSparse:
    return EdgeSparse(list(vector.indices), [float(v) for v in vector.values])


class EdgeStore:
    """A Qdrant Edge shard at ``path`` holding chunks with ``dimension``-sized vectors."""

    backend = "edge"

    def __init__(self, path: Path | str, dimension: int, *, flush_writes: bool = True) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self._flush_writes = flush_writes
        self._shard: EdgeShard | None = None
        self._lock = self._acquire()
        try:
            if (self.path / "segments").exists() or (self.path / _CONFIG_FILE).exists():
                self._check_layout()
                shard = self._open(lambda: EdgeShard.load(str(self.path)))
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                shard = self._open(lambda: EdgeShard.create(str(self.path), self._config()))
        except BaseException:
            self._lock.release()
            raise
        self._shard = shard
        try:
            self._ensure_indexes()
            write_holder(self.path)
        except BaseException:
            shard.close()
            self._shard = None
            self._lock.release()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _config(self) -> EdgeConfig:
        return EdgeConfig(
            vectors={DENSE: EdgeVectorParams(size=self.dimension, distance=Distance.Cosine)},
            sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
        )

    def _mismatch(self, found: str) -> CollectionMismatchError:
        return CollectionMismatchError(
            f"index {self.path} {found}, but the configured embedding model needs dense "
            f"vectors of size {self.dimension}: embedding.model changed since this index was "
            "built. Use a new collection name (store.collection) to build a second index, or "
            f"delete {self.path} and ingest again"
        )

    def _check_layout(self) -> None:
        """Compare the stored layout with ours before taking the shard's lock.

        Reading Edge's own config file gives a precise message. Loading with our config
        would also detect a mismatch, but it rewrites that file on every open, which is one
        more thing a ``kill -9`` could interrupt.
        """
        try:
            stored = json.loads((self.path / _CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # older or damaged file: loading still validates segments
        dense = (stored.get("vectors") or {}).get(DENSE)
        if not isinstance(dense, dict):
            raise self._mismatch(f"has no dense vector named {DENSE!r}")
        if dense.get("size") != self.dimension:
            raise self._mismatch(f"holds dense vectors of size {dense.get('size')}")
        if SPARSE not in (stored.get("sparse_vectors") or {}):
            raise self._mismatch(f"has no sparse vector named {SPARSE!r} (it is not ours)")

    def _locked(self) -> StoreLockedError:
        return StoreLockedError(
            f"index {self.path} is already open, and Qdrant Edge allows only one "
            f"process per index: {describe_holder(self.path)}. Wait for the other "
            "'rag' command to finish, or use a Qdrant server (store.backend = "
            '"qdrant" and store.url) for concurrent readers and writers'
        )

    def _acquire(self) -> ShardLock:
        try:
            return ShardLock(self.path)
        except BlockingIOError:
            raise self._locked() from None

    def _open(self, opener: Callable[[], EdgeShard]) -> EdgeShard:
        try:
            shard: EdgeShard = opener()
        except Exception as exc:
            if "WouldBlock" in str(exc):  # a process that bypassed our lock file
                raise self._locked() from None
            if "incompatible" in str(exc).lower():
                raise self._mismatch("has a different vector layout") from None
            raise StoreError(
                f"cannot open index {self.path}: {sdk_reason(exc)} (check that the directory "
                "is readable and writable, and that the disk is not full)"
            ) from None
        return shard

    def _ensure_indexes(self) -> None:
        # Also on load, so keys added to INDEXED_KEYS later reach existing indexes.
        with self._sdk("read payload indexes"):
            present = set(self._live.info().payload_schema)
        for key in INDEXED_KEYS:
            if key not in present:
                with self._sdk("create payload index"):
                    self._live.update(
                        UpdateOperation.create_field_index(key, PayloadSchemaType.Keyword)
                    )
        with self._sdk("flush"):
            self._live.flush()

    @property
    def _live(self) -> EdgeShard:
        if self._shard is None:
            raise StoreError(f"index {self.path} is closed; open a new store")
        return self._shard

    @contextmanager
    def _sdk(self, operation: str) -> Iterator[None]:
        try:
            yield
        except RagError:
            raise
        except Exception as exc:
            raise StoreError(
                f"Qdrant Edge {operation} failed on index {self.path}: {sdk_reason(exc)}"
            ) from None

    # -- the port --------------------------------------------------------------------------
    def upsert(self, points: Sequence[IndexedChunk]) -> None:
        if not points:
            return
        check_dimensions(points, self.dimension)
        shard = self._live
        with self._sdk("upsert"):
            for start in range(0, len(points), WRITE_BATCH):
                batch = [
                    Point(
                        p.chunk.chunk_id,
                        {DENSE: dense_list(p.dense), SPARSE: _sparse(p.sparse)},
                        chunk_payload(p),
                    )
                    for p in points[start : start + WRITE_BATCH]
                ]
                shard.update(UpdateOperation.upsert_points(batch))
            if self._flush_writes:
                shard.flush()

    def delete(self, where: Filter) -> None:
        check_delete_filter(where)
        shard = self._live
        with self._sdk("delete"):
            shard.update(UpdateOperation.delete_points_by_filter(_edge_filter(where)))
            if self._flush_writes:
                shard.flush()

    def count(self, where: Filter | None = None) -> int:
        with self._sdk("count"):
            return self._live.count(CountRequest(exact=True, filter=edge_filter(where)))

    def search(self, request: SearchRequest) -> list[Hit]:
        check_request(request, self.dimension)
        where = edge_filter(request.filter)
        dense = (
            Query.Nearest(dense_list(request.dense), using=DENSE)
            if request.dense is not None
            else None
        )
        sparse = (
            Query.Nearest(_sparse(request.sparse), using=SPARSE)
            if request.sparse is not None
            else None
        )
        if request.mode == "hybrid":
            weights = list(request.fusion_weights) if request.fusion_weights else None
            query = QueryRequest(
                limit=request.limit,
                # The stub types ``query`` as Fusion, not its Rrf variant (which it accepts).
                query=Fusion.Rrf(k=RRF_K, weights=weights),  # type: ignore[arg-type]
                # The filter sits inside each prefetch too: each branch must only ever
                # rank chunks the caller may read (ACL), not just the fused list.
                prefetches=[
                    Prefetch(request.prefetch_limit, query=dense, filter=where),
                    Prefetch(request.prefetch_limit, query=sparse, filter=where),
                ],
                filter=where,
                with_payload=True,
            )
        else:
            chosen = dense if request.mode == "dense" else sparse
            query = QueryRequest(limit=request.limit, query=chosen, filter=where, with_payload=True)
        with self._sdk(f"{request.mode} search"):
            points = self._live.query(query)
        return [Hit(chunk_from_payload(p.payload or {}), float(p.score)) for p in points]

    def scroll(
        self, where: Filter | None = None, limit: int = 100, offset: str | None = None
    ) -> tuple[list[Chunk], str | None]:
        request = ScrollRequest(
            offset=offset, limit=limit, filter=edge_filter(where), with_payload=True
        )
        with self._sdk("scroll"):
            records, next_offset = self._live.scroll(request)
        chunks = [chunk_from_payload(r.payload or {}) for r in records]
        return chunks, (str(next_offset) if next_offset is not None else None)

    def facet(self, key: str, where: Filter | None = None, limit: int = 1000) -> dict[str, int]:
        check_facet_key(key)
        request = FacetRequest(key, limit=limit, exact=True, filter=edge_filter(where))
        with self._sdk("facet"):
            response = self._live.facet(request)
        return {str(hit.value): int(hit.count) for hit in response}

    def info(self) -> CollectionInfo:
        with self._sdk("info"):
            shard_info = self._live.info()
        documents = self.facet("doc_id", limit=DOCUMENT_FACET_CAP)
        return CollectionInfo(
            points=self.count(),
            documents=len(documents),
            dimension=self.dimension,
            backend=self.backend,
            location=str(self.path),
            extra={
                "documents_exact": len(documents) < DOCUMENT_FACET_CAP,
                "segments": shard_info.segments_count,
                "indexed_vectors": shard_info.indexed_vectors_count,
            },
        )

    def close(self) -> None:
        """Flush, drop the holder record, release the shard. Safe to call twice."""
        shard, self._shard = self._shard, None
        if shard is None:
            return
        try:
            with self._sdk("flush on close"):
                shard.flush()
        finally:
            # Holder record first: once the shard closes, another process may open it and
            # write its own record, which must not be removed by us.
            remove_holder(self.path)
            shard.close()
            self._lock.release()

    # -- Edge only -------------------------------------------------------------------------
    def optimize(self) -> bool:
        """Merge segments, vacuum deletes, build HNSW; True if anything changed. Blocks."""
        shard = self._live
        with self._sdk("optimize"):
            changed = shard.optimize()
            shard.flush()
        return changed

    def __enter__(self) -> EdgeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
