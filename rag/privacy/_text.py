"""Value normalisation and exact matching of known values in any text.

A value is identified by a keyed hash of its *normalised* form (NFKC, case-folded words
joined by single spaces), so "MARGARET  Thornbury" in a question and "Margaret Thornbury"
in a contract are the same value. Matching known values in text hashes every word n-gram
of the text with the same key and looks it up in a dict of value ids: the cost grows
with the text, not with the number of known values, and the dictionary holds 16-byte
ids, never plaintext.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass

from rag._sparse import PLACEHOLDER  # noqa: F401  (re-exported: one definition, BM25's)

#: A word: letters/digits, with inner joiners so e-mails, "O'Brien", "Jean-Baptiste",
#: "7946-0958" and "john.smith@example.com" are one word each.
WORD = re.compile(r"\w+(?:['’.@+&\-]\w+)*")

_POSSESSIVE = re.compile(r"['’]s$")

#: Longest value (in words) looked up in text; longer values are still replaced where a
#: recognizer finds them, only not by dictionary.
MAX_WORDS = 12

#: Titles that precede a name and are not part of it (compared case-folded, no dot).
HONORIFICS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "lord",
        "lady",
        "rev",
        "fr",
        "sr",
        "sra",
        "srta",
        "sig",
        "sigra",
        "dott",
        "dssa",
        "m",
        "mme",
        "mlle",
        "me",
        "pr",
        "herr",
        "frau",
        "hr",
        "fr",
        "dipl",
        "ing",
        "mag",
    ]
)


def normalize(value: str) -> str:
    """The canonical form of a value: NFKC, case-folded words joined by one space."""
    return " ".join(w.norm for w in words(value))


@dataclass(frozen=True)
class Word:
    start: int
    end: int
    norm: str


def words(text: str) -> list[Word]:
    # NFKC can change lengths; offsets must index the original text, so each word is
    # normalised on its own.
    return [
        Word(m.start(), m.end(), unicodedata.normalize("NFKC", m.group()).casefold())
        for m in WORD.finditer(text)
    ]


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop surrounding punctuation, leading titles and a trailing possessive from a span."""
    inner = list(WORD.finditer(text, start, end))
    if not inner:
        return start, start
    while len(inner) > 1 and inner[0].group().casefold().rstrip(".") in HONORIFICS:
        inner.pop(0)
    s, e = inner[0].start(), inner[-1].end()
    m = _POSSESSIVE.search(text, s, e)
    if m and m.start() > s:
        e = m.start()
    return s, e


def scan(
    text: str, digest: Callable[[str], bytes], prefixes: Container[bytes]
) -> Iterator[tuple[int, int, str, bytes]]:
    """(start, end, normalised form, keyed id) of every run of words that could be a known
    value: each word, and longer runs only while the run so far is the prefix of a known
    value (``prefixes`` holds their keyed ids), up to :data:`MAX_WORDS` words on one line
    apart by spaces or light punctuation. So a text costs about one keyed hash per word,
    however many values are known. A trailing possessive ("Smith's") also yields the form
    without it."""
    ws = words(text)
    for i, first in enumerate(ws):
        norm, end = first.norm, first.end
        key = digest(norm)
        j = i + 1
        while True:
            yield first.start, end, norm, key
            stripped = _POSSESSIVE.sub("", norm)
            if stripped != norm and stripped:
                yield first.start, end - (len(norm) - len(stripped)), stripped, digest(stripped)
            if j >= min(i + MAX_WORDS, len(ws)) or key not in prefixes:
                break
            gap = text[ws[j - 1].end : ws[j].start]
            if len(gap) > 3 or "\n" in gap:
                break
            norm, end = f"{norm} {ws[j].norm}", ws[j].end
            key = digest(norm)
            j += 1


def prefixes_of(norm: str) -> list[str]:
    """The leading word runs of a normalised value ("a b c" -> "a", "a b")."""
    parts = norm.split(" ")[:MAX_WORDS]
    return [" ".join(parts[:n]) for n in range(1, len(parts))]
