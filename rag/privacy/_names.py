"""Rules for names (PERSON, ORGANIZATION, LOCATION) around the NER model.

Which detections are names at all (not defined terms or labels), which parts of a name
identify it on its own (aliases), and where a known name counts as written like one.
Word frequencies come from ``wordfreq`` (Zipf scale: 7 = "the", 3 = rare, 0 = unknown).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.privacy._text import words

#: Name parts become aliases of the full name when they are rarer than this (Zipf scale;
#: "Thornbury" 2.2 yes, "Smith" 4.9 and "John" 5.4 no): common words would link people
#: who only share a first name.
ALIAS_MAX_ZIPF = 4.5
#: A part at the start of a sentence must be rarer still (capitalised common words).
ALIAS_SENTENCE_START_MAX_ZIPF = 4.0
#: Organisations too, with rarer words only ("Baidu" of "Beijing Baidu Netcom Science and
#: Technology Co., Ltd."; not "Beijing" or "Technology"): contracts name a party in full
#: once, then by a short name.
ALIAS_MAX_ZIPF_BY_ENTITY = {"PERSON": ALIAS_MAX_ZIPF, "ORGANIZATION": 3.3}
ALIAS_ENTITIES = frozenset(ALIAS_MAX_ZIPF_BY_ENTITY)


#: Entities found by NER are names: a known one counts where it is written like a name
#: (with a capital letter), so "Baker" or "Sponsor" learnt as a name does not replace
#: "baker" or "sponsor" everywhere. A person's name of several words ("margaret
#: thornbury" typed in a question) and patterns (e-mails, ids...) match in any case.
NAME_LIKE = frozenset({"PERSON", "ORGANIZATION", "LOCATION", "NRP"})


def written_as_value(surface: str, entity: str) -> bool:
    if entity not in NAME_LIKE or any(ch.isupper() for ch in surface):
        return True
    # People's names are typed in lower case in questions; organisations and places
    # written in lower case are mostly common nouns ("the disclosing party").
    return entity == "PERSON" and len(words(surface)) > 1


_LABEL = re.compile(r"^([A-Z][a-z]+)\s+(?:[A-Z]|\d{1,3}|[IVX]{1,4})$")
#: NER types whose spans are checked against the document's own lower-case usage.
_COMMON_NOUN_CHECK = frozenset({"ORGANIZATION", "LOCATION"})


def drop_common_nouns(
    found: list[tuple[int, int, int, str, str, str]], texts: Sequence[str]
) -> list[tuple[int, int, int, str, str, str]]:
    """Drop NER labels ("Party B", "Schedule 2"), and organisations and places that the
    same document also writes in lower case: contracts capitalise defined terms ("the
    Disclosing Party", "the Prospectus") that are common nouns elsewhere in the text,
    while a real name ("Aduro Biotech", "Leeds") is never written in lower case."""
    body = "\n".join(texts)
    verdict: dict[str, bool] = {}
    kept = []
    for item in found:
        i, s, e, entity, source, _ = item
        surface = texts[i][s:e]
        lower = surface.lower()
        label = _LABEL.search(surface)
        if source == "ner" and label and zipf(label.group(1).lower()) >= ALIAS_MAX_ZIPF:
            continue  # "Party B", "Exhibit C", "Schedule 2": a label, not a name
        if source == "ner" and entity in _COMMON_NOUN_CHECK and lower != surface:
            if lower not in verdict:
                pattern = r"(?<!\w)" + re.escape(lower).replace(r"\ ", r"\s+") + r"(?!\w)"
                verdict[lower] = re.search(pattern, body) is not None
            if verdict[lower]:
                continue
        kept.append(item)
    return kept


def search_words(value: str) -> list[str]:
    """The words of a name that BM25 would index (not one-letter ones). A one-word value
    gets its word too: "Aduro" alone then meets "Aduro Biotech, Inc" in a question."""
    return [w for w in dict.fromkeys(w.norm for w in words(value)) if len(w) > 1]


def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def name_parts(name: str, entity: str) -> list[str]:
    """Parts of a multi-word name that identify the person or organisation on their own."""
    ws = words(name)
    if len(ws) < 2:
        return []
    limit = ALIAS_MAX_ZIPF_BY_ENTITY.get(entity, 0.0)
    return [
        w.norm for w in ws if len(w.norm) >= 3 and not w.norm.isdigit() and zipf(w.norm) < limit
    ]


def alias_applies(text: str, start: int, norm: str) -> bool:
    """A name part counts only written as a name (capitalised); at the start of a
    sentence, where any word is capitalised, it must also be a rare word."""
    if not text[start : start + 1].isupper():
        return False
    j = start - 1
    while j >= 0 and text[j] in " \t":
        j -= 1
    if j < 0 or text[j] in '.!?:;\n"“(':
        return zipf(norm) < ALIAS_SENTENCE_START_MAX_ZIPF
    return True
