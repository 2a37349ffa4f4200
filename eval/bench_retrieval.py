"""Retrieval benchmark: retrieve + pack latency on Qdrant Edge at 10k-1M chunks, packing alone.

    .venv/bin/python -m eval.bench_retrieval --points 10000 --queries 50 --pack-runs 20
    .venv/bin/python -m eval.bench_retrieval --points 10000 100000 1000000 --json bench.json
    .venv/bin/python -m eval.bench_retrieval --store-dir /tmp/sr-bench --threads 1  # keep, reuse
    .venv/bin/python -m eval.bench_retrieval --points --pack-hits 150   # packing alone

On a shared or busy machine pass ``--threads 1``: with torch's default of one thread per
core, every OpenMP barrier of the query embedding waits for a descheduled thread, and a
15 ms embedding takes hundreds of ms. The table shows the load average and CPU ms per query.

What is real: the query path end to end (``Retriever.retrieve`` with a ``Principal`` whose
groups make the ACL filter active, then ``ContextPacker.pack`` for mistral-large-2402),
query embedding with all-MiniLM-L6-v2 on the CPU, BM25 query and document vectors, chunk
texts (sentences of the CUAD contracts in ../shared/data when present, else built-in legal
boilerplate; ~100-250 Mistral tokens, adjacent chunks share a sentence as overlapping
chunks do) and their token counts, stored with the chunk as ingestion stores them.
What is synthetic: dense document vectors (random unit vectors; embedding 1M chunks would
take hours on a CPU) and ACLs (1-3 of 50 groups per document, 1 in 10 public; the principal
reads about a fifth of the chunks). Stores are built once per size in batches, optimized
(HNSW) like ingestion does, read once into the page cache as a running server holds it
(``--no-prewarm`` to skip), then queried ``--queries`` times after ``--warmup`` queries.
Packing alone fills a 32K window from fresh candidate chunks each run (cold caches; 200 by
default, as 150 chunks of ~190 tokens fill only ~94% of it) and checks the fast token count
against a full mistral-common encoding on a sample of runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench_store import doc_acl, unit_vectors
from rag import (
    Chunk,
    ContextPacker,
    Hit,
    IndexedChunk,
    MistralTokens,
    Principal,
    Retriever,
    SentenceTransformerEmbedder,
    load_settings,
)
from rag._retrieve import Mode
from rag._sparse import Bm25Encoder
from rag._types import chunk_id_for
from rag.stores._edge import EdgeStore

CONTRACTS = Path(__file__).resolve().parents[2] / "shared/data/qa-cuad-dev/contracts_txt"
MODEL = "mistral-large-2402"
CHUNKS_PER_DOC = 20
MAX_CHUNK_TOKENS = 250
#: Upsert call size: each call pays one fsync, as an ingestion batch does.
BATCH_DOCS = 50
GROUPS = tuple(f"group:team{i}" for i in range(50))
PRINCIPAL = Principal("alice", ("team3", "team17", "team29"))
SECTIONS = ("Definitions", "Term and Termination", "Payment", "Confidentiality",
            "Indemnification", "Governing Law", "Intellectual Property")  # fmt: skip
MODES: tuple[Mode, ...] = ("hybrid", "dense", "sparse")
PARTS = ("total", "cpu", "encode", "search", "rest", "pack")
#: (label, size, mode, statistic, limit ms)
BARS = (
    ("retrieve+pack p50 @100k", 100_000, "hybrid", "p50", 20.0),
    ("retrieve+pack p95 @100k", 100_000, "hybrid", "p95", 50.0),
    ("retrieve+pack p50 @1M", 1_000_000, "hybrid", "p50", 50.0),
)
PACK_BAR_MS = 5.0


# -- text ----------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.;])\s+(?=[A-Z(\"])")


def contract_sentences(folder: Path) -> list[str]:
    """Distinct sentences of the contracts in ``folder`` (read only, nothing is copied)."""
    found: list[str] = []
    for path in sorted(folder.glob("*.txt")):
        text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
        found.extend(_SENTENCE_END.split(text))
    return list(dict.fromkeys(found))


def builtin_sentences() -> list[str]:
    subjects = ("The Supplier", "The Customer", "Each party", "The Licensee", "The Company",
                "The Consultant", "Either party", "The Distributor")  # fmt: skip
    verbs = ("shall deliver", "may terminate", "shall indemnify", "must notify",
             "shall maintain", "may assign", "shall pay for", "shall protect")  # fmt: skip
    objects = ("the products described in Schedule A", "this Agreement", "all invoices",
               "the other party", "any Confidential Information", "adequate insurance",
               "the licensed software", "its rights and obligations")  # fmt: skip
    tails = ("within thirty (30) days of written notice.",
             "in accordance with the laws of the State of New York.",
             "unless otherwise agreed in writing by both parties.",
             "during the term of this Agreement and for two years thereafter.",
             "at its own cost and expense.", "subject to the limitations set out in Section 9.",
             "provided that any breach is cured within fifteen days.",
             "without the prior written consent of the other party.")  # fmt: skip
    return [" ".join(words) for words in product(subjects, verbs, objects, tails)]


class Corpus:
    """Seeded documents of 20 chunks; chunk ``i`` starts with the last sentence of ``i - 1``."""

    def __init__(self, sentences: Sequence[str], seed: int) -> None:
        self.tokens = MistralTokens("v2")
        sizes = [self.tokens.count(s) for s in sentences]
        # Short enough that any chunk can stay under MAX_CHUNK_TOKENS with its overlap.
        keep = [i for i, n in enumerate(sizes) if 8 <= n <= 80]
        self.sentences = [sentences[i] for i in keep]
        self.sizes = [sizes[i] for i in keep]
        self.seed = seed

    def plan(self, doc: int) -> list[list[int]]:
        """Sentence numbers of each chunk of ``doc`` (cheap: no tokenization)."""
        rng = np.random.default_rng([self.seed, doc])
        targets = rng.integers(100, 231, CHUNKS_PER_DOC).tolist()
        draws: Iterator[int] = iter(rng.integers(0, len(self.sentences), 2000).tolist())
        plan: list[list[int]] = []
        for target in targets:
            chunk = [plan[-1][-1]] if plan else []
            size = sum(self.sizes[s] for s in chunk)
            for s in draws:
                if size + self.sizes[s] > MAX_CHUNK_TOKENS:
                    continue
                chunk.append(s)
                size += self.sizes[s]
                if size >= target:
                    break
            plan.append(chunk)
        return plan

    def chunk(self, doc: int, index: int, plan: list[list[int]], acl: tuple[str, ...]) -> Chunk:
        text = " ".join(self.sentences[s] for s in plan[index])
        doc_id = f"doc{doc:08d}"
        return Chunk(
            chunk_id_for(doc_id, index, text),
            doc_id,
            index,
            text,
            f"/data/contracts/contract-{doc:08d}.pdf",
            (index // 3 + 1,),
            SECTIONS[(doc + index // 4) % len(SECTIONS)],
            ("NarrativeText",),
            acl,
            self.tokens.count(text),  # what ingestion stores, so the packer can reuse it
            {"lang": "en"},
            tokenizer=self.tokens.name,
        )

    def document(self, doc: int) -> list[Chunk]:
        plan, acl = self.plan(doc), doc_acl(doc, GROUPS)
        return [self.chunk(doc, i, plan, acl) for i in range(CHUNKS_PER_DOC)]


def questions(count: int, rng: np.random.Generator) -> list[str]:
    """Distinct questions a contract reviewer might ask."""
    templates = (
        "What notice must the {p} give about {b} before terminating the {a}?",
        "Who pays for {b} when the {p} ends the {a} early?",
        "Can the {p} assign its rights in {b} under the {a} without consent?",
        "Which law governs disputes between the {p} and us over {b} in the {a}?",
        "How long does the {p} have to cure a breach involving {b} under the {a}?",
        "What are the obligations of the {p} regarding {b} in the {a}?",
        "Is the liability of the {p} for {b} capped in the {a}?",
        "Does the {a} let the {p} renew its commitments on {b}?",
        "What happens to {b} held by the {p} after the {a} is terminated?",
        "Does the {a} stop the {p} from competing in {b}?",
        "What insurance covering {b} must the {p} keep under the {a}?",
        "How are disagreements with the {p} about {b} resolved under the {a}?",
    )
    agreements = ("distribution agreement", "license agreement", "consulting agreement",
                  "supply agreement", "joint venture agreement", "franchise agreement",
                  "services agreement", "reseller agreement")  # fmt: skip
    topics = ("confidential information", "shipping costs", "intellectual property",
              "audit rights", "marketing expenses", "minimum purchase commitments",
              "royalties", "warranty claims", "source code escrow", "customer data")  # fmt: skip
    parties = ("distributor", "licensee", "consultant", "supplier", "franchisee", "reseller")
    if count > len(templates) * len(agreements) * len(topics) * len(parties):
        raise ValueError(f"cannot make {count} distinct questions")
    out: dict[str, None] = {}
    while len(out) < count:
        template = templates[int(rng.integers(len(templates)))]
        a, b, p = (str(rng.choice(options)) for options in (agreements, topics, parties))
        out[template.format(a=a, b=b, p=p)] = None
    return list(out)


# -- store ---------------------------------------------------------------------------------
def build_store(
    path: Path, points: int, corpus: Corpus, dim: int, bm25: Bm25Encoder
) -> dict[str, float]:
    """Fill a new Edge shard at ``path`` with ``points`` chunks; seconds per phase."""
    begun = time.perf_counter()
    timing = {"generate_s": 0.0, "upsert_s": 0.0, "optimize_s": 0.0}
    docs = -(-points // CHUNKS_PER_DOC)
    with EdgeStore(path, dim) as store:
        for first in range(0, docs, BATCH_DOCS):
            started = time.perf_counter()
            chunks = [c for d in range(first, min(first + BATCH_DOCS, docs))
                      for c in corpus.document(d)][: points - first * CHUNKS_PER_DOC]  # fmt: skip
            dense = unit_vectors(len(chunks), dim, np.random.default_rng([corpus.seed, first]))
            batch = [
                IndexedChunk(c, dense[i], bm25.encode_document(c.text), c.chunk_id, CHUNKS_PER_DOC)
                for i, c in enumerate(chunks)
            ]
            timing["generate_s"] += time.perf_counter() - started
            started = time.perf_counter()
            store.upsert(batch)
            timing["upsert_s"] += time.perf_counter() - started
            if (first // BATCH_DOCS) % 200 == 199:  # a 1M build takes many minutes
                done = min((first + BATCH_DOCS) * CHUNKS_PER_DOC, points)
                print(f"  {done:,} points upserted", flush=True)
        started = time.perf_counter()
        store.optimize()  # as the batch job does after a run: merge segments, build HNSW
        timing["optimize_s"] = time.perf_counter() - started
    timing["total_s"] = time.perf_counter() - begun
    return {name: round(seconds, 2) for name, seconds in timing.items()}


def open_or_build(
    root: Path, points: int, corpus: Corpus, dim: int, bm25: Bm25Encoder, source: str
) -> tuple[Path, dict[str, Any]]:
    """The shard for ``points``: reused from ``root`` if a finished build with the same
    recipe is there (the marker is written last), else built."""
    path = root / f"edge-{points}"
    marker = root / f"edge-{points}.json"
    recipe = {"points": points, "seed": corpus.seed, "dim": dim, "sentences": source,
              "pool": len(corpus.sentences)}  # fmt: skip
    if marker.is_file():
        saved = json.loads(marker.read_text())
        if saved.get("recipe") == recipe:
            timing = saved["timing"]
            timing.setdefault("total_s", round(sum(timing.values()), 2))
            return path, {**timing, "reused": True}
    shutil.rmtree(path, ignore_errors=True)
    timing = build_store(path, points, corpus, dim, bm25)
    marker.write_text(json.dumps({"recipe": recipe, "timing": timing}))
    return path, {**timing, "reused": False}


# -- measuring -----------------------------------------------------------------------------
def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(samples), 3),
        "p95": round(float(np.percentile(samples, 95)), 3),
        "mean": round(statistics.fmean(samples), 3),
    }


def rss_mb() -> dict[str, float]:
    """Resident memory of this process: now, peak since the last reset, and the anonymous
    part now (the rest is the store's memory-mapped files, which the kernel can drop)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {
        "rss_mb": fields.get("VmRSS", 0.0),
        "peak_mb": fields.get("VmHWM", 0.0),
        "anon_mb": fields.get("RssAnon", 0.0),
    }


