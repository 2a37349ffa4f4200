"""Passage-level retrieval quality on the dev QA sets: dense vs BM25 vs hybrid.

    .venv/bin/python -m eval.eval_retrieval                          # all sets, all modes
    .venv/bin/python -m eval.eval_retrieval --datasets cuad --limit 50
    .venv/bin/python -m eval.eval_retrieval --work-dir /tmp/rag-eval --json /tmp/retrieval.json
    .venv/bin/python -m eval.eval_retrieval --work-dir /tmp/rag-eval --datasets piaf \\
        --foreign-dense-weight 0.5 --prefetch 200                   # reuses the cached index

Each set's corpus goes through our own pipeline pieces: every passage becomes a parsed
document of one ``NarrativeText`` element, cut by ``ingest``'s Chunker (Mistral-token and
embedder-window limits, so a long passage may become several chunks), embedded, BM25-encoded
and upserted into a Qdrant Edge index under ``--work-dir`` (cached by corpus and pipeline
fingerprint: re-runs with other retrieval settings do not re-embed). Questions go through
``rag.Retriever``; hit chunks map back to passages (first occurrence wins) and we report,
over the top 20 distinct passages:

- recall@k: the fraction of a question's gold passages among the first k, averaged;
- MRR: 1 / rank of the first gold passage (0 if none in the top 20), averaged.

Sets: ``cuad`` (open retrieval over 30 contracts; yes/no questions without a gold clause
are excluded), ``tatqa`` (retrieval scoped to the question's ``doc_id`` with a payload
filter, as its README asks), ``piaf`` (French; BM25 analysed as French). The hybrid bar per
set: hybrid recall@10 >= max(dense, BM25) recall@10 and hybrid MRR >= 0.95 x the better
single mode's MRR.

With ``--privacy`` the same run is made with the privacy layer on: each document's passages
are pseudonymized together (real detector, vault and key under ``--work-dir``) before
chunking, and every question is pseudonymized by the retriever's query step with the same
vault, as ``rag ingest``/``rag search`` do. Run it with and without the flag and compare.

Hybrid numbers can move a little between runs (about +-0.005 MRR): Qdrant's RRF does not
break ties between equal fused scores, and with equal weights ties are common (dense rank
i + BM25 rank j versus j + i). Explicit, slightly unequal ``--fusion-weights`` (e.g.
``0.999 1``) make the order deterministic.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ingest._chunk import Chunker
from ingest._pipeline import pipeline_fingerprint
from rag import (
    PUBLIC,
    Bm25Encoder,
    Chunk,
    Element,
    IndexedChunk,
    ParsedDocument,
    Retriever,
    SentenceTransformerEmbedder,
    Settings,
    load_settings,
)
from rag._retrieve import Mode, fusion_weights_for
from rag.stores._edge import EdgeStore

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODES: tuple[Mode, ...] = ("dense", "sparse", "hybrid")
CUTOFFS = (5, 10, 20)
DEPTH = 20  # passages ranked per question; MRR is computed over these
#: Chunk metadata key (payload ``meta.passage_id``) naming the passage a chunk came from.
PASSAGE_KEY = "passage_id"
#: Bump when the way this script builds an index changes, so stale caches are rebuilt.
INDEX_FORMAT = 1
_DONE_MARKER = "eval-index.json"  # written last: an index without it is incomplete
_MRR_TOLERANCE = 0.95


@dataclass(frozen=True)
class DatasetSpec:
    folder: str
    #: BM25 analysis language of the corpus (``sparse.language``).
    language: str
    #: Retrieval restricted to the question's ``doc_id`` (TAT-QA questions are per context).
    scoped: bool


DATASETS = {
    "cuad": DatasetSpec("qa-cuad-dev", "english", scoped=False),
    "tatqa": DatasetSpec("qa-tatqa-dev", "english", scoped=True),
    "piaf": DatasetSpec("qa-piaf-fr-dev", "french", scoped=False),
}


class Passage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    text: str
    doc_id: str


class Question(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    question: str
    gold_ids: tuple[str, ...]
    doc_id: str


@dataclass(frozen=True)
class Scores:
    questions: int
    recall: dict[int, float]
    mrr: float
    seconds: float


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# -- index -------------------------------------------------------------------------------
def passage_chunks(passages: Sequence[Passage], chunker: Chunker) -> list[Chunk]:
    chunks: list[Chunk] = []
    for p in passages:
        doc = ParsedDocument(Path(p.id), (Element(p.text, "NarrativeText"),), {PASSAGE_KEY: p.id})
        # Chunked under the passage id so chunk ids are unique per passage, then filed under
        # the passage's document so a doc_id filter scopes retrieval as for real documents.
        for chunk in chunker.chunk(doc, p.id, (PUBLIC,), source=p.doc_id):
            chunks.append(replace(chunk, doc_id=p.doc_id))
    return chunks


def pseudonymized_passages(
    passages: Sequence[Passage], pseudonymizer: Any, language: str
) -> tuple[list[Passage], Counter[str]]:
    """Passages with personal data replaced, one document's passages per batch (values
    found in one passage are replaced in all of them), and the counts by entity type."""
    by_doc: dict[str, list[int]] = {}
    for i, p in enumerate(passages):
        by_doc.setdefault(p.doc_id, []).append(i)
    out = list(passages)
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    done_chars = 0
    for n, indexes in enumerate(by_doc.values(), 1):
        texts = [passages[i].text for i in indexes]
        results = pseudonymizer.pseudonymize(texts, language=language)
        for i, result in zip(indexes, results, strict=True):
            out[i] = passages[i].model_copy(update={"text": result.text})
            counts.update(result.counts)
        done_chars += sum(len(t) for t in texts)
        if n % 10 == 0 or n == len(by_doc):
            rate = done_chars / (time.perf_counter() - started)
            print(
                f"  pseudonymized {n}/{len(by_doc)} documents ({rate:,.0f} chars/s)",
                file=sys.stderr,
            )
    return out, counts


def privacy_settings(work_dir: Path, name: str) -> dict[str, Any]:
    """Privacy on, with a key file kept beside (not inside) the eval home."""
    from rag.privacy import write_key_file

    key_file = work_dir / "eval-privacy.key"
    if not key_file.is_file():
        write_key_file(key_file)
    return {
        "enabled": True,
        "key_file": str(key_file),
        "vault_path": str(work_dir / f"{name}-vault.sqlite"),
    }


def index_key(corpus: Path, settings: Settings, embedder: SentenceTransformerEmbedder) -> str:
    h = hashlib.sha256(corpus.read_bytes())
    h.update(pipeline_fingerprint(settings, embedder, ()).encode())
    if settings.privacy.enabled:
        h.update(settings.privacy.model_dump_json(exclude={"key"}).encode())
        h.update(Path(str(settings.privacy.key_file)).read_bytes())
    h.update(f"eval-index-{INDEX_FORMAT}".encode())
    return h.hexdigest()[:16]


def build_index(
    path: Path,
    passages: Sequence[Passage],
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    expand: Any = None,
) -> int:
    """Chunk, embed, BM25-encode and store the passages; returns the number of chunks."""
    chunker = Chunker.for_settings(settings, embedder)
    bm25 = Bm25Encoder(settings.sparse, expand=expand)
    chunks = passage_chunks(passages, chunker)
    per_passage = Counter(c.metadata[PASSAGE_KEY] for c in chunks)
    group = settings.ingest.embed_group
    started = time.perf_counter()
    # One flush at close instead of one per batch: a crash only costs a rebuild here.
    store = EdgeStore(path, embedder.dimension, flush_writes=False)
    try:
        for i in range(0, len(chunks), group):
            batch = chunks[i : i + group]
            vectors = embedder.embed_passages([c.text for c in batch])
            store.upsert(
                [
                    IndexedChunk(
                        chunk=c,
                        dense=v.tolist(),
                        sparse=bm25.encode_document(c.text),
                        content_hash="eval",
                        chunk_count=per_passage[c.metadata[PASSAGE_KEY]],
                    )
                    for c, v in zip(batch, vectors, strict=True)
                ]
            )
            done = min(i + group, len(chunks))
            rate = done / (time.perf_counter() - started)
            print(f"  embedded {done}/{len(chunks)} chunks ({rate:.0f}/s)", file=sys.stderr)
        store.optimize()
    finally:
        store.close()
    return len(chunks)


def open_index(
    work_dir: Path,
    name: str,
    corpus: Path,
    passages: Sequence[Passage],
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    expand: Any = None,
) -> tuple[EdgeStore, int]:
    """The cached index of a set, built first if missing or incomplete."""
    path = work_dir / f"{name}-{index_key(corpus, settings, embedder)}"
    marker = path / _DONE_MARKER
    if not marker.is_file():
        if path.exists():
            shutil.rmtree(path)  # a build that did not finish
        print(f"{name}: indexing {len(passages)} passages into {path}", file=sys.stderr)
        chunks = build_index(path, passages, settings, embedder, expand)
        marker.write_text(json.dumps({"passages": len(passages), "chunks": chunks}))
    else:
        print(f"{name}: reusing index {path}", file=sys.stderr)
    chunks = int(json.loads(marker.read_text())["chunks"])
    return EdgeStore(path, embedder.dimension), chunks


# -- metrics -----------------------------------------------------------------------------
def ranked_passages(chunks: Sequence[Chunk], depth: int = DEPTH) -> list[str]:
    """Passage ids in order of their best chunk, at most ``depth`` of them."""
    return list(dict.fromkeys(c.metadata[PASSAGE_KEY] for c in chunks))[:depth]


def score_ranking(ranked: Sequence[str], gold: set[str]) -> tuple[dict[int, float], float]:
    recall = {k: len(gold.intersection(ranked[:k])) / len(gold) for k in CUTOFFS}
    first = next((i for i, pid in enumerate(ranked, 1) if pid in gold), None)
    return recall, (1.0 / first if first else 0.0)


def evaluate(
    retriever: Retriever,
    questions: Sequence[Question],
    mode: Mode,
    *,
    scoped: bool,
    k_chunks: int,
) -> Scores:
    started = time.perf_counter()
    recall_sum = dict.fromkeys(CUTOFFS, 0.0)
    mrr_sum = 0.0
    for q in questions:
        result = retriever.retrieve(
            q.question,
            None,
            filters={"doc_id": q.doc_id} if scoped else None,
            k=k_chunks,
            mode=mode,
        )
        recall, rr = score_ranking(ranked_passages([h.chunk for h in result.hits]), set(q.gold_ids))
        for k in CUTOFFS:
            recall_sum[k] += recall[k]
        mrr_sum += rr
    n = max(len(questions), 1)
    return Scores(
        questions=len(questions),
        recall={k: v / n for k, v in recall_sum.items()},
        mrr=mrr_sum / n,
        seconds=time.perf_counter() - started,
    )


def hybrid_bar(scores: dict[str, Scores]) -> dict[str, Any] | None:
    """Hybrid must match the better single mode on recall@10 and keep 95% of its MRR."""
    if not all(m in scores for m in MODES):
        return None
    best_recall = max(scores["dense"].recall[10], scores["sparse"].recall[10])
    best_mrr = max(scores["dense"].mrr, scores["sparse"].mrr)
    hybrid = scores["hybrid"]
    # A tiny tolerance so equal recalls summed in different orders still compare equal.
    recall_ok = hybrid.recall[10] >= best_recall - 1e-9
    mrr_ok = hybrid.mrr >= _MRR_TOLERANCE * best_mrr - 1e-9
    return {
        "hybrid_recall10": hybrid.recall[10],
        "best_single_recall10": best_recall,
        "hybrid_mrr": hybrid.mrr,
        "mrr_floor": _MRR_TOLERANCE * best_mrr,
        "recall_ok": recall_ok,
        "mrr_ok": mrr_ok,
        "passed": recall_ok and mrr_ok,
    }


# -- running -----------------------------------------------------------------------------
def load_questions(folder: Path, limit: int | None) -> tuple[list[Question], int]:
    """Questions with gold passages (first ``limit``) and how many had none (excluded)."""
    all_questions = [Question(**row) for row in read_jsonl(folder / "questions.jsonl.gz")]
    usable = [q for q in all_questions if q.gold_ids]
    excluded = len(all_questions) - len(usable)
    return (usable[:limit] if limit else usable), excluded


def dataset_settings(spec: DatasetSpec, args: argparse.Namespace, home: Path) -> Settings:
    retrieval: dict[str, Any] = {}
    if args.prefetch is not None:
        retrieval["prefetch"] = args.prefetch
    if args.foreign_dense_weight is not None:
        retrieval["foreign_dense_weight"] = args.foreign_dense_weight
    if args.fusion_weights is not None:
        retrieval["fusion_weights"] = tuple(args.fusion_weights)
    privacy: dict[str, Any] = {"enabled": False}
    if args.privacy:
        privacy = privacy_settings(home, spec.folder)
        for suffix in ("", "-wal", "-shm"):  # a fresh vault per run
            Path(str(privacy["vault_path"]) + suffix).unlink(missing_ok=True)
    return load_settings(
        home=home / ("privacy-home" if args.privacy else "home"),
        sparse={"language": spec.language},
        retrieval=retrieval,
        privacy=privacy,
    )


def run_dataset(
    name: str, args: argparse.Namespace, work_dir: Path, embedder: SentenceTransformerEmbedder
) -> dict[str, Any] | None:
    spec = DATASETS[name]
    folder = args.data_dir / spec.folder
    corpus = folder / "corpus.jsonl.gz"
    if not corpus.is_file() or not (folder / "questions.jsonl.gz").is_file():
        print(f"{name}: skipped, {folder} is missing (give --data-dir)", file=sys.stderr)
        return None
    settings = dataset_settings(spec, args, work_dir)
    passages = [Passage(**row) for row in read_jsonl(corpus)]
    questions, excluded = load_questions(folder, args.limit)
    if excluded:
        print(f"{name}: excluded {excluded} questions without gold passages", file=sys.stderr)
    query_steps: tuple[Any, ...] = ()
    expand = None
    pii: dict[str, Any] = {}
    if args.privacy:
        from rag.privacy import Pseudonymizer

        pseudonymizer = Pseudonymizer.open(settings)
        language = "fr" if spec.language == "french" else "en"
        # Never cached: what is detected depends on the detector's code and on the vault,
        # so each privacy run starts from an empty vault and builds its own index.
        path = work_dir / f"{name}-{index_key(corpus, settings, embedder)}"
        if path.exists():
            shutil.rmtree(path)
        passages, counts = pseudonymized_passages(passages, pseudonymizer, language)
        pii["corpus_counts"] = dict(counts)
        query_steps = (pseudonymizer.query_step(),)
        expand = pseudonymizer.search_terms
    store, chunks = open_index(work_dir, name, corpus, passages, settings, embedder, expand)
    retriever = Retriever(settings, embedder=embedder, store=store, query_steps=query_steps)
    scores: dict[str, Scores] = {}
    try:
        for mode in args.modes:
            scores[mode] = evaluate(
                retriever, questions, mode, scoped=spec.scoped, k_chunks=args.k_chunks
            )
            print(f"{name}: {mode} done in {scores[mode].seconds:.0f}s", file=sys.stderr)
    finally:
        store.close()
    return {
        "passages": len(passages),
        "chunks": chunks,
        "questions": len(questions),
        "excluded_without_gold": excluded,
        "scoped_to_doc_id": spec.scoped,
        "bm25_language": spec.language,
        "fusion_weights": fusion_weights_for(settings),
        "prefetch": settings.retrieval.prefetch,
        "modes": {m: asdict(s) for m, s in scores.items()},
        "bar": hybrid_bar(scores),
        "privacy": args.privacy,
        **({"pii": pii} if pii else {}),
    }


def print_report(results: dict[str, dict[str, Any]]) -> None:
    header = f"{'dataset':<8} {'mode':<7} {'n':>5} {'R@5':>6} {'R@10':>6} {'R@20':>6} {'MRR':>6}"
    print(header)
    print("-" * len(header))
    for name, res in results.items():
        for mode, s in res["modes"].items():
            r = s["recall"]
            print(
                f"{name:<8} {mode:<7} {s['questions']:>5} {r[5]:>6.3f} {r[10]:>6.3f} "
                f"{r[20]:>6.3f} {s['mrr']:>6.3f}"
            )
    print()
    for name, res in results.items():
        note = f"chunks={res['chunks']} passages={res['passages']}"
        note += f" excluded={res['excluded_without_gold']} fusion_weights={res['fusion_weights']}"
        bar = res["bar"]
        if bar is None:
            print(f"{name}: hybrid bar n/a (needs all three modes); {note}")
            continue
        verdict = "PASS" if bar["passed"] else "FAIL"
        print(
            f"{name}: hybrid bar {verdict}: R@10 {bar['hybrid_recall10']:.3f} vs best single "
            f"{bar['best_single_recall10']:.3f} ({'ok' if bar['recall_ok'] else 'low'}); "
            f"MRR {bar['hybrid_mrr']:.3f} vs floor {bar['mrr_floor']:.3f} "
            f"({'ok' if bar['mrr_ok'] else 'low'}); {note}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--limit", type=int, default=None, help="first N questions per set")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder of the QA sets")
    ap.add_argument("--work-dir", type=Path, default=None, help="index cache (default: temp)")
    ap.add_argument("--k-chunks", type=int, default=40, help="chunks retrieved per question")
    ap.add_argument("--prefetch", type=int, default=None, help="retrieval.prefetch override")
    ap.add_argument("--foreign-dense-weight", type=float, default=None, help="retrieval override")
    ap.add_argument(
        "--privacy",
        action="store_true",
        help="pseudonymize corpus and questions first (the privacy layer on)",
    )
    ap.add_argument(
        "--fusion-weights",
        type=float,
        nargs=2,
        default=None,
        metavar=("DENSE", "BM25"),
        help="retrieval.fusion_weights override (replaces the language-based choice)",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"no QA data at {args.data_dir}; nothing to evaluate (give --data-dir)")
        return 0
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        work_dir = (args.work_dir or Path(tmp)).expanduser().resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        # The model reads the same in every set; only BM25's language changes per set.
        embedder = SentenceTransformerEmbedder(load_settings(home=work_dir).embedding)
        results: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(args.datasets):
            res = run_dataset(name, args, work_dir, embedder)
            if res is not None:
                results[name] = res
    if not results:
        return 0
    print_report(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    bars = [r["bar"] for r in results.values() if r["bar"] is not None]
    return 0 if all(b["passed"] for b in bars) else 1


if __name__ == "__main__":
    raise SystemExit(main())
