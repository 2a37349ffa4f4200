"""Ingestion benchmark: per-stage seconds, chunks/s, end-to-end ÷ embed-only, truncation.

    .venv/bin/python -m eval.bench_ingest ../shared/data/docs-us-gov-reports/files
    .venv/bin/python -m eval.bench_ingest ../shared/data/docs-us-gov-reports/files --privacy off

Ingests the folder into a fresh temporary home with the configured pipeline (real
parser, real embedding model, Qdrant Edge), then embeds the very same chunk texts again
with nothing else running to get the embedding-only throughput. The ratio of the two
rates says how much the rest of the pipeline costs on top of embedding (1.0 = free).
Also reports the fraction of chunks longer than the embedding model reads (would be
truncated; the goal is 0), peak memory, and optionally a second, incremental run.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from ingest import ingest
from rag import Settings, load_settings
from rag._embedding import SentenceTransformerEmbedder
from rag.stores import open_store


def _all_texts(settings: Settings, dimension: int) -> list[str]:
    store = open_store(settings, dimension)
    try:
        texts: list[str] = []
        offset: str | None = None
        while True:
            page, offset = store.scroll(limit=512, offset=offset)
            texts.extend(c.text for c in page)
            if offset is None:
                return texts
    finally:
        store.close()


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--workers", type=int, default=None, help="parser processes")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for embedding")
    ap.add_argument("--rerun", action="store_true", help="also time an incremental re-run")
    ap.add_argument("--home", type=Path, default=None, help="keep the index here")
    ap.add_argument(
        "--privacy",
        choices=("on", "off"),
        default="on",
        help="pseudonymize before chunking (default on, as in production; a key is made in a "
        "temporary folder beside the home)",
    )
    args = ap.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    overrides: dict = {"home": home}
    if args.privacy == "on":
        from rag.privacy import write_key_file

        key_file = Path(tempfile.mkdtemp(prefix="rag-bench-key-")) / "vault.key"
        write_key_file(key_file)
        overrides["privacy"] = {"enabled": True, "key_file": str(key_file)}
    else:
        overrides["privacy"] = {"enabled": False}
    if args.workers is not None:
        overrides["ingest"] = {"workers": args.workers}
    if args.threads is not None:
        overrides["embedding"] = {"threads": args.threads}
    settings = load_settings(**overrides)
    embedder = SentenceTransformerEmbedder(settings.embedding)
    t = time.perf_counter()
    embedder.warm_up()
    load_s = time.perf_counter() - t

    report = ingest([args.folder], settings, embedder=embedder)
    n = report.chunks_written
    stages = report.stage_seconds
    print(f"folder: {args.folder}  files: {report.files_seen}  failed: {report.files_failed}")
    print(f"model load (excluded): {load_s:.1f} s   workers: {settings.ingest.workers}")
    print(f"privacy: {args.privacy}  pseudonymized: {dict(sorted(report.pii_counts.items()))}")
    print(f"chunks: {n}")
    print("stage seconds (parse/chunk run in parser processes, overlapping embedding):")
    # "transform" is the privacy step (detection, vault, rewriting), in the parser processes.
    for stage in ("read", "parse", "transform", "chunk", "embed", "index", "optimize"):
        s = stages.get(stage, 0.0)
        if s < 0.005:
            continue
        rate = f"{n / s:8.1f} chunks/s" if s > 0 else ""
        print(f"  {stage:<9} {s:8.2f} s  {rate}")
    e2e = n / report.wall_seconds
    print(f"end-to-end: {report.wall_seconds:.2f} s  {e2e:.2f} chunks/s")

    texts = _all_texts(settings, embedder.dimension)
    t = time.perf_counter()
    group = settings.ingest.embed_group
    for i in range(0, len(texts), group):
        embedder.embed_passages(texts[i : i + group])
    embed_only_s = time.perf_counter() - t
    embed_only = len(texts) / embed_only_s
    rate = f"{embed_only_s:.2f} s  {embed_only:.2f} chunks/s"
    print(f"embed-only on the same {len(texts)} chunks: {rate}")
    print(f"ratio end-to-end / embed-only: {e2e / embed_only:.3f}")

    limit = embedder.max_tokens
    over = sum(1 for x in texts if embedder.count_tokens(x) > limit)
    mean_tokens = sum(embedder.count_tokens(x) for x in texts) / max(len(texts), 1)
    print(
        f"truncated fraction: {over}/{len(texts)} = {over / max(len(texts), 1):.4f} "
        f"(model reads {limit} tokens; mean chunk {mean_tokens:.0f})"
    )
    own, children = _peak_mb()
    print(f"peak RSS: main {own:.0f} MB, largest parser process {children:.0f} MB")

    if args.rerun:
        again = ingest([args.folder], settings, embedder=embedder)
        print(
            f"re-run: {again.files_unchanged} unchanged, {again.files_ingested} ingested, "
            f"{again.wall_seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