def reset_peak_rss() -> None:
    # Linux: "5" resets VmHWM to the current RSS, so each store size gets its own peak.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def prewarm(path: Path) -> float:
    """Read every file of the shard once: a long-running server's page cache holds the index
    (1M chunks are ~6.5 GB), and a cold cache would make whichever mode runs first slower."""
    started = time.perf_counter()
    for file in sorted(path.rglob("*")):
        if file.is_file():
            with file.open("rb") as stream:
                while stream.read(1 << 24):
                    pass
    return round(time.perf_counter() - started, 2)


def query_bench(
    retriever: Retriever, packer: ContextPacker, asked: list[str], mode: Mode, k: int, warmup: int
) -> dict[str, Any]:
    for question in asked[:warmup]:
        packer.pack(retriever.retrieve(question, PRINCIPAL, k=k, mode=mode).hits, question)
    parts: dict[str, list[float]] = {n: [] for n in PARTS}
    hits: list[int] = []
    for question in asked[warmup:]:
        cpu = time.process_time()
        started = time.perf_counter()
        found = retriever.retrieve(question, PRINCIPAL, k=k, mode=mode)
        retrieved = time.perf_counter()
        packer.pack(found.hits, question)
        done = time.perf_counter()
        cpu = time.process_time() - cpu
        encode, search = found.timings_ms.get("encode", 0.0), found.timings_ms.get("search", 0.0)
        parts["total"].append((done - started) * 1000)
        # CPU seconds of all this process's threads: less sensitive to other load on the box.
        parts["cpu"].append(cpu * 1000)
        parts["encode"].append(encode)
        parts["search"].append(search)
        # ACL filter, near-duplicate removal, hit conversion: retrieve minus what it timed.
        parts["rest"].append((retrieved - started) * 1000 - encode - search)
        parts["pack"].append((done - retrieved) * 1000)
        hits.append(len(found.hits))
    out: dict[str, Any] = {name: summary(values) for name, values in parts.items()}
    out["queries"] = len(parts["total"])
    out["hits_mean"] = round(statistics.fmean(hits), 2)
    return out


