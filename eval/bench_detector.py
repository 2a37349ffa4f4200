"""PII detector benchmark: throughput, hits per type, NER quality, synthetic PII.

    .venv/bin/python -m eval.bench_detector                    # everything, ~4 minutes
    .venv/bin/python -m eval.bench_detector --limit 300        # ~1 minute
    .venv/bin/python -m eval.bench_detector --synthetic 300 --json /tmp/detector.json

1. Throughput (chars/s, model loading excluded, one process) on ``docs-us-gov-reports``:
   the PDFs' text (pypdf) cut into ~1,000-character chunks at paragraph boundaries, the
   size our chunker makes. Runs our detector (NER + patterns), its pattern-only mode, and
   Presidio's default ``AnalyzerEngine`` with the same en_core_web_md model (the
   baseline), with hits per entity type for each (the baseline's over-firing shows there).
2. ``pii-wikigold-dev``: precision / recall / F1 for PERSON, LOCATION, ORGANIZATION at
   token and span level (sentence tokens joined by spaces, one document per text), for
   our detector, for the baseline, and with each NER precision filter turned off (what
   the filter costs in recall and buys in precision).
3. ``--synthetic N``: the labelled documents of ``eval.synthetic_pii`` (five languages),
   scored per entity type by that module.

Data come from ``../shared/data`` (``--shared`` to change); without it the benchmark
says so and exits.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import rag  # noqa: F401  (offline defaults before presidio/tldextract are imported)
from rag._config import PrivacySettings
from rag.privacy._detect import PresidioDetector, Span

REPO = Path(__file__).resolve().parents[1]
WIKIGOLD_TYPES = {"PER": "PERSON", "LOC": "LOCATION", "ORG": "ORGANIZATION"}
NER_TYPES = ("PERSON", "LOCATION", "ORGANIZATION")
CHUNK_CHARS = 1_000
#: (label, functions of rag.privacy._detect patched to say "keep") for the filter study.
FILTERS = {
    "no place-name filter": ("is_place_name",),
    "no common-word filter": ("is_common_phrase",),
    "no NER filter": ("is_place_name", "is_common_phrase"),
}


def _never(*_args: Any) -> bool:
    return False


Predict = Callable[[Sequence[str]], list[list[tuple[int, int, str, float]]]]


# --------------------------------------------------------------------------- data


def gov_chunks(shared: Path, limit: int | None, seed: int = 0) -> list[str]:
    """The reports' text in ~1,000-character chunks cut at paragraph (line) boundaries."""
    from pypdf import PdfReader

    chunks: list[str] = []
    for pdf in sorted((shared / "data/docs-us-gov-reports/files").rglob("*.pdf")):
        text = "\n".join(page.extract_text() or "" for page in PdfReader(pdf).pages)
        current = ""
        for line in (ln for ln in text.splitlines() if ln.strip()):
            if current and len(current) + len(line) + 1 > CHUNK_CHARS:
                chunks.append(current)
                current = ""
            current = f"{current}\n{line}" if current else line
        if current:
            chunks.append(current)
    random.Random(seed).shuffle(chunks)  # a limit then samples every report
    return chunks[:limit] if limit else chunks


def wikigold(shared: Path) -> tuple[list[str], list[list[tuple[int, int, str]]]]:
    """Texts (one per document) and their tokens as (start, end, gold type or "O")."""
    path = shared / "data/pii-wikigold-dev/wikigold.conll.txt"
    texts: list[str] = []
    tokens: list[list[tuple[int, int, str]]] = []
    text, sentence_open = "", False
    toks: list[tuple[int, int, str]] = []
    for line in [*path.read_text(encoding="utf-8").splitlines(), "-DOCSTART- O"]:
        if line.startswith("-DOCSTART-"):
            if toks:
                texts.append(text)
                tokens.append(toks)
            text, toks, sentence_open = "", [], False
        elif not line.strip():
            sentence_open = False
        else:
            word, tag = line.rsplit(" ", 1)
            if text:
                text += " " if sentence_open else "\n"
            sentence_open = True
            gold = WIKIGOLD_TYPES.get(tag[2:], "O") if tag != "O" else "O"
            toks.append((len(text), len(text) + len(word), gold))
            text += word
    return texts, tokens


