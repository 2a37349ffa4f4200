"""Corpus-wide consistent pseudonymization: detector + vault + dictionary of known values.

For a batch of texts (one document's elements, or one question):

1. the detector finds spans (NER, patterns, honorifics, addresses, deny-list, custom);
2. each span is trimmed (titles, possessives, punctuation) and normalised; its keyed
   digest gives the value id, and the vault hands out one placeholder per value id
   (first type wins, so a value has one type everywhere);
3. every value already in the vault, and the parts of known names ("Thornbury" of
   "Margaret Thornbury"), is then matched exactly in all the texts, so what the model
   missed here but found elsewhere is still replaced;
4. overlaps are resolved deterministically (longest, then strongest source, then leftmost)
   and the text is rewritten by the configured operator.

Instances are picklable (the ingestion step ships them to parser processes): the vault
connection and the NER model load on first use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag._config import PrivacySettings, Settings
from rag.privacy._keys import PrivacyKeys
from rag.privacy._names import (
    ALIAS_ENTITIES,
    NAME_LIKE,
    alias_applies,
    drop_common_nouns,
    name_parts,
    search_words,
    written_as_value,
)
from rag.privacy._operators import masked, surrogate
from rag.privacy._text import PLACEHOLDER, normalize, prefixes_of, scan, trim_span
from rag.privacy._vault import NewValue, Vault, VaultEntry

#: Which detection wins when two spans of the same length overlap (higher wins).
_SOURCE_RANK = {
    "deny": 7,
    "custom": 6,
    "structure": 5,
    "pattern": 4,
    "address": 4,
    "vault": 3,
    "alias": 2,
    "honorific": 2,
    "ner": 1,
}


@dataclass(frozen=True)
class Replacement:
    """One replaced value: offsets in the *original* text, never the value itself."""

    start: int
    end: int
    entity: str
    placeholder: str
    source: str


@dataclass(frozen=True)
class Pseudonymized:
    text: str
    replacements: tuple[Replacement, ...] = ()

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.placeholder for r in self.replacements))

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r.entity for r in self.replacements))


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    entity: str
    source: str
    key: bytes | None  # value id (None until assigned)


@dataclass
class _Known:
    """In-process copy of the vault's ids, refreshed incrementally by rowid."""

    values: dict[bytes, VaultEntry] = field(default_factory=dict)
    aliases: dict[bytes, str | None] = field(default_factory=dict)
    by_placeholder: dict[str, VaultEntry] = field(default_factory=dict)
    prefixes: set[bytes] = field(default_factory=set)
    value_row: int = 0
    alias_row: int = 0
    prefix_row: int = 0