def pack_candidates(
    corpus: Corpus, rng: np.random.Generator, count: int, base: int, neighbours: float
) -> list[Hit]:
    """``count`` fresh chunks, best first; a fraction are neighbours of another candidate
    (so blocks merge and overlaps are cut, as with real retrieval results)."""
    picked: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(picked) < count:
        if picked and rng.random() < neighbours:
            doc, index = picked[int(rng.integers(len(picked)))]
            index += 1 if rng.random() < 0.5 else -1
        else:
            doc, index = base + int(rng.integers(count)), int(rng.integers(CHUNKS_PER_DOC))
        if 0 <= index < CHUNKS_PER_DOC and (doc, index) not in seen:
            seen.add((doc, index))
            picked.append((doc, index))
    plans = {doc: corpus.plan(doc) for doc, _ in picked}
    scores = sorted(rng.random(count).tolist(), reverse=True)
    return [
        Hit(corpus.chunk(doc, index, plans[doc], doc_acl(doc, GROUPS)), score)
        for (doc, index), score in zip(picked, scores, strict=True)
    ]


def pack_bench(
    corpus: Corpus, packer: ContextPacker, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    asked = questions(args.pack_runs + 5, rng)
    times: list[float] = []
    cpu_times: list[float] = []
    fill: list[float] = []
    blocks: list[int] = []
    mismatches = overflows = checked = 0
    for run, question in enumerate(asked):
        # Fresh documents every run, far from the stores' ids: the packer's caches start cold.
        base = 50_000_000 + run * args.pack_hits
        hits = pack_candidates(corpus, rng, args.pack_hits, base, args.pack_neighbours)
        cpu = time.process_time()
        started = time.perf_counter()
        packed = packer.pack(hits, question)
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu) * 1000
        if run < 5:
            continue  # warm-up: imports and the template count
        budget = packed.tokens
        times.append(elapsed)
        cpu_times.append(cpu)
        fill.append(budget.total / (budget.window - budget.answer_reserve))
        blocks.append(len(packed.blocks))
        overflows += budget.total + budget.answer_reserve > budget.window
        if (run - 5) % args.check_every == 0:
            checked += 1
            mismatches += packed.count_exact() != budget.total
    return {
        **summary(times),
        "cpu": summary(cpu_times),
        "runs": len(times),
        "candidates": args.pack_hits,
        "neighbours": args.pack_neighbours,
        "window": packer.window,
        "fill_mean": round(statistics.fmean(fill), 4),
        "fill_min": round(min(fill), 4),
        "blocks_mean": round(statistics.fmean(blocks), 1),
        "exact_checked": checked,
        "exact_mismatches": mismatches,
        "over_window": overflows,
    }


