"""Micro-benchmark of a VectorStore backend: insert throughput and query latency.

    python eval/bench_store.py --points 100000 --backend edge
    python eval/bench_store.py --points 20000 --backend memory   # qdrant-client local mode

Synthetic data, seeded: random unit dense vectors, BM25-like sparse vectors over a Zipf
vocabulary, 20 chunks per document, 1-3 ACL groups per document out of 50. Points are
upserted in batches of 256 (one batch job call per ~document group), so Edge pays one
flush per call as in production.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag import PUBLIC, Chunk, IndexedChunk, SparseVector
from rag._types import chunk_id_for
from rag.stores import Filter, Match, SearchRequest, VectorStore

BATCH = 256
VOCAB = 30_000
GROUPS = [f"g:team{i}" for i in range(50)]


def unit_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random dense vectors of length 1 (cosine geometry without a model)."""
    dense = rng.standard_normal((n, dim), dtype=np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    return dense


def doc_acl(doc: int, groups: Sequence[str]) -> tuple[str, ...]:
    """1-3 of ``groups``, plus ``@public`` for 1 document in 10; seeded by the document."""
    doc_rng = np.random.default_rng(doc)  # same ACL for every chunk of a document
    acl = tuple(doc_rng.choice(groups, size=int(doc_rng.integers(1, 4)), replace=False))
    if doc_rng.random() < 0.1:
        acl += (PUBLIC,)
    return tuple(str(a) for a in acl)


def make_points(n: int, dim: int, rng: np.random.Generator) -> list[IndexedChunk]:
    dense = unit_vectors(n, dim, rng)
    points = []
    for i in range(n):
        doc = f"doc{i // 20:07d}"
        acl = doc_acl(i // 20, GROUPS)
        terms = np.unique(np.minimum(rng.zipf(1.3, 40), VOCAB - 1))
        weights = rng.uniform(0.5, 3.0, len(terms))
        chunk = Chunk(
            chunk_id_for(doc, i % 20, str(i)),
            doc,
            i % 20,
            f"chunk {i}",
            f"/data/{doc}.pdf",
            (i % 20 + 1,),
            None,
            ("NarrativeText",),
            acl,
            200,
            {"lang": "en"},
        )
        sparse = SparseVector(tuple(int(t) for t in terms), tuple(float(w) for w in weights))
        points.append(IndexedChunk(chunk, dense[i], sparse, "h", 20))
    return points


def open_backend(backend: str, dim: int, path: Path, flush: bool) -> VectorStore:
    if backend == "edge":
        from rag.stores._edge import EdgeStore

        return EdgeStore(path / "bench", dim, flush_writes=flush)
    from rag.stores._qdrant import QdrantServerStore

    return QdrantServerStore(":memory:", "bench", dim)


def timed(run: Callable[[SearchRequest], object], requests: list[SearchRequest]) -> str:
    run(requests[0])  # warm-up
    samples = []
    for request in requests:
        start = time.perf_counter()
        run(request)
        samples.append((time.perf_counter() - start) * 1000)
    p50 = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18]
    return f"p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   (n={len(samples)})"


def query_suite(store: VectorStore, queries: list[IndexedChunk], label: str) -> None:
    acl = Filter(must=(Match("acl", ("g:team3", "g:team17")),))
    suites = {
        "dense": lambda q, f: SearchRequest("dense", 10, dense=q.dense, filter=f),
        "hybrid": lambda q, f: SearchRequest(
            "hybrid", 10, dense=q.dense, sparse=q.sparse, filter=f, prefetch_limit=50
        ),
    }
    for name, build in suites.items():
        for filtered in (None, acl):
            requests = [build(q, filtered) for q in queries]
            tag = f"{name}{' +acl' if filtered else ''}"
            print(f"  {label:<14} {tag:<12} {timed(store.search, requests)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--backend", choices=("edge", "memory"), default="edge")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-flush",
        action="store_true",
        help="edge: skip the fsync per upsert call (measures what durability costs)",
    )
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    points = make_points(args.points, args.dim, rng)
    queries = make_points(args.queries, args.dim, np.random.default_rng(args.seed + 1))
    flush = (
        "" if args.backend != "edge" else (", no flush" if args.no_flush else ", flush per call")
    )
    print(f"{args.backend}: {args.points} points, dim {args.dim}{flush}")
    print(f"  generate       {time.perf_counter() - start:7.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        store = open_backend(args.backend, args.dim, Path(tmp), not args.no_flush)
        try:
            start = time.perf_counter()
            for i in range(0, len(points), BATCH):
                store.upsert(points[i : i + BATCH])
            elapsed = time.perf_counter() - start
            rate = args.points / elapsed
            print(f"  insert         {elapsed:7.2f} s   ({rate:,.0f} points/s, batches of {BATCH})")
            optimize = getattr(store, "optimize", None)
            if callable(optimize):
                query_suite(store, queries, "before optimize")
                start = time.perf_counter()
                optimize()
                print(f"  optimize       {time.perf_counter() - start:7.2f} s")
            query_suite(store, queries, "query")
            info = store.info()
            print(f"  info           {info.points} points, {info.documents} docs, {info.extra}")
        finally:
            store.close()


if __name__ == "__main__":
    main()
