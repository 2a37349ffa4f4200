"""PII detection: where the personal data is in a text, found without leaving the machine.

:class:`PresidioDetector` combines

* a NER model for PERSON / LOCATION / ORGANIZATION (spaCy, a transformers token
  classifier, or none), run in batches with only the components NER needs;
* Presidio's pattern recognizers (e-mail, phone, cards, IBAN, national ids...), called
  directly rather than through ``AnalyzerEngine`` (see ``_recognizers``);
* street addresses in en/fr/de/es/it formats, the operator's deny-list and custom
  patterns (``_recognizers``);
* text structure: names after titles, in salutations, signatures, labelled fields,
  mailboxes and CSV-like columns; places of letter date lines (``_structure``).

NER output is filtered for precision: every false hit is a word taken out of retrieval.
Spans made only of common words ("Party", "Confidential Information"), bare country or
US-state names, and spans inside a detected address are dropped (:func:`keep_ner_span`).
Other spans may overlap: the pseudonymizer resolves them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag._config import PrivacySettings
from rag._errors import ConfigError

if TYPE_CHECKING:
    from rag._types import ParsedDocument
    from rag.privacy._recognizers import PatternSet

#: Sources a span can come from (the pseudonymizer ranks overlapping spans by it).
SOURCES = ("ner", "pattern", "honorific", "address", "deny", "custom", "structure")
#: Entities found by the NER model; the rest come from patterns and structure.
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"})
#: Model labels (spaCy OntoNotes and CoNLL-style transformers) to our entity names.
_NER_LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "LOCATION": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
    "ORGANIZATION": "ORGANIZATION",
    "NORP": "NRP",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
#: spaCy gives no confidence; Presidio uses the same fixed score for its spaCy results.
_SPACY_SCORE = 0.85
#: Longer texts are cut (at whitespace) before NER: bounded memory, and below spaCy's limit.
_NER_PIECE = 100_000
_NOT_NER = ["tagger", "parser", "senter", "attribute_ruler", "lemmatizer", "morphologizer"]
_LEADING_ARTICLE = re.compile(r"(?i)the\s+")
_WARM_UP_TEXT = (
    "Dear Anna, Mr John Smith of Acme Corp (john@example.com, +1 202 555 0100) lives at "
    "10 Main Street, Springfield, in France."
)
_NO_NER_FIX = 'or set privacy.ner = "none" for pattern-only mode'


@dataclass(frozen=True)
class Span:
    """One detected value: character offsets into the text, never the value itself."""

    start: int
    end: int
    entity: str
    score: float
    source: str  # one of SOURCES


class Detector(Protocol):
    """Finds personal data in texts; one list of spans per text, in input order."""

    name: str

    def detect(self, texts: Sequence[str], language: str = "en") -> list[list[Span]]: ...


@dataclass(frozen=True)
class _Entity:
    start: int
    end: int
    label: str
    score: float


class _NerEngine(Protocol):
    def entities(self, texts: Sequence[str]) -> list[list[_Entity]]: ...


class PresidioDetector:
    """The default detector. Picklable: models load on :meth:`warm_up` or first use."""

    name = "presidio"

    def __init__(self, settings: PrivacySettings) -> None:
        self.settings = settings
        self._ner: _NerEngine | None = None
        self._ner_loaded = False
        self._patterns: dict[tuple[str, ...], PatternSet] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Models are rebuilt in the receiving process, not shipped.
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self._ner = None
        self._ner_loaded = False
        self._patterns = {}

    def warm_up(self) -> None:
        """Load the NER model and build the recognizers; raise :class:`ConfigError` if
        the configured model cannot be loaded."""
        self._ner_engine()
        # First use compiles Presidio's regexes and loads the word-frequency tables.
        self.detect(
            [_WARM_UP_TEXT], self.settings.languages[0] if self.settings.languages else "en"
        )

    def detect(self, texts: Sequence[str], language: str = "en") -> list[list[Span]]:
        texts = list(texts)
        patterns = self._pattern_set(language)
        found = [patterns.find(t, language) for t in texts]
        ner = self._ner_engine()
        if ner is not None and texts:
            for text, own, ents in zip(texts, found, ner.entities(texts), strict=True):
                # Street and town names inside an address are the address's, not people.
                addresses = [(s.start, s.end) for s in own if s.entity == "ADDRESS"]
                for ent in ents:
                    span = self._ner_span(text, ent)
                    if span is None or any(a <= span.start and span.end <= b for a, b in addresses):
                        continue
                    if keep_ner_span(text[span.start : span.end], span.entity, language):
                        own.append(span)
        return [patterns.finish(t, spans) for t, spans in zip(texts, found, strict=True)]

    def detect_patterns(self, texts: Sequence[str], language: str = "en") -> list[list[Span]]:
        """Everything but the NER model: recognizers, structure, deny-list, custom patterns.

        Cheap enough for every outgoing request (the egress guard's scan)."""
        patterns = self._pattern_set(language)
        return [patterns.finish(t, patterns.find(t, language)) for t in texts]

    # -- internals --
    def _ner_span(self, text: str, ent: _Entity) -> Span | None:
        entity = _NER_LABELS.get(ent.label.upper())
        if entity is None or entity not in self.settings.entities:
            return None
        start, end = ent.start, ent.end
        # "the University of X": the article is not part of the name (and would make
        # "the Company" and "Company" two different values).
        m = _LEADING_ARTICLE.match(text, start, end)
        if m and m.end() < end:
            start = m.end()
        # A span across lines is the model running into the next line's label.
        newline = text.find("\n", start, end)
        end = newline if newline > start else end
        while end > start and not text[end - 1].isalnum() and text[end - 1] not in ".)":
            end -= 1
        return Span(start, end, entity, ent.score, "ner") if end > start else None

    def _pattern_set(self, language: str) -> PatternSet:
        from rag.privacy._recognizers import SUPPORTED_LANGUAGES, PatternSet

        langs = tuple(self.settings.languages)
        if language in SUPPORTED_LANGUAGES and language not in langs:
            langs = (*langs, language)
        if langs not in self._patterns:
            self._patterns[langs] = PatternSet(self.settings, langs)
        return self._patterns[langs]

    def _ner_engine(self) -> _NerEngine | None:
        if not self._ner_loaded:
            s = self.settings
            wanted = NER_ENTITIES.intersection(s.entities)
            if s.ner == "none" or not wanted:
                self._ner = None
            elif s.ner == "transformers":
                self._ner = _TransformersNer(s.ner_model, s.batch_size)
            else:
                self._ner = _SpacyNer(s.ner_model, s.batch_size)
            self._ner_loaded = True
        return self._ner


def structured_values(doc: ParsedDocument) -> list[tuple[str, str]]:
    """(value, entity) pairs that a document's structure marks as personal data: e-mail
    headers and table columns named like name / e-mail / phone / address / IBAN."""
    from rag.privacy._structure import structured_values as from_structure

    return from_structure(doc)


class _SpacyNer:
    """A spaCy pipeline reduced to what its ``ner`` component needs."""

    def __init__(self, model: str, batch_size: int) -> None:
        self.batch_size = batch_size
        self.nlp = _load_spacy(model)

    def entities(self, texts: Sequence[str]) -> list[list[_Entity]]:
        pieces, owners = _split_long(texts)
        out: list[list[_Entity]] = [[] for _ in texts]
        docs = self.nlp.pipe((p for _, p in pieces), batch_size=self.batch_size)
        for (offset, _), owner, doc in zip(pieces, owners, docs, strict=True):
            out[owner].extend(
                _Entity(offset + e.start_char, offset + e.end_char, e.label_, _SPACY_SCORE)
                for e in doc.ents
            )
        return out


def _load_spacy(model: str) -> Any:
    from rag._models import spacy_model_path

    target = spacy_model_path(model)
    if isinstance(target, Path) and not (target / "config.cfg").is_file():
        raise ConfigError(
            "privacy.ner_model",
            f"no spaCy pipeline at {target}",
            f"point it at a spaCy model directory or an installed model package, {_NO_NER_FIX}",
        )
    try:
        import spacy

        nlp = spacy.load(target, exclude=_NOT_NER)
    except (OSError, ImportError, ValueError, KeyError) as exc:
        raise ConfigError(
            "privacy.ner_model",
            f"cannot load spaCy model {model!r} ({type(exc).__name__})",
            f"install the model package (scripts/setup.sh installs en_core_web_md), {_NO_NER_FIX}",
        ) from None
    if "ner" not in nlp.pipe_names:
        raise ConfigError(
            "privacy.ner_model",
            f"spaCy model {model!r} has no 'ner' component",
            f"use a pipeline with named-entity recognition, {_NO_NER_FIX}",
        )
    # A shared tok2vec/transformer runs only if NER listens to it: en_core_web_md's NER
    # has its own embedding, so skipping the shared one gives the same entities ~35% faster.
    for name in ("tok2vec", "transformer"):
        if name in nlp.pipe_names:
            listeners = getattr(nlp.get_pipe(name), "listening_components", None)
            if listeners is not None and "ner" not in listeners:
                nlp.disable_pipe(name)
    nlp.max_length = max(nlp.max_length, _NER_PIECE + 1)
    return nlp


class _TransformersNer:
    """A Hugging Face token-classification model from a local directory."""

    def __init__(self, model: str, batch_size: int) -> None:
        self.batch_size = batch_size
        path = Path(model).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(
                "privacy.ner_model",
                f"no transformers model directory at {path} (config.json is missing)",
                'with privacy.ner = "transformers", set it to a local token-classification '
                f"model directory, {_NO_NER_FIX}",
            )
        try:
            from transformers import pipeline

            self.pipe = pipeline(
                "token-classification",
                model=str(path),
                tokenizer=str(path),
                aggregation_strategy="simple",
                device=-1,
            )
        except (OSError, ImportError, ValueError, KeyError) as exc:
            raise ConfigError(
                "privacy.ner_model",
                f"cannot load token-classification model at {path} ({type(exc).__name__})",
                f"check the directory holds a model and its tokenizer, {_NO_NER_FIX}",
            ) from None

    def entities(self, texts: Sequence[str]) -> list[list[_Entity]]:
        pieces, owners = _split_long(texts, limit=1_500)
        out: list[list[_Entity]] = [[] for _ in texts]
        # The pipeline truncates to the model's window (512 tokens for BERT-sized models);
        # 1,500-character pieces stay inside it and keep typical chunks whole. Blank
        # pieces are skipped: tokenizers reject empty input.
        todo = [
            (piece, owner) for piece, owner in zip(pieces, owners, strict=True) if piece[1].strip()
        ]
        results = self.pipe([p for (_, p), _ in todo], batch_size=self.batch_size) if todo else []
        for ((offset, _), owner), found in zip(todo, results, strict=True):
            for r in found:
                label = str(r.get("entity_group") or r.get("entity", ""))
                label = label.split("-", 1)[-1]  # B-PER / I-PER without aggregation
                out[owner].append(
                    _Entity(
                        offset + int(r["start"]), offset + int(r["end"]), label, float(r["score"])
                    )
                )
        return out


def _split_long(
    texts: Sequence[str], limit: int = _NER_PIECE
) -> tuple[list[tuple[int, str]], list[int]]:
    """Texts cut into pieces of at most ``limit`` characters at whitespace, with offsets."""
    pieces: list[tuple[int, str]] = []
    owners: list[int] = []
    for i, text in enumerate(texts):
        start = 0
        while len(text) - start > limit:
            cut = max(text.rfind("\n", start, start + limit), text.rfind(" ", start, start + limit))
            cut = cut + 1 if cut > start else start + limit
            pieces.append((start, text[start:cut]))
            owners.append(i)
            start = cut
        pieces.append((start, text[start:]))
        owners.append(i)
    return pieces, owners


# --------------------------------------------------------------------------- NER precision


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: A word is "common" when it is frequent in the text's language (Zipf scale: "party" 5.5
#: in English) and much less frequent in the other four of en, fr, de, es, it. Names are
#: about as frequent in all five ("john" 5.4 in English, 4.9 on average elsewhere; "party"
#: 4.3); so are loanwords ("software"), which therefore stay.
COMMON_MIN_ZIPF = {"PERSON": 4.0, "ORGANIZATION": 3.5, "LOCATION": 4.0}
COMMON_MIN_ENGLISHNESS = 1.0
#: Place names are often much more frequent in English text than on average elsewhere
#: ("London" 5.3 vs 4.1), so LOCATION compares with the language using the word most
#: (German, 4.8): "North", "Territory", "Field" stay common, cities do not.
PLACE_MIN_ENGLISHNESS = 1.3
#: Contract role nouns ("Licensee", "Assignor"): English-only words, however rare.
_ROLE_SUFFIXES = ("ee", "ees", "or", "ors")
#: Legal forms that make a phrase of common words a company name ("General Motors Corp").
#: Not "company" or "group": "the Company" is the commonest defined term of all.
_CORPORATE_FORMS = _word_set(
    "inc incorporated corp corporation co llc llp lp ltd limited plc gmbh ag kg sa sas sarl "
    "srl spa bv nv ab oy se"
)
#: Lower-case words allowed inside a name ("Bank of America", "Ludwig van Beethoven").
_FUNCTION_WORDS = _word_set(
    "the of and for a an at on in upon s de la le les du des der die das den von van zu zum "
    "zur am im und y e el los las del di da dei degli della delle dello al do dos ten ter et sur en"
)
#: Abbreviations the model labels ORG or LOC that never name one in business text.
_NOT_NAMES = _word_set(
    "utc gmt cet cest est edt pst pdt ssn iban bic swift vat tva iva pin id ceo cfo cto coo "
    "hr it pdf url ip api csv faq tbd eta kpi sla erp crm vpn nda rfp sow fy ppo hmo"
)
_LANGUAGES = ("en", "fr", "de", "es", "it")
_US_STATES = (
    "Alabama,Alaska,Arizona,Arkansas,California,Colorado,Connecticut,Delaware,Florida,"
    "Georgia,Hawaii,Idaho,Illinois,Indiana,Iowa,Kansas,Kentucky,Louisiana,Maine,Maryland,"
    "Massachusetts,Michigan,Minnesota,Mississippi,Missouri,Montana,Nebraska,Nevada,"
    "New Hampshire,New Jersey,New Mexico,New York,North Carolina,North Dakota,Ohio,Oklahoma,"
    "Oregon,Pennsylvania,Rhode Island,South Carolina,South Dakota,Tennessee,Texas,Utah,"
    "Vermont,Virginia,Washington,West Virginia,Wisconsin,Wyoming,District of Columbia,"
    "Washington DC,DC,Puerto Rico"
)
_PLACE_ALIASES = (
    "USA,US,United States,United States of America,America,UK,United Kingdom,Great Britain,"
    "Britain,England,Scotland,Wales,Northern Ireland,EU,European Union,Europe,Asia,Africa,"
    "North America,South America,Latin America,Central America,Middle East,Oceania,"
    "Antarctica,Russia,South Korea,North Korea,Vietnam,Czechia,Holland,Netherlands,PRC,"
    "People's Republic of China,Scandinavia,Americas"
)
_PLACE_PREFIX = re.compile(r"^(?:the )?(?:(?:state|commonwealth|republic|kingdom) of )?")
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def keep_ner_span(value: str, entity: str, language: str = "en") -> bool:
    """False for NER spans that are not personal data: defined terms made of common
    words ("Party", "Confidential Information", "Licensee"), bare country or US-state
    names (governing-law clauses name them; an address keeps them via ``ADDRESS``), and
    what is not shaped like a name at all."""
    if entity not in COMMON_MIN_ZIPF:
        return True
    if not _name_shaped(value, entity):
        return False
    if entity == "LOCATION" and is_place_name(value):
        return False
    return not is_common_phrase(value, entity, language)


def _name_shaped(value: str, entity: str) -> bool:
    tokens = [t.strip(".,;:()[]\"'’") for t in value.split()]
    # A lower-case word that is not a particle: the model took in part of a sentence, as
    # English models do on German or Italian ("Bitte geben Sie Ihren Laptop").
    if any(t.islower() and t.casefold() not in _FUNCTION_WORDS for t in tokens):
        return False
    if "@" in value or (entity == "PERSON" and any(c.isdigit() for c in value)):
        return False
    if value.casefold() in _NOT_NAMES:
        return False
    return any(len(t) >= 3 and t.replace("-", "").isalpha() for t in tokens)  # not "GA 14782"


def is_common_phrase(value: str, entity: str = "ORGANIZATION", language: str = "en") -> bool:
    """Every word common in ``language`` (see :data:`COMMON_MIN_ZIPF`) or a role noun,
    and no corporate form."""
    words = [w for w in _NAME_WORD.findall(value) if w.casefold() not in _FUNCTION_WORDS]
    if not words:
        return False
    if len(words) == 1 and 2 <= len(words[0]) <= 5 and words[0].isupper():
        return False  # an acronym: NHL, CIA, ACME
    home = language if language in _LANGUAGES else "en"
    return all(_is_common_word(w.casefold(), entity, home) for w in words)


def _is_common_word(word: str, entity: str, language: str) -> bool:
    if word in _CORPORATE_FORMS or word in _place_names():
        return False  # "General Motors Corp", "Bank of America": proper names
    freq = _frequencies(word)
    own = freq[language]
    others = [f for lang, f in freq.items() if lang != language]
    if language == "en" and word.endswith(_ROLE_SUFFIXES) and own >= 1.5 and max(others) < 1.5:
        return True
    if own < COMMON_MIN_ZIPF.get(entity, 4.0):
        return False
    if entity == "LOCATION":
        return own - max(others) >= PLACE_MIN_ENGLISHNESS
    return own - sum(others) / len(others) >= COMMON_MIN_ENGLISHNESS


@lru_cache(maxsize=65536)
def _frequencies(word: str) -> dict[str, float]:
    """Zipf frequency of ``word`` in en, fr, de, es and it."""
    from wordfreq import zipf_frequency

    return {lang: zipf_frequency(word, lang) for lang in _LANGUAGES}


def is_place_name(value: str) -> bool:
    """A country (English, French, German, Spanish or Italian name), a US state, a continent."""
    return _place_key(value) in _place_names()


def _place_key(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c)).replace(".", "")
    folded = " ".join(folded.replace("’", "'").removesuffix("'s").split())
    return _PLACE_PREFIX.sub("", folded)


@lru_cache(maxsize=1)
def _place_names() -> frozenset[str]:
    # phonenumbers (a Presidio dependency) carries country names in many languages.
    from phonenumbers.geodata.locale import LOCALE_DATA

    names = [*_US_STATES.split(","), *_PLACE_ALIASES.split(",")]
    for by_language in LOCALE_DATA.values():
        for lang in ("en", "fr", "de", "es", "it"):
            name = by_language.get(lang)
            while name and name.startswith("*"):  # "*en": same as another language
                name = by_language.get(name[1:])
            if name:
                names.append(name)
    return frozenset(_place_key(n) for n in names)