# -- report --------------------------------------------------------------------------------
def verdict(value: float, limit: float) -> str:
    return "PASS" if value <= limit else "FAIL"


def print_report(result: dict[str, Any]) -> None:
    print("\nretrieve + pack, wall ms; cpu = CPU ms of all threads; then p50 of the parts:")
    print("encode = BM25 + MiniLM query embedding, rest = ACL filter + dedup + payloads,")
    print("pack = ContextPacker.pack of the k hits; load = 1-min load average before/after")
    print(
        f"{'points':>9} {'mode':<7} {'p50':>7} {'p95':>7} {'mean':>7} {'cpu':>6} | "
        f"{'encode':>6} {'search':>6} {'rest':>5} {'pack':>5} | {'hits':>4} {'load':>9}"
    )
    for size in result["sizes"]:
        load = "/".join(f"{x:.1f}" for x in size["load_1min"])
        for mode, row in size["modes"].items():
            t, p50 = row["total"], {name: row[name]["p50"] for name in row if name in PARTS}
            print(
                f"{size['points']:>9} {mode:<7} {t['p50']:7.2f} {t['p95']:7.2f} {t['mean']:7.2f} "
                f"{p50['cpu']:6.2f} | {p50['encode']:6.2f} {p50['search']:6.2f} "
                f"{p50['rest']:5.2f} {p50['pack']:5.2f} | {row['hits_mean']:4.1f} {load:>9}"
            )
    print("\nbuild (s) and memory (MB)")
    for size in result["sizes"]:
        b = size["build"]
        reused = " (earlier run)" if b["reused"] else ""
        print(
            f"{size['points']:>9}  generate {b['generate_s']:7.1f}  upsert {b['upsert_s']:7.1f}  "
            f"optimize {b['optimize_s']:7.1f}  total {b['total_s']:7.1f}{reused}  prewarm "
            f"{b['prewarm_s']:5.1f}  "
            f"peak RSS {size['memory']['peak_mb']:6.0f}  after queries RSS "
            f"{size['memory']['rss_mb']:6.0f}, anonymous {size['memory']['anon_mb']:5.0f}"
        )
    pack = result.get("pack")
    if pack:
        print(
            f"\npack alone, {pack['window']}-token window, {pack['candidates']} candidates "
            f"({pack['neighbours']:.0%} adjacent to another), {pack['runs']} runs:\n"
            f"  wall p50 {pack['p50']:.2f} ms  p95 {pack['p95']:.2f} ms  mean {pack['mean']:.2f}"
            f" ms; cpu p50 {pack['cpu']['p50']:.2f} ms  p95 {pack['cpu']['p95']:.2f} ms\n"
            f"  blocks {pack['blocks_mean']}, fill {pack['fill_mean']:.1%} (min "
            f"{pack['fill_min']:.1%}); count_exact() == tokens.total on "
            f"{pack['exact_checked'] - pack['exact_mismatches']}/{pack['exact_checked']} runs; "
            f"total + reserve > window on {pack['over_window']}; peak RSS "
            f"{pack['memory']['peak_mb']:.0f} MB"
        )
    print(f"\npeak RSS of the whole run: {result['peak_rss_mb']:.0f} MB\n\nbars")
    for bar in result["bars"]:
        limit = f"<= {bar['limit']:5.1f} ms"
        print(f"  {bar['bar']:<30} {bar['value']:8.2f} ms  {limit}  {bar['verdict']}")