class Pseudonymizer:
    """Replaces personal data consistently across documents, queries and tool arguments."""

    def __init__(
        self,
        settings: PrivacySettings,
        keys: PrivacyKeys,
        vault: Vault,
        detector: Any,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.vault = vault
        self.detector = detector
        self._allow = frozenset(normalize(v) for v in settings.allow_list)
        self._known = _Known()

    @classmethod
    def open(cls, settings: Settings, *, detector: Any = None) -> Pseudonymizer:
        """Keys from settings, the vault under ``home``, the configured detector.

        Raises :class:`~rag.ConfigError` for a missing key or NER model, and
        :class:`~rag.VaultError` for a vault made with another key.
        """
        from rag.privacy._detect import PresidioDetector

        keys = PrivacyKeys.from_settings(settings)
        vault = Vault.open(settings, keys)
        return cls(settings.privacy, keys, vault, detector or PresidioDetector(settings.privacy))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_known"] = _Known()  # rebuilt from the vault in the new process
        return state

    # -- ids --
    def _id(self, norm: str) -> bytes:
        return self.keys.value_digest(norm)[:16]

    def _refresh(self) -> None:
        known = self._known
        for entry in self.vault.entries_since(known.value_row):
            known.values[entry.value_id] = entry
            known.by_placeholder[entry.placeholder] = entry
            known.value_row = entry.rowid
        for rowid, alias_id, placeholder in self.vault.aliases_since(known.alias_row):
            known.aliases[alias_id] = placeholder
            known.alias_row = rowid
        for rowid, prefix_id in self.vault.prefixes_since(known.prefix_row):
            known.prefixes.add(prefix_id)
            known.prefix_row = rowid

    # -- the main entry point --
    def pseudonymize(
        self,
        texts: Sequence[str],
        *,
        language: str = "en",
        seeds: Iterable[tuple[str, str]] = (),
    ) -> list[Pseudonymized]:
        """Pseudonymize ``texts`` together (values found in one are replaced in all).

        ``seeds`` are (value, entity) pairs known to be personal data from the document's
        structure (e-mail headers, table columns named ``name``...).
        """
        texts = list(texts)
        if not texts:
            return []
        detected = self.detector.detect(texts, language) if any(t.strip() for t in texts) else []
        self._refresh()
        found: list[
            tuple[int, int, int, str, str, str]
        ] = []  # text, start, end, type, source, norm
        for i, (text, spans_i) in enumerate(
            zip(texts, detected or [[] for _ in texts], strict=True)
        ):
            # The strongest detector registers a new value first, so its type is the one
            # the value keeps ("Hi Saanvi": salutation PERSON beats an NER LOCATION).
            for span in sorted(spans_i, key=lambda sp: -_SOURCE_RANK.get(sp.source, 0)):
                s, e = trim_span(text, span.start, span.end)
                norm = normalize(text[s:e])
                if norm and norm not in self._allow:
                    found.append((i, s, e, span.entity, span.source, norm))
        found = drop_common_nouns(found, texts)
        # Trimmed like detected spans, so the vault keeps the same surface: a phone's "+"
        # stays in the text, outside the placeholder (kept inside, it came back doubled).
        seeded = [(_trimmed(v), ent, normalize(v)) for v, ent in seeds]
        seeded = [(v, ent, norm) for v, ent, norm in seeded if norm and norm not in self._allow]
        # Parts of the full names in this batch: "Ms Thornbury" next to "Margaret Thornbury"
        # is her, not a new person (unless two full names share the part).
        parts: dict[bytes, set[str]] = {}
        names = [(texts[i][s:e], ent) for i, s, e, ent, _, _ in found if ent in ALIAS_ENTITIES]
        names += [(v, ent) for v, ent, _ in seeded if ent in ALIAS_ENTITIES]
        for name, ent in names:
            for part in name_parts(name, ent):
                parts.setdefault(self._id(part), set()).add(normalize(name))
        new: dict[bytes, NewValue] = {}
        spans: list[list[_Candidate]] = [[] for _ in texts]
        for i, s, e, entity, source, norm in found:
            key = self._id(norm)
            if entity in ALIAS_ENTITIES and " " not in norm and self._is_alias(key, parts):
                spans[i].append(_Candidate(s, e, entity, "alias", key))
                continue
            key = self._register(new, norm, entity, texts[i][s:e])
            spans[i].append(_Candidate(s, e, entity, source, key))
        for value, entity, norm in seeded:
            self._register(new, norm, entity, value)
        self._assign(new)
        return [self._rewrite(text, own) for text, own in zip(texts, spans, strict=True)]

    def pseudonymize_text(self, text: str, *, language: str = "en") -> str:
        """One text (a question, a tool result) pseudonymized."""
        return self.pseudonymize([text], language=language)[0].text

    def replace_known(self, text: str) -> Pseudonymized:
        """``text`` with the values the vault already knows replaced; no detection runs.

        For text written before the vault learned a value (ingestion's second pass), and
        for outgoing text assembled from stored chunks."""
        self._refresh()
        return self._rewrite(text, [])

    def vault_mark(self) -> tuple[int, int]:
        """A position in the vault's history (values, aliases): compare two marks with
        ``!=`` to learn whether values or name parts were added in between."""
        self._refresh()
        return self._known.value_row, self._known.alias_row

    def search_terms(self, text: str) -> str:
        """Opaque search words for the placeholders in ``text`` (one per word of each
        name, keyed), for BM25 only: a question naming "Coral Gold Resourced Ltd" then
        still meets "Coral Gold Resources Ltd" on its shared words, as in clear text. The
        words are keyed hashes: they reveal nothing without the key, and are never shown
        to a model."""
        found = placeholders_in(text)
        if not found:
            return ""
        terms = self.vault.terms_for(found)
        return " ".join(f"wordx{t.hex()[:16]}" for p in found for t in terms.get(p, ()))

    def query_step(self) -> Callable[[str], str]:
        """A :class:`~rag.Retriever` query step: the question, pseudonymized."""
        return _QueryStep(self)

    def _is_alias(self, key: bytes, batch_parts: dict[bytes, set[str]]) -> bool:
        """Whether a one-word name is an unambiguous part of one known or nearby full name."""
        known = self._known
        if key in known.values:
            return False
        in_batch = batch_parts.get(key, set())
        if key in known.aliases:
            target = known.aliases[key]
            # Still unambiguous if every full name here is the one it already stands for.
            return target is not None and all(
                getattr(known.values.get(self._id(name)), "placeholder", None) == target
                for name in in_batch
            )
        return len(in_batch) == 1

    def _register(self, new: dict[bytes, NewValue], norm: str, entity: str, surface: str) -> bytes:
        digest = self.keys.value_digest(norm)
        key = digest[:16]
        if key not in self._known.values and key not in new:
            new[key] = NewValue(key, entity, digest.hex(), surface)
        return key

    def _assign(self, new: dict[bytes, NewValue]) -> None:
        self._refresh()
        fresh = [v for k, v in new.items() if k not in self._known.values]
        if not fresh:
            return
        # Prefixes first: a reader that sees a value must be able to extend a run to it.
        self.vault.add_prefixes(
            self._id(p) for v in fresh for p in prefixes_of(normalize(v.original))
        )
        entries = self.vault.assign(fresh)
        aliases: list[tuple[bytes, str]] = []
        terms: list[tuple[str, bytes]] = []
        for value in fresh:
            entry = entries[value.value_id]
            if entry.entity in NAME_LIKE:
                terms.extend((entry.placeholder, self._id(w)) for w in search_words(value.original))
            if entry.entity in ALIAS_ENTITIES:
                parts = name_parts(value.original, entry.entity)
                aliases.extend((self._id(p), entry.placeholder) for p in parts)
        if aliases:
            self.vault.add_aliases(aliases)
        self.vault.add_terms(terms)
        self._refresh()

    # -- rewriting --
    def _rewrite(self, text: str, detected: list[_Candidate]) -> Pseudonymized:
        known = self._known
        candidates = list(detected)
        for start, end, norm, key in scan(text, self._id, known.prefixes):
            if key in known.values:
                entity = known.values[key].entity
                if norm not in self._allow and written_as_value(text[start:end], entity):
                    candidates.append(_Candidate(start, end, "", "vault", key))
            elif known.aliases.get(key) and alias_applies(text, start, norm):
                candidates.append(_Candidate(start, end, "", "alias", key))
        chosen = _resolve(candidates)
        out: list[str] = []
        replacements: list[Replacement] = []
        pos = 0
        for c in chosen:
            entry = self._entry(c)
            if entry is None:
                if c.entity:  # a detected name whose alias turned ambiguous: never leave it
                    out.append(text[pos : c.start] + f"<{c.entity}>")
                    pos = c.end
                continue
            out.append(text[pos : c.start])
            out.append(self._substitute(entry, text[c.start : c.end]))
            replacements.append(
                Replacement(c.start, c.end, entry.entity, entry.placeholder, c.source)
            )
            pos = c.end
        out.append(text[pos:])
        return Pseudonymized("".join(out), tuple(replacements))

    def _entry(self, c: _Candidate) -> VaultEntry | None:
        known = self._known
        if c.source == "alias":
            placeholder = known.aliases.get(c.key or b"")
            return known.by_placeholder.get(placeholder) if placeholder else None
        return known.values.get(c.key or b"")

    def _substitute(self, entry: VaultEntry, surface: str) -> str:
        op = self.settings.operator
        if op == "pseudonymize":
            return entry.placeholder
        if op == "redact":
            return f"<{entry.entity}>"
        if op == "mask":
            return masked(surface, entry.entity)
        return surrogate(entry.entity, entry.value_id.hex())


class _QueryStep:
    name = "pseudonymize"

    def __init__(self, pseudonymizer: Pseudonymizer) -> None:
        self.pseudonymizer = pseudonymizer

    def __call__(self, question: str) -> str:
        return self.pseudonymizer.pseudonymize_text(question)

    def __repr__(self) -> str:
        return "pseudonymize-question"


def _trimmed(value: str) -> str:
    start, end = trim_span(value, 0, len(value))
    return value[start:end] if end > start else value.strip()


def _resolve(candidates: list[_Candidate]) -> list[_Candidate]:
    """Non-overlapping spans: longest first, then by source rank, then leftmost."""
    order = sorted(
        candidates, key=lambda c: (-(c.end - c.start), -_SOURCE_RANK.get(c.source, 0), c.start)
    )
    chosen: list[_Candidate] = []
    for c in order:
        if c.end > c.start and all(c.end <= o.start or c.start >= o.end for o in chosen):
            chosen.append(c)
    return sorted(chosen, key=lambda c: c.start)


def placeholders_in(text: str) -> list[str]:
    """Placeholders of the ``pseudonymize`` operator found in ``text``, in order, unique."""
    return list(dict.fromkeys(m.group() for m in PLACEHOLDER.finditer(text)))
