"""Vault benchmark: assign throughput, file size, full scans, reveal latency.

    .venv/bin/python -m eval.bench_vault --n 1000000
    .venv/bin/python -m eval.bench_vault --n 20000 --dir /tmp/vault-bench --keep

Builds a fresh vault of ``--n`` synthetic values (person names, e-mail addresses and
places, one entity type per value) in batches of ``--batch``, as ingestion workers do,
then measures what the privacy layer does with a large vault: stream every id
(``iter_ids``, for the egress guard's dictionary), load every entry (``entries_since(0)``,
what a pseudonymizer does when it starts), look up a batch of known ids (``get``) and
reveal 50 placeholders (``reveal``, one re-identification request). Prints a JSON summary.
HMAC digests of the values are computed outside the timed ``assign`` calls.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.privacy._keys import PrivacyKeys, generate_key, parse_key
from rag.privacy._vault import NewValue, Vault

ENTITIES = ("PERSON", "EMAIL_ADDRESS", "LOCATION")


def synthetic(keys: PrivacyKeys, i: int) -> NewValue:
    entity = ENTITIES[i % len(ENTITIES)]
    if entity == "PERSON":
        original = f"Person{i} Lastname{i * 7919 % 100_003}"
    elif entity == "EMAIL_ADDRESS":
        original = f"user.{i}@example{i % 97}.org"
    else:
        original = f"{i} Harbour Street, Townsville"
    digest = keys.value_digest(original.lower())
    return NewValue(digest[:16], entity, digest.hex(), original)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run(n: int, batch: int, folder: Path, trials: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    keys = PrivacyKeys.from_master(parse_key(generate_key()))
    path = folder / "vault.sqlite"
    vault = Vault(path, keys)
    vault.count()  # create the file outside the timings

    batch_ms: list[float] = []
    digest_s = 0.0
    sample: list[str] = []  # placeholders kept for the reveal trials
    keep_rate = min(1.0, 200 / -(-n // batch))
    for start in range(0, n, batch):
        t0 = time.perf_counter()
        values = [synthetic(keys, i) for i in range(start, min(n, start + batch))]
        t1 = time.perf_counter()
        entries = vault.assign(values)
        batch_ms.append((time.perf_counter() - t1) * 1000)
        digest_s += t1 - t0
        if rng.random() < keep_rate:  # spread the sample over the whole file
            sample.extend(e.placeholder for e in list(entries.values())[:50])
    assign_s = sum(batch_ms) / 1000

    again = [synthetic(keys, rng.randrange(n)) for _ in range(batch)]
    t0 = time.perf_counter()
    vault.assign(again)
    assign_existing_ms = (time.perf_counter() - t0) * 1000

    size_open = file_bytes(path)
    t0 = time.perf_counter()
    streamed = sum(1 for _ in vault.iter_ids())
    iter_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = len(vault.entries_since(0))
    entries_s = time.perf_counter() - t0

    ids = [v.value_id for v in again]
    get_ms, reveal_ms = [], []
    for _ in range(trials):
        wanted = rng.sample(sample, min(50, len(sample)))
        t0 = time.perf_counter()
        revealed = vault.reveal(wanted)
        reveal_ms.append((time.perf_counter() - t0) * 1000)
        assert len(revealed) == len(wanted)
        t0 = time.perf_counter()
        vault.get(ids)
        get_ms.append((time.perf_counter() - t0) * 1000)
    vault.close()

    return {
        "n": n,
        "batch": batch,
        "count": streamed,
        "assign_values_per_s": round(n / assign_s),
        "assign_batch_ms_p50": round(statistics.median(batch_ms), 2),
        "assign_batch_ms_p95": round(percentile(batch_ms, 0.95), 2),
        "assign_existing_batch_ms": round(assign_existing_ms, 2),
        "digest_values_per_s": round(n / digest_s),
        "file_mb_open": round(size_open / 1e6, 1),
        "file_mb_closed": round(file_bytes(path) / 1e6, 1),
        "bytes_per_entry": round(file_bytes(path) / max(n, 1), 1),
        "iter_ids_s": round(iter_s, 2),
        "entries_since_0_s": round(entries_s, 2),
        "entries_loaded": loaded,
        f"get_{batch}_ids_ms_p50": round(statistics.median(get_ms), 2),
        "reveal_50_ms_p50": round(statistics.median(reveal_ms), 3),
        "reveal_50_ms_p95": round(percentile(reveal_ms, 0.95), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries to create")
    parser.add_argument("--batch", type=int, default=1000, help="values per assign call")
    parser.add_argument("--trials", type=int, default=200, help="reveal/get repetitions")
    parser.add_argument("--dir", type=Path, help="folder for the vault (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the vault file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        if (args.dir / "vault.sqlite").exists():
            parser.error(f"{args.dir}/vault.sqlite exists; give an empty folder")
        summary = run(args.n, args.batch, args.dir, args.trials, args.seed)
        if not args.keep:
            for p in args.dir.glob("vault.sqlite*"):
                p.unlink()
    else:
        with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
            summary = run(args.n, args.batch, Path(tmp), args.trials, args.seed)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
