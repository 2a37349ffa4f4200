"""Parse every file under a folder and print how many parsed and why the others failed.

    python eval/parse_survey.py FOLDER [--max-mb 100] [--verbose]

Prints counts only (never document text): parsed / failed by reason, per extension, and the
total time. ``--verbose`` adds one line per file with its outcome and seconds.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from pathlib import Path

from ingest._parse import configure_unstructured, parse_file
from rag._config import ParseSettings
from rag._errors import ParseError


def survey(
    folder: Path, settings: ParseSettings, max_bytes: int, verbose: bool = False
) -> tuple[Counter[str], dict[str, Counter[str]], float]:
    """Return (outcome counts, outcome counts per extension, seconds)."""
    configure_unstructured(settings)
    totals: Counter[str] = Counter()
    per_ext: dict[str, Counter[str]] = defaultdict(Counter)
    start = time.perf_counter()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        began = time.perf_counter()
        try:
            doc = parse_file(path, settings, max_bytes=max_bytes)
            outcome = "parsed"
            note = f"{len(doc.elements)} elements"
        except ParseError as exc:
            outcome = f"failed:{exc.reason}"
            note = exc.detail
        totals[outcome] += 1
        per_ext[path.suffix.lower() or "(none)"][outcome] += 1
        if verbose:
            seconds = time.perf_counter() - began
            print(f"{seconds:7.2f}s  {outcome:28} {path.relative_to(folder)}  ({note})")
    return totals, per_ext, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--max-mb", type=float, default=100.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    settings = ParseSettings()
    totals, per_ext, seconds = survey(
        args.folder, settings, int(args.max_mb * 1024 * 1024), args.verbose
    )
    files = sum(totals.values())
    print(
        f"\n{files} files in {seconds:.1f} s: {totals['parsed']} parsed, "
        f"{files - totals['parsed']} failed"
    )
    for outcome, count in sorted(totals.items()):
        print(f"  {outcome:28} {count:5}")
    print("\nper extension:")
    for ext in sorted(per_ext):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(per_ext[ext].items()))
        print(f"  {ext:8} {counts}")


if __name__ == "__main__":
    main()