def bars(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    by_size = {s["points"]: s["modes"] for s in result["sizes"]}
    for label, size, mode, stat, limit in BARS:
        if mode in by_size.get(size, {}):
            value = by_size[size][mode]["total"][stat]
            out.append({"bar": label, "value": value, "limit": limit,
                        "verdict": verdict(value, limit)})  # fmt: skip
    if result.get("pack"):
        value = result["pack"]["p50"]
        out.append({"bar": "pack alone p50 (32K window)", "value": value, "limit": PACK_BAR_MS,
                    "verdict": verdict(value, PACK_BAR_MS)})  # fmt: skip
    return out


# -- main ----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("-k", type=int, default=8, help="hits per question")
    ap.add_argument("--queries", type=int, default=200, help="timed questions per size and mode")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--pack-runs", type=int, default=200, help="0 skips packing alone")
    ap.add_argument("--pack-hits", type=int, default=200, help="candidates per packing run")
    ap.add_argument("--pack-neighbours", type=float, default=0.25, help="adjacent fraction")
    ap.add_argument("--threads", type=int, help="torch threads for query embedding")
    ap.add_argument("--check-every", type=int, default=10, help="count_exact on every Nth run")
    ap.add_argument("--sentences", type=Path, default=CONTRACTS, help="folder of .txt files")
    ap.add_argument("--store-dir", type=Path, help="keep stores here and reuse them")
    ap.add_argument(
        "--no-prewarm",
        dest="prewarm",
        action="store_false",
        help="query with whatever of the store the page cache holds (first mode pays)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    found = contract_sentences(args.sentences) if args.sentences.is_dir() else []
    source = str(args.sentences) if found else "builtin"
    corpus = Corpus(found or builtin_sentences(), args.seed)
    embedding = {"threads": args.threads} if args.threads else {}
    # Nothing is written under home: the stores live in their own directories.
    # Synthetic sentences hold no personal data; pseudonymization is measured elsewhere.
    settings = load_settings(
        home=Path(tempfile.gettempdir()), embedding=embedding, privacy={"enabled": False}
    )
    embedder = SentenceTransformerEmbedder(settings.embedding)
    embedder.warm_up()
    bm25 = Bm25Encoder(settings.sparse)
    packer = ContextPacker(MODEL)
    print(
        f"sentences: {source} ({len(corpus.sentences)} usable); principal groups "
        f"{PRINCIPAL.groups}; k={args.k}; {args.queries} queries after {args.warmup} warm-up"
    )
    rng = np.random.default_rng(args.seed)
    # The same questions at every size and in every mode, so rows compare like for like.
    asked = questions(args.warmup + args.queries, rng)

    result: dict[str, Any] = {"config": {**vars(args), "sentences": source}, "sizes": []}
    result["config"].pop("store_dir")
    result["config"].pop("json")
    root = args.store_dir or Path(tempfile.mkdtemp(prefix="bench-retrieval-", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        for points in args.points:
            reset_peak_rss()
            path, build = open_or_build(root, points, corpus, embedder.dimension, bm25, source)
            how = "reusing the store built" if build["reused"] else "built"
            print(f"{points} points: {how} in {build['total_s']:.1f} s", flush=True)
            build["prewarm_s"] = prewarm(path) if args.prewarm else 0.0
            modes: dict[str, Any] = {}
            load = [os.getloadavg()[0]]  # other work on the machine skews latency: record it
            with EdgeStore(path, embedder.dimension) as store:
                retriever = Retriever(settings, embedder=embedder, store=store)
                for mode in (m for m in MODES if m in args.modes):
                    modes[mode] = query_bench(retriever, packer, asked, mode, args.k, args.warmup)
                    print(f"  {mode}: {modes[mode]['total']}", flush=True)
            load.append(os.getloadavg()[0])
            result["sizes"].append({"points": points, "build": build, "modes": modes,
                                    "memory": rss_mb(), "load_1min": load})  # fmt: skip
            if args.store_dir is None:
                shutil.rmtree(path, ignore_errors=True)  # free the disk before the next size
        if args.pack_runs:
            reset_peak_rss()
            result["pack"] = pack_bench(corpus, packer, args, args.seed + 1)
            result["pack"]["memory"] = rss_mb()
    finally:
        if args.store_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    # Peaks are reset per phase (clear_refs also resets ru_maxrss), so take the largest.
    phases = [s["memory"]["peak_mb"] for s in result["sizes"]] + [rss_mb()["peak_mb"]]
    result["peak_rss_mb"] = max(phases)
    result["bars"] = bars(result)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