# --------------------------------------------------------------------------- predictors


def our_predictor(detector: PresidioDetector, method: str = "detect") -> Predict:
    def predict(texts: Sequence[str]) -> list[list[tuple[int, int, str, float]]]:
        found: list[list[Span]] = getattr(detector, method)(texts)
        return [[(s.start, s.end, s.entity, s.score) for s in spans] for spans in found]

    return predict


def presidio_predictor() -> Predict:
    """Presidio's default AnalyzerEngine (default recognizers, threshold 0) on the md model."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from rag._models import spacy_model_path

    model = str(spacy_model_path("en_core_web_md"))
    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=config).create_engine())
    engine.analyze("warm up", language="en")

    def predict(texts: Sequence[str]) -> list[list[tuple[int, int, str, float]]]:
        return [
            [(r.start, r.end, r.entity_type, r.score) for r in engine.analyze(t, language="en")]
            for t in texts
        ]

    return predict


# --------------------------------------------------------------------------- measures


def throughput(predict: Predict, texts: Sequence[str], batch: int = 64) -> dict[str, Any]:
    hits: Counter[str] = Counter()
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        for spans in predict(texts[i : i + batch]):
            hits.update(entity for _, _, entity, _ in spans)
    seconds = time.perf_counter() - started
    chars = sum(map(len, texts))
    return {
        "texts": len(texts),
        "chars": chars,
        "seconds": round(seconds, 2),
        "chars_per_s": round(chars / seconds),
        "hits": dict(hits.most_common()),
    }


def ner_scores(
    texts: Sequence[str], tokens: Sequence[Sequence[tuple[int, int, str]]], predict: Predict
) -> dict[str, dict[str, dict[str, float]]]:
    """Token- and span-level P/R/F1 per NER type; spans compare at token boundaries."""
    counts: dict[str, dict[str, Counter[str]]] = {
        level: {t: Counter() for t in NER_TYPES} for level in ("token", "span")
    }
    for toks, spans in zip(tokens, predict(texts), strict=True):
        predicted = _token_labels(toks, [s for s in spans if s[2] in NER_TYPES])
        gold = [t for _, _, t in toks]
        for g, p in zip(gold, predicted, strict=True):
            for t in NER_TYPES:
                c = counts["token"][t]
                c["tp"] += g == t and p == t
                c["fp"] += g != t and p == t
                c["fn"] += g == t and p != t
        gold_spans, pred_spans = _runs(gold), _runs(predicted)
        for t in NER_TYPES:
            g_t = {s for s in gold_spans if s[2] == t}
            p_t = {s for s in pred_spans if s[2] == t}
            c = counts["span"][t]
            c["tp"] += len(g_t & p_t)
            c["fp"] += len(p_t - g_t)
            c["fn"] += len(g_t - p_t)
    return {
        level: {
            t: _prf(c) for t, c in [*by_type.items(), ("ALL", sum(by_type.values(), Counter()))]
        }
        for level, by_type in counts.items()
    }


def _token_labels(
    toks: Sequence[tuple[int, int, str]], spans: Sequence[tuple[int, int, str, float]]
) -> list[str]:
    # Overlaps resolved as the pseudonymizer does: longest span first, then score.
    labels = ["O"] * len(toks)
    taken = [False] * len(toks)
    for start, end, entity, _ in sorted(spans, key=lambda s: (s[0] - s[1], -s[3])):
        idx = [i for i, (s, e, _) in enumerate(toks) if s < end and start < e]
        if idx and not any(taken[i] for i in idx):
            for i in idx:
                labels[i], taken[i] = entity, True
    return labels


def _runs(labels: Sequence[str]) -> set[tuple[int, int, str]]:
    runs: set[tuple[int, int, str]] = set()
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != "O":
                runs.add((start, i, labels[start]))
            start = i
    return runs


def _prf(c: Counter[str]) -> dict[str, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": round(p, 3),
        "recall": round(r, 3),
        "f1": round(f, 3),
        "gold": c["tp"] + c["fn"],
    }


def synthetic(detector: PresidioDetector, n: int, seed: int) -> dict[str, Any] | None:
    try:
        from eval import synthetic_pii
    except ImportError:
        return None
    docs = synthetic_pii.generate(n, seed)
    predicted = []
    started = time.perf_counter()
    for doc in docs:
        spans = detector.detect([doc.text], language=doc.language)[0]
        predicted.append([(s.start, s.end, s.entity) for s in spans])
    seconds = time.perf_counter() - started
    return {
        "docs": n,
        "seed": seed,
        "chars_per_s": round(sum(len(d.text) for d in docs) / seconds),
        "scores": synthetic_pii.score(docs, predicted),
        "table": synthetic_pii.format_scores(synthetic_pii.score(docs, predicted)),
    }


# --------------------------------------------------------------------------- report


def _print_throughput(rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'throughput (gov-report chunks)':<34}{'texts':>7}{'chars/s':>10}  hits per type")
    for name, row in rows.items():
        hits = ", ".join(f"{k} {v}" for k, v in row["hits"].items())
        print(f"{name:<34}{row['texts']:>7}{row['chars_per_s']:>10}  {hits}")


def _print_ner(rows: dict[str, dict[str, dict[str, dict[str, float]]]]) -> None:
    for level in ("token", "span"):
        print(f"\nwikigold, {level} level:   " + "".join(f"{t:>22}" for t in (*NER_TYPES, "ALL")))
        for name, scores in rows.items():
            cells = "".join(
                f"{'{precision:.2f}/{recall:.2f}/{f1:.2f}'.format(**scores[level][t]):>22}"
                for t in (*NER_TYPES, "ALL")
            )
            print(f"  {name:<24}{cells}")
    print("  (precision/recall/F1)")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="shared data root")
    ap.add_argument("--limit", type=int, default=None, help="gov-report chunks to use (all)")
    ap.add_argument("--no-baseline", action="store_true", help="skip Presidio's default set-up")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N", help="synthetic documents")
    ap.add_argument("--seed", type=int, default=7, help="seed of the synthetic documents")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    if not (args.shared / "data").is_dir():
        print(f"no shared data at {args.shared} (pass --shared DIR); nothing to measure")
        return
    result: dict[str, Any] = {"config": {k: str(v) for k, v in vars(args).items()}}
    settings = PrivacySettings()
    detector = PresidioDetector(settings)
    started = time.perf_counter()
    detector.warm_up()
    result["warm_up_s"] = round(time.perf_counter() - started, 2)
    baseline = None if args.no_baseline else presidio_predictor()

    chunks = gov_chunks(args.shared, args.limit)
    runs: dict[str, dict[str, Any]] = {
        "ours (NER + patterns)": throughput(our_predictor(detector), chunks),
        "ours, pattern-only": throughput(our_predictor(detector, "detect_patterns"), chunks),
    }
    if baseline is not None:
        runs["Presidio default (md model)"] = throughput(baseline, chunks)
    result["throughput"] = runs
    _print_throughput(runs)

    texts, tokens = wikigold(args.shared)
    ner: dict[str, Any] = {"ours": ner_scores(texts, tokens, our_predictor(detector))}
    for name, functions in FILTERS.items():
        with ExitStack() as stack:
            for fn in functions:
                stack.enter_context(mock.patch(f"rag.privacy._detect.{fn}", _never))
            ner[f"ours, {name}"] = ner_scores(texts, tokens, our_predictor(detector))
    if baseline is not None:
        ner["Presidio default"] = ner_scores(texts, tokens, baseline)
    result["wikigold"] = ner
    _print_ner(ner)

    if args.synthetic:
        syn = synthetic(detector, args.synthetic, args.seed)
        if syn is None:
            print("\neval.synthetic_pii is not available; synthetic section skipped")
        else:
            print(
                f"\nsynthetic PII ({syn['docs']} docs, seed {syn['seed']}, "
                f"{syn['chars_per_s']} chars/s):\n{syn.pop('table')}"
            )
            result["synthetic"] = syn
    print(f"\nmodel load (excluded): {result['warm_up_s']} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
