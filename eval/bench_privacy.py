"""The privacy layer as a system: recall with and without what surrounds the NER model,
pseudonymization + vault overhead per chunk, and the egress guard against a large vault.

    .venv/bin/python -m eval.bench_privacy                       # everything, ../shared data
    .venv/bin/python -m eval.bench_privacy --parts recall --synthetic 300
    .venv/bin/python -m eval.bench_privacy --parts guard --guard-entries 1000000

- ``recall``: PERSON (and per-type) recall of the detector alone versus the pseudonymizer
  (detector + vault dictionary of values found in earlier documents + name-part aliases +
  batch linking), documents processed in order with a fresh vault, on the synthetic
  documents of ``eval.synthetic_pii`` and on ``pii-wikigold-dev`` (token level).
- ``overhead``: on ``docs-us-gov-reports`` chunks, seconds per chunk of detection alone and
  of the whole pseudonymization (detection, normalisation, keyed ids, vault writes,
  dictionary matching, rewriting); the difference is what the system adds.
- ``guard``: a vault with N entries (random values, ``--guard-entries``), the guard's load
  of the N ids, and its scan of a ~32K-token request body (pseudonymized report text).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import string
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.bench_detector import gov_chunks, ner_scores, wikigold
from rag import Settings, load_settings
from rag.privacy import (
    EgressGuard,
    NewValue,
    PresidioDetector,
    PrivacyKeys,
    Pseudonymizer,
    Vault,
    normalize,
    write_key_file,
)
from rag.privacy._text import prefixes_of, scan

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"


def fresh_settings(tmp: Path, **privacy: Any) -> Settings:
    key = tmp / "key" / "vault.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    write_key_file(key)
    return load_settings(
        home=tmp / "home", privacy={"enabled": True, "key_file": str(key), **privacy}
    )


def _system_predict(pz: Pseudonymizer, texts: Sequence[str], languages: Sequence[str]) -> list[Any]:
    out = []
    for text, language in zip(texts, languages, strict=True):
        result = pz.pseudonymize([text], language=language)[0]
        out.append([(r.start, r.end, r.entity, 1.0) for r in result.replacements])
    return out


def recall(shared: Path, n_synthetic: int, seed: int) -> dict[str, Any]:
    from eval import synthetic_pii

    results: dict[str, Any] = {}
    docs = synthetic_pii.generate(n_synthetic, seed)
    langs = [d.language for d in docs]
    with tempfile.TemporaryDirectory() as tmp:
        settings = fresh_settings(Path(tmp), languages=["en", "fr", "de", "es", "it"])
        pz = Pseudonymizer.open(settings)
        detector = pz.detector
        alone = [
            [(s.start, s.end, s.entity) for s in detector.detect([d.text], d.language)[0]]
            for d in docs
        ]
        system = [
            [s[:3] for s in spans] for spans in _system_predict(pz, [d.text for d in docs], langs)
        ]
        results["synthetic"] = {
            "docs": len(docs),
            "detector_alone": synthetic_pii.score(docs, alone),
            "system": synthetic_pii.score(docs, system),
        }
        pz.vault.close()
    texts, tokens = wikigold(shared)
    if texts:
        with tempfile.TemporaryDirectory() as tmp:
            pz = Pseudonymizer.open(fresh_settings(Path(tmp)))
            det = pz.detector

            def alone_predict(ts: Sequence[str]) -> list[Any]:
                return [
                    [(s.start, s.end, s.entity, s.score) for s in spans] for spans in det.detect(ts)
                ]

            results["wikigold"] = {
                "detector_alone": ner_scores(texts, tokens, alone_predict),
                "system": ner_scores(
                    texts, tokens, lambda ts: _system_predict(pz, ts, ["en"] * len(ts))
                ),
            }
            pz.vault.close()
    return results


def overhead(shared: Path, limit: int) -> dict[str, Any]:
    chunks = gov_chunks(shared, limit)
    if not chunks:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        pz = Pseudonymizer.open(fresh_settings(Path(tmp)))
        pz.detector.warm_up()
        batch = 32
        t = time.perf_counter()
        for i in range(0, len(chunks), batch):
            pz.detector.detect(chunks[i : i + batch])
        detect_s = time.perf_counter() - t
        t = time.perf_counter()
        replaced = 0
        for i in range(0, len(chunks), batch):
            replaced += sum(len(r.replacements) for r in pz.pseudonymize(chunks[i : i + batch]))
        total_s = time.perf_counter() - t
        t = time.perf_counter()
        for c in chunks:
            pz.replace_known(c)
        known_s = time.perf_counter() - t
        chars = sum(map(len, chunks))
        entries = pz.vault.count()
        pz.vault.close()
    return {
        "chunks": len(chunks),
        "chars": chars,
        "detect_ms_per_chunk": round(1000 * detect_s / len(chunks), 2),
        "pseudonymize_ms_per_chunk": round(1000 * total_s / len(chunks), 2),
        "overhead_ms_per_chunk": round(1000 * (total_s - detect_s) / len(chunks), 2),
        "dictionary_pass_ms_per_chunk": round(1000 * known_s / len(chunks), 2),
        "pseudonymize_chars_per_s": round(chars / total_s),
        "replacements": replaced,
        "vault_entries": entries,
    }


def _random_values(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    return [
        " ".join(
            "".join(rng.choice(letters) for _ in range(rng.randint(4, 10)))
            for _ in range(rng.randint(1, 3))
        ).title()
        for _ in range(n)
    ]


def guard(shared: Path, entries: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = fresh_settings(Path(tmp), ner="none")
        keys = PrivacyKeys.from_settings(settings)
        vault = Vault.open(settings, keys)
        t = time.perf_counter()
        values = _random_values(entries, 7)
        for i in range(0, entries, 10_000):
            batch, prefixes = [], []
            for v in values[i : i + 10_000]:
                digest = keys.value_digest(normalize(v))
                batch.append(NewValue(digest[:16], "PERSON", digest.hex(), v))
                prefixes += [keys.value_digest(p)[:16] for p in prefixes_of(normalize(v))]
            vault.add_prefixes(prefixes)
            vault.assign(batch)
        build_s = time.perf_counter() - t
        pz = Pseudonymizer(settings.privacy, keys, vault, PresidioDetector(settings.privacy))
        g = EgressGuard(settings, pz, None)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        loaded = g.refresh()
        load_s = time.perf_counter() - t
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        chunks = gov_chunks(shared, 130) or ["The committee reviewed the report. " * 30] * 130
        body_text = "\n\n".join(chunks)  # ~130k characters, about 32K Mistral tokens
        body = {"model": "mistral-large-2402", "messages": [{"role": "user", "content": body_text}]}
        g.scan_text("warm up")
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            g.scan_text(body_text)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        found_dict = sum(
            1
            for *_, key in scan(body_text, lambda n: keys.value_digest(n)[:16], g._known.prefixes)
            if key in g._known.ids
        )
        dict_s = time.perf_counter() - t
        planted = values[entries // 2]
        blocked = bool(g.scan_text(body_text + f" Contact {planted.upper()} today."))
        vault.close()
        size_mb = os.path.getsize(settings.vault_file) / 1e6
    return {
        "vault_entries": entries,
        "vault_build_s": round(build_s, 1),
        "vault_file_mb": round(size_mb, 1),
        "ids_loaded": loaded,
        "ids_load_s": round(load_s, 2),
        "ids_rss_mb": round((rss1 - rss0) / 1024),
        "body_chars": len(json.dumps(body)),
        "scan_s_p50": round(statistics.median(times), 3),
        "scan_s_max": round(max(times), 3),
        "dictionary_part_s": round(dict_s, 3),
        "false_vault_hits_in_body": found_dict,
        "planted_vault_value_caught": blocked,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--parts", nargs="+", default=["recall", "overhead", "guard"])
    ap.add_argument("--synthetic", type=int, default=300, help="synthetic documents")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chunks", type=int, default=400, help="gov-report chunks for overhead")
    ap.add_argument("--guard-entries", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.shared / "data").is_dir():
        print(f"no shared data at {args.shared}: recall and overhead need it (give --shared)")
    out: dict[str, Any] = {}
    if "recall" in args.parts:
        out["recall"] = recall(args.shared, args.synthetic, args.seed)
    if "overhead" in args.parts and (args.shared / "data").is_dir():
        out["overhead"] = overhead(args.shared, args.chunks)
    if "guard" in args.parts:
        out["guard"] = guard(args.shared, args.guard_entries, args.repeats)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
