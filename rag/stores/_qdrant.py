"""Qdrant server backend (qdrant-client): many processes may read and write at once.

``url=":memory:"`` runs qdrant-client's local mode in this process: same API, no server,
used by the tests. Writes pass ``wait=True``, so they are in the server's WAL when
:meth:`QdrantServerStore.upsert` returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag._errors import CollectionMismatchError, RagError, StoreError
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
    safe_location,
    sdk_reason,
)

_UNREACHABLE_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def _condition(match: Condition) -> models.Condition:
    if isinstance(match, Range):
        bounds: Any = match.bounds()
        if match.is_datetime:
            return models.FieldCondition(key=match.key, range=models.DatetimeRange(**bounds))
        return models.FieldCondition(key=match.key, range=models.Range(**bounds))
    kind, values = match_plan(match)
    if kind == "value":
        return models.FieldCondition(key=match.key, match=models.MatchValue(value=values[0]))
    if kind == "any":
        return models.FieldCondition(key=match.key, match=models.MatchAny(any=values))
    return models.Filter(
        should=[
            models.FieldCondition(key=match.key, match=models.MatchValue(value=v)) for v in values
        ]
    )


def server_filter(where: Filter | None) -> models.Filter | None:
    """Our filter in qdrant-client terms (None when it has no conditions)."""
    if where is None or not (where.must or where.must_not):
        return None
    return _server_filter(where)


def _server_filter(where: Filter) -> models.Filter:
    # ``meta.x`` keys are already Qdrant's nested-key syntax, so keys pass through as-is.
    return models.Filter(
        must=[_condition(m) for m in where.must] or None,
        must_not=[_condition(m) for m in where.must_not] or None,
    )


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(
        indices=list(vector.indices), values=[float(v) for v in vector.values]
    )


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, ResponseHandlingException):  # connect/read errors and timeouts
        return True
    return isinstance(exc, grpc.RpcError) and exc.code() in _UNREACHABLE_GRPC


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code
    return None


class QdrantServerStore:
    """Collection ``collection`` on the Qdrant server at ``url`` (or ``":memory:"``)."""

    backend = "qdrant"

    def __init__(
        self,
        url: str,
        collection: str,
        dimension: int,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        prefer_grpc: bool = False,
    ) -> None:
        self.collection = collection
        self.dimension = dimension
        self.location = safe_location(url)
        self._local = url == ":memory:"
        if self._local:
            self._client: QdrantClient | None = QdrantClient(":memory:")
        else:
            # No version check at construction: it is an extra request whose failure is
            # only a warning; the probe below fails with a message that says what to do.
            self._client = QdrantClient(
                url=url,
                api_key=api_key,
                timeout=max(1, math.ceil(timeout_s)),
                prefer_grpc=prefer_grpc,
                check_compatibility=False,
            )
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _prepare(self) -> None:
        client = self._live
        with self._sdk("connect"):
            exists = client.collection_exists(self.collection)
        if not exists:
            self._create()
        self._check_layout()
        if not self._local:  # local mode ignores payload indexes (and warns about them)
            self._ensure_indexes()

    def _create(self) -> None:
        try:
            self._live.create_collection(
                self.collection,
                vectors_config={
                    DENSE: models.VectorParams(size=self.dimension, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
        except Exception as exc:
            if _status(exc) == 409:  # another process created it first: fine
                return
            raise self._error("create collection", exc) from None

    def _mismatch(self, found: str) -> CollectionMismatchError:
        return CollectionMismatchError(
            f"collection {self.collection!r} at {self.location} {found}, but the configured "
            f"embedding model needs dense vectors of size {self.dimension}: embedding.model "
            "changed since this collection was built. Use a new collection name "
            "(store.collection), or delete the collection and ingest again"
        )

    def _check_layout(self) -> None:
        with self._sdk("read collection"):
            params = self._live.get_collection(self.collection).config.params
        vectors = params.vectors if isinstance(params.vectors, dict) else {}
        dense = vectors.get(DENSE)
        if dense is None:
            raise self._mismatch(f"has no dense vector named {DENSE!r}")
        if dense.size != self.dimension:
            raise self._mismatch(f"holds dense vectors of size {dense.size}")
        if SPARSE not in (params.sparse_vectors or {}):
            raise self._mismatch(f"has no sparse vector named {SPARSE!r} (it is not ours)")

    def _ensure_indexes(self) -> None:
        # Also for existing collections, so keys added to INDEXED_KEYS later get indexed.
        with self._sdk("read payload indexes"):
            present = set(self._live.get_collection(self.collection).payload_schema)
        for key in INDEXED_KEYS:
            if key not in present:
                with self._sdk("create payload index"):
                    self._live.create_payload_index(
                        self.collection, key, models.PayloadSchemaType.KEYWORD, wait=True
                    )

    @property
    def _live(self) -> QdrantClient:
        if self._client is None:
            raise StoreError(f"store for {self.location} is closed; open a new store")
        return self._client

    def _error(self, operation: str, exc: BaseException) -> StoreError:
        if _unreachable(exc):
            return StoreError(
                f"cannot reach the Qdrant server at {self.location} (store.url) during "
                f"{operation}: {sdk_reason(exc)}. Check that the server is running and "
                f"reachable from this machine (e.g. curl {self.location}/readyz), and that "
                "store.timeout_s is long enough"
            )
        if _status(exc) in (401, 403):
            return StoreError(
                f"the Qdrant server at {self.location} refused {operation}: not authorized. "
                "Check store.api_key (set it with RAG_STORE__API_KEY)"
            )
        return StoreError(
            f"Qdrant {operation} failed on collection {self.collection!r} at {self.location}: "
            f"{sdk_reason(exc)}"
        )

    @contextmanager
    def _sdk(self, operation: str) -> Iterator[None]:
        try:
            yield
        except RagError:
            raise
        except Exception as exc:
            raise self._error(operation, exc) from None

    # -- the port --------------------------------------------------------------------------
    def upsert(self, points: Sequence[IndexedChunk]) -> None:
        if not points:
            return
        check_dimensions(points, self.dimension)
        with self._sdk("upsert"):
            for start in range(0, len(points), WRITE_BATCH):
                batch = [
                    models.PointStruct(
                        id=p.chunk.chunk_id,
                        vector={DENSE: dense_list(p.dense), SPARSE: _sparse(p.sparse)},
                        payload=chunk_payload(p),
                    )
                    for p in points[start : start + WRITE_BATCH]
                ]
                self._live.upsert(self.collection, points=batch, wait=True)

    def delete(self, where: Filter) -> None:
        check_delete_filter(where)
        selector = models.FilterSelector(filter=_server_filter(where))
        with self._sdk("delete"):
            self._live.delete(self.collection, points_selector=selector, wait=True)

    def count(self, where: Filter | None = None) -> int:
        with self._sdk("count"):
            result = self._live.count(
                self.collection, count_filter=server_filter(where), exact=True
            )
        return int(result.count)

    def _query(self, request: SearchRequest) -> dict[str, Any]:
        where = server_filter(request.filter)
        dense = dense_list(request.dense) if request.dense is not None else None
        sparse = _sparse(request.sparse) if request.sparse is not None else None
        if request.mode == "dense":
            return {"query": dense, "using": DENSE, "query_filter": where}
        if request.mode == "sparse":
            return {"query": sparse, "using": SPARSE, "query_filter": where}
        fusion: models.Query = models.FusionQuery(fusion=models.Fusion.RRF)
        if request.fusion_weights is not None:
            fusion = models.RrfQuery(rrf=models.Rrf(k=RRF_K, weights=list(request.fusion_weights)))
        return {
            "query": fusion,
            # The filter sits inside each prefetch too: each branch must only ever rank
            # chunks the caller may read (ACL), not just the fused list.
            "prefetch": [
                models.Prefetch(
                    query=dense, using=DENSE, limit=request.prefetch_limit, filter=where
                ),
                models.Prefetch(
                    query=sparse, using=SPARSE, limit=request.prefetch_limit, filter=where
                ),
            ],
            "query_filter": where,
        }

    def search(self, request: SearchRequest) -> list[Hit]:
        check_request(request, self.dimension)
        try:
            response = self._live.query_points(
                self.collection, limit=request.limit, with_payload=True, **self._query(request)
            )
        except Exception as exc:
            if request.fusion_weights is not None and _status(exc) in (400, 422):
                raise StoreError(
                    f"the Qdrant server at {self.location} rejected weighted RRF "
                    f"(fusion_weights): {sdk_reason(exc)}. Hybrid search always weights its "
                    "fusion; upgrade the server to a version with weighted RRF, or search "
                    "in dense or sparse mode"
                ) from None
            raise self._error(f"{request.mode} search", exc) from None
        return [Hit(chunk_from_payload(p.payload or {}), float(p.score)) for p in response.points]

    def scroll(
        self, where: Filter | None = None, limit: int = 100, offset: str | None = None
    ) -> tuple[list[Chunk], str | None]:
        with self._sdk("scroll"):
            records, next_offset = self._live.scroll(
                self.collection,
                scroll_filter=server_filter(where),
                limit=limit,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            )
        chunks = [chunk_from_payload(r.payload or {}) for r in records]
        return chunks, (str(next_offset) if next_offset is not None else None)

    def facet(self, key: str, where: Filter | None = None, limit: int = 1000) -> dict[str, int]:
        check_facet_key(key)
        with self._sdk("facet"):
            response = self._live.facet(
                self.collection, key, facet_filter=server_filter(where), limit=limit, exact=True
            )
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def info(self) -> CollectionInfo:
        documents = self.facet("doc_id", limit=DOCUMENT_FACET_CAP)
        return CollectionInfo(
            points=self.count(),
            documents=len(documents),
            dimension=self.dimension,
            backend=self.backend,
            location=self.location,
            extra={
                "collection": self.collection,
                "documents_exact": len(documents) < DOCUMENT_FACET_CAP,
            },
        )

    def close(self) -> None:
        """Close the client's connections. Safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
