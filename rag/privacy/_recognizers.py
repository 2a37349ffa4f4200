"""Pattern recognizers (Presidio's, run fast, and street addresses), deny-list, custom.

Presidio's ``AnalyzerEngine`` runs every recognizer on every text and builds NLP
artifacts for context words. We call the predefined recognizer classes ourselves and
skip those whose cheap pre-check fails (no ``@``: no e-mail; no digit: no phone, card,
IBAN, id). The URL recognizer's one big regex is the slowest part of Presidio's set
(~20k chars/s), so it only sees the whitespace-delimited tokens that contain a dotted
name. Context words raise a score as Presidio's default enhancer does (five words before
the match, substring match, +0.35, at least 0.4), read from the text itself.

Phone numbers and addresses follow countries, not the text's language: an English e-mail
signed in Munich carries a German number and address. Their national formats (all of
en, fr, de, es, it) are therefore always on; ``privacy.languages`` selects the words
of the name recognizers (titles, greetings, labels) in ``_structure``.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rag._config import PrivacySettings
from rag._errors import ConfigError
from rag.privacy._detect import NER_ENTITIES, Span

SUPPORTED_LANGUAGES = ("en", "fr", "de", "es", "it")
#: National number formats recognised (``+country`` numbers are found in any region).
#: Not LU: its variable-length plan matches any run of 4+ digits.
PHONE_REGIONS = ("US", "GB", "IE", "CA", "FR", "BE", "CH", "DE", "AT", "ES", "IT", "NL")
#: Entities produced outside Presidio's pattern classes.
OWN_ENTITIES = frozenset({"ADDRESS"})
#: Entities whose recognizers cannot match a text without a digit.
_NEEDS_DIGIT = frozenset(
    {"PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "US_ITIN", "US_PASSPORT"}
    | {"UK_NHS", "UK_NINO", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE", "IT_VAT_CODE"}
    | {"IT_IDENTITY_CARD", "IT_PASSPORT", "PL_PESEL", "FI_PERSONAL_IDENTITY_CODE"}
    | {"US_DRIVER_LICENSE", "US_BANK_NUMBER", "UK_PASSPORT", "ES_PASSPORT"}
)
#: Presidio classes that need a model or a service, not patterns.
_NOT_PATTERNS = ("Spacy", "Stanza", "Transformers", "GLiNER", "HuggingFace", "Medical")
_DIGIT = re.compile(r"\d")
_URL_TOKEN = re.compile(r"\S*[A-Za-z0-9]\.[A-Za-z]{2}\S*")
_PHONE_RUN = re.compile(r"[+(\uff0b]?\d[\d \t\u00a0().\-/\u2013]*\d\)?")
_CONTEXT_WORD = re.compile(r"\w+")
_CONTEXT_BOOST, _CONTEXT_MIN, _CONTEXT_WORDS = 0.35, 0.4, 5
_DOTTED_BEFORE = re.compile(r"\d\.$")
_DOTTED_AFTER = re.compile(r"\.\d")
_DATE_LIKE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}")
_ISO_DATE_FIRST = re.compile(r"\d{4}-\d{2}-\d{2}\s")
#: Shapes of other numbers: US SSN, US ZIP+4, Portuguese postcode.
_SSN_LIKE = re.compile(r"\d{3}-\d{2}-\d{4}|\d{5}-\d{4}|\d{4}-\d{3}")
_DECIMALS = re.compile(r"(?:\d+\.\d+\s+){2,}")
#: Labels of numbers that phonenumbers would read as phone numbers (tax ids, serials).
_NOT_PHONE_LABEL = re.compile(
    r"(?i)(?:iva|vat|tva|siret|siren|cif|nif|ust-?idnr|steuernummer|tax id|serial|s/n|part|"
    r"model|order|invoice|case|ticket|docket|permit|licen[cs]e|registration|certificate|"
    r"account|acct|policy|claim|routing)(?:\s*(?:number|no\.?|nr\.?|num|#))?[\s.:#n°º]*"
    r"(?:[a-z]{2}\s*)?$"
)
#: Mastercard's 2-series (2221-2720), which Presidio's card pattern predates.
_CARD_2_SERIES = re.compile(
    r"(?<![\d-])2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)(?:[ -]?\d{4}){3}(?![\d-])"
)
_VERSION_WORDS = re.compile(
    r"(?i)(?:\bv|\bver|version|release|rev|build|section|sec|§|para|paragraph|chapter|table"
    r"|figure|fig|goal|objective|strategy|tactic|kpi|measure|indicator|target|priority|action"
    r"|task|item|step|appendix|annex|clause|article|part|no)\.?\s*$"
)


@dataclass(frozen=True)
class _Rec:
    recognizer: Any
    entity: str
    needs: str  # "" | "digit" | "@" | "url"
    context: tuple[str, ...]


class PatternSet:
    """Every non-NER detection for one set of languages, and the final span filter."""

    def __init__(self, settings: PrivacySettings, languages: Sequence[str]) -> None:
        from rag.privacy._structure import TextStructure

        self.settings = settings
        entities = frozenset(settings.entities)
        _check_entities(settings)
        self._recs = _build_recognizers(entities)
        self._cards = "CREDIT_CARD" in entities
        self._addresses = _address_pattern() if "ADDRESS" in entities else None
        self._structure = TextStructure(languages, entities)
        self._deny = _deny_pattern(settings.deny_list)
        self._deny_entity = {_norm(t.value): t.entity for t in settings.deny_list}
        self._custom = [(c, re.compile(c.pattern)) for c in settings.custom_recognizers]
        self._allow = frozenset(_norm(v) for v in settings.allow_list)

    def find(self, text: str, language: str = "en") -> list[Span]:
        """All detections in ``text`` before filtering (see :meth:`finish`)."""
        out: list[Span] = []
        has_digit = _DIGIT.search(text) is not None
        for rec in self._recs:
            if (rec.needs == "digit" and not has_digit) or (rec.needs == "@" and "@" not in text):
                continue
            if rec.needs == "url":
                out.extend(self._in_windows(rec, text, _URL_TOKEN, 0, 0))
                continue
            if rec.entity == "PHONE_NUMBER":
                out.extend(self._in_windows(rec, text, _PHONE_RUN, 3, 12))
                continue
            for r in rec.recognizer.analyze(text, [rec.entity], None):
                if _plausible(rec.entity, text, r.start, r.end):
                    score = _boost(text, r.start, r.score, rec)
                    out.append(Span(r.start, r.end, rec.entity, score, "pattern"))
        if has_digit and self._cards:
            for m in _CARD_2_SERIES.finditer(text):
                if _luhn(m.group()):
                    out.append(Span(m.start(), m.end(), "CREDIT_CARD", 1.0, "pattern"))
        if has_digit and self._addresses is not None:
            for m in self._addresses.finditer(text):
                start, end = _trim_address(text, m.start(), m.end())
                if _DIGIT.search(text, start, end):
                    out.append(Span(start, end, "ADDRESS", 0.75, "address"))
        out.extend(self._structure.find(text, language))
        if self._deny is not None:
            for m in self._deny.finditer(text):
                entity = self._deny_entity.get(_norm(m.group()), "PERSON")
                out.append(Span(m.start(), m.end(), entity, 1.0, "deny"))
        for custom, pattern in self._custom:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    out.append(Span(m.start(), m.end(), custom.entity, custom.score, "custom"))
        return out

    def finish(self, text: str, spans: Iterable[Span]) -> list[Span]:
        """Apply threshold, entity selection and allow-list; drop exact duplicates."""
        threshold = self.settings.score_threshold
        entities = self.settings.entities
        best: dict[tuple[int, int, str, str], Span] = {}
        for s in spans:
            if s.score < threshold and s.source != "deny":
                continue
            if s.entity not in entities and s.source not in ("deny", "custom"):
                continue
            if self._allow and _norm(text[s.start : s.end]) in self._allow:
                continue
            key = (s.start, s.end, s.entity, s.source)
            if key not in best or s.score > best[key].score:
                best[key] = s
        return sorted(best.values(), key=lambda s: (s.start, -s.end, s.entity))

    def _in_windows(
        self, rec: _Rec, text: str, candidates: re.Pattern[str], before: int, after: int
    ) -> Iterable[Span]:
        """Run a slow recognizer only on the parts of ``text`` it could match.

        Phone numbers are runs of digits and separators with at least 7 digits; the window
        keeps a few characters around the run because phonenumbers looks at its neighbours
        (a letter, a currency sign, ":30" of a time) and at an extension ("ext. 12").
        """
        seen: set[tuple[int, int]] = set()
        for m in candidates.finditer(text):
            if rec.entity == "PHONE_NUMBER" and len(_DIGIT.findall(m.group())) < 7:
                continue
            lo, hi = max(0, m.start() - before), min(len(text), m.end() + after)
            for r in rec.recognizer.analyze(text[lo:hi], [rec.entity], None):
                start, end = lo + r.start, lo + r.end
                if (start, end) in seen or not _plausible(rec.entity, text, start, end):
                    continue
                seen.add((start, end))
                yield Span(start, end, rec.entity, _boost(text, start, r.score, rec), "pattern")


def _build_recognizers(entities: frozenset[str]) -> list[_Rec]:
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    recs: list[_Rec] = []
    for entity, cls in sorted(presidio_classes().items()):
        if entity not in entities:
            continue
        if cls is PhoneRecognizer:
            recognizer = PhoneRecognizer(supported_regions=PHONE_REGIONS)
        else:
            recognizer = cls()
        needs = {"EMAIL_ADDRESS": "@", "URL": "url"}.get(entity, "")
        if entity in _NEEDS_DIGIT:
            needs = "digit"
        context = tuple(w.lower() for w in (getattr(recognizer, "context", None) or ()))
        recs.append(_Rec(recognizer, entity, needs, context))
    return recs


@lru_cache(maxsize=1)
def presidio_classes() -> dict[str, type]:
    """Presidio's predefined pattern recognizer classes by the entity they detect."""
    import presidio_analyzer.predefined_recognizers as predefined
    from presidio_analyzer import LocalRecognizer

    found: dict[str, type] = {}
    for name in dir(predefined):
        cls = getattr(predefined, name)
        if not isinstance(cls, type) or not issubclass(cls, LocalRecognizer):
            continue
        if name.startswith(_NOT_PATTERNS):
            continue
        param = inspect.signature(cls.__init__).parameters.get("supported_entity")
        if param is not None and isinstance(param.default, str):
            found.setdefault(param.default, cls)
    return found


def _check_entities(settings: PrivacySettings) -> None:
    own = {t.entity for t in settings.deny_list} | {c.entity for c in settings.custom_recognizers}
    known = set(presidio_classes()) | NER_ENTITIES | OWN_ENTITIES | own
    unknown = sorted(set(settings.entities) - known)
    if unknown:
        raise ConfigError(
            "privacy.entities",
            f"unknown entity types {unknown}",
            "use Presidio's entity names (EMAIL_ADDRESS, PHONE_NUMBER, ...), PERSON, "
            "LOCATION, ORGANIZATION, NRP, DATE_TIME, ADDRESS, or the entity of a "
            "privacy.deny_list or privacy.custom_recognizers entry",
        )


def _boost(text: str, start: int, score: float, rec: _Rec) -> float:
    score = float(score)
    if not rec.context:
        return score
    before = _CONTEXT_WORD.findall(text[max(0, start - 120) : start])
    words = [w.lower() for w in before[-_CONTEXT_WORDS:]]
    if any(c in w for c in rec.context for w in words):
        return min(1.0, max(score + _CONTEXT_BOOST, _CONTEXT_MIN))
    return score


def _plausible(entity: str, text: str, start: int, end: int) -> bool:
    """Reject matches that are part of something larger than the value they claim."""
    following = text[end : end + 1]
    preceding = text[start - 1 : start] if start else ""
    if entity == "URL":
        # Presidio's URL pattern has no closing boundary: "Owen.Am" in "Owen.Ambur@x.net".
        return not (following.isalnum() or following == "@" or preceding == "@")
    if entity == "IP_ADDRESS":
        return _plausible_ip(text, start, end)
    value = text[start:end]
    if entity == "PHONE_NUMBER":
        # Not a date, an address, decimals, a piece of an identifier or of a decimal
        # number ("_01780502-bb4e-11ec", "46.383333"), nor a number labelled as an id.
        glued = (preceding and preceding in "_.") or (
            following in ("-", "_") and text[end + 1 : end + 2].isalnum()
        )
        return not (
            glued
            or _in_digit_group(text, start, end)
            or len(_DIGIT.findall(value)) > 15  # longer than any E.164 number: a card
            or _DATE_LIKE.fullmatch(value)
            or _ISO_DATE_FIRST.match(value)
            or _SSN_LIKE.fullmatch(value)
            or _is_ipv4(value)
            or _DECIMALS.match(value + " ")
            or _NOT_PHONE_LABEL.search(text, max(0, start - 24), start)
        )
    if entity == "EMAIL_ADDRESS":
        return True
    # Ids, cards, IBANs: not glued to a word, a "+" or another group of digits (a PESEL
    # "found" inside an IBAN, a VAT number inside a phone number).
    if preceding.isalnum() or preceding == "+" or following.isalnum():
        return False
    before2, after2 = text[max(0, start - 2) : start], text[end : end + 2]
    grouped_before = len(before2) == 2 and before2[0].isdigit() and before2[1] in " -."
    grouped_after = len(after2) == 2 and after2[1].isdigit() and after2[0] in " -"
    return not (grouped_before or grouped_after)


def _in_digit_group(text: str, start: int, end: int) -> bool:
    """Between two other groups of digits: "3736 076311 34633" is one card number."""
    before2, after2 = text[max(0, start - 2) : start], text[end : end + 2]
    return (
        len(before2) == 2
        and before2[0].isdigit()
        and before2[1] == " "
        and len(after2) == 2
        and after2[0] == " "
        and after2[1].isdigit()
    )


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return total % 10 == 0


def _plausible_ip(text: str, start: int, end: int) -> bool:
    """Reject the section and version numbers that IPv4 patterns match in reports."""
    value = text[start:end].split("/")[0]
    if ":" in value:
        return True  # IPv6: Presidio already validated it with ipaddress
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    if _DOTTED_BEFORE.search(text, max(0, start - 2), start) or _DOTTED_AFTER.match(text, end):
        return False  # part of a longer dotted number: 1.1.4.2.1
    octets = [int(o) for o in value.split(".")]
    if all(o < 10 for o in octets):
        return False  # 1.2.3.4 is an outline number far more often than an address
    if all(o < 32 for o in octets) and re.match(r"[.)][ \t\n]", text[end : end + 2]):
        return False  # "5.2.1.10. Pollution Reduction": a numbered heading
    return not _VERSION_WORDS.search(text, max(0, start - 24), start)


def _deny_pattern(terms: Sequence[Any]) -> re.Pattern[str] | None:
    if not terms:
        return None
    values = sorted({t.value.strip() for t in terms if t.value.strip()}, key=len, reverse=True)
    alternatives = [r"\s+".join(re.escape(w) for w in v.split()) for v in values]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def _norm(value: str) -> str:
    """Allow/deny-list comparison form: case-folded words, no article or outer punctuation."""
    words = value.casefold().split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words).strip(".,;:!?\"'()[]{}")


# --------------------------------------------------------------------------- addresses

#: A word of a street name: capitalised, or an ordinal ("5th", "3e").
_CAP = r"(?:\p{Lu}[\p{L}'’.\-]*|\d{1,3}(?:st|nd|rd|th|e|er))"
_TOWN_WORD = r"\p{Lu}[\p{L}'’]*(?:-\p{L}[\p{L}'’]*)*"
_TOWN = (
    rf"{_TOWN_WORD}(?:[ \t]+(?:(?:am|an|der|im|sur|de|la|le|les|del|di|on|upon|en)[ \t]+)?"
    rf"{_TOWN_WORD}){{0,3}}"
)
_SEP = r"(?:[ \t]*,[ \t]*(?:\r?\n[ \t]*)?|[ \t]*\r?\n[ \t]*)"  # a comma and/or a line break
_GAP = rf"(?:{_SEP}|[ \t]+)"
_UNIT = (
    r"(?:(?i:suite|ste|apt|apartment|unit|flat|floor|room|studio|piso|puerta|planta|bajo|"
    r"escalera|esc|piano|interno|int|scala|étage|etage|bât|appartement|appt|wohnung|whg)"
    r"\.?[ \t]*#?[\w/-]{1,6})"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"
_US_STATE_ZIP = r"[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?"
_ZIP = r"(?:[A-Z]{1,2}-)?\d{4,5}"
#: After the street: a unit, then the town and its postcode in the orders in use.
_TAIL = (
    rf"(?:{_GAP}{_UNIT})?"
    rf"(?:{_GAP}(?:{_ZIP},?[ \t]+{_TOWN}(?:[ \t]+\(?[A-Z]{{2}}\)?)?"
    rf"|{_TOWN}{_SEP}(?:{_US_STATE_ZIP}|{_UK_POSTCODE}|{_ZIP})"
    rf"|{_TOWN}[ \t]+(?:{_US_STATE_ZIP}|{_UK_POSTCODE})"
    rf"|{_UK_POSTCODE}))?"
)
_NUMBER = r"\d{1,5}[A-Za-z]?"
#: USPS street suffixes, minus those that are ordinary words after a number in reports
#: ("5 Key Points", "2 Data Center").
_EN_TYPES = (
    "Street|St|Avenue|Ave|Road|Rd|Roads|Boulevard|Blvd|Lane|Ln|Drive|Dr|Drives|Court|Ct|"
    "Courts|Place|Pl|Square|Sq|Terrace|Ter|Way|Ways|Parkway|Pkwy|Parkways|Highway|Hwy|"
    "Circle|Cir|Crescent|Close|Row|Plaza|Alley|Trail|Trl|Pike|Crossing|Ferry|Fork|Forks|"
    "Hollow|Island|Islands|Shoal|Shoals|Shore|Shores|Pines|Village|Villages|Green|Greens|"
    "Grove|Groves|Heights|Hill|Hills|Ridge|Ridges|Springs|Valley|Vista|Walk|Estates|"
    "Gardens|Harbor|Harbour|Haven|Junction|Knoll|Knolls|Landing|Loop|Manor|Meadow|Meadows|"
    "Mews|Mill|Mills|Mount|Orchard|Ranch|Rapids|Summit|Turnpike|Wharf|Lake|Lakes|Prairie|"
    "Brook|Brooks|Canyon|Causeway|Cliff|Cliffs|Cove|Coves|Creek|Expressway|Falls|Flat|Flats|"
    "Ford|Forest|Freeway|Gateway|Glen|Inlet|Lodge|Motorway|Oval|Passage|Stravenue|Tunnel|"
    "Viaduct|Ville|Wells|Bypass|Bluff|Bluffs|Bridge|Crest|Curve|Port|Ports"
)
_FR_TYPES = (
    "rue|avenue|av\\.|boulevard|bd|place|chemin|allée|impasse|quai|route|cours|square|passage|"
    "voie|cité|villa|sentier|faubourg|rond-point|promenade|esplanade|résidence|hameau|ruelle"
)
_DE_SUFFIXES = (
    "straße|strasse|str\\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|steig|pfad|markt|"
    "graben|kamp|wall"
)
_ES_TYPES = (
    "Calle|C/|C\\.(?=[ \\t]+de)|Via|Avenida|Avda\\.?|Av\\.|Paseo|Pº|Plaza|Pza\\.?|Carrera|"
    "Camino|Ronda|Travesía|"
    "Glorieta|Carretera|Ctra\\.?|Rambla|Alameda|Cuesta|Callejón|Pasaje|Pasadizo|Urbanización|"
    "Urb\\.|Vía|Vial|Acceso|Cañada|Bajada|Subida|Senda|Vereda|Polígono|Plazuela|Muelle"
)
_IT_TYPES = (
    "Via|Viale|V\\.le|Piazza|P\\.za|Piazzale|Corso|C\\.so|Largo|Vicolo|Strada|Contrada|"
    "Lungomare|Lungotevere|Borgo|Incrocio|Canale|Rotonda|Stretto|Salita|Traversa|Vico|"
    "Galleria|Località|Loc\\.|Campo|Fondamenta|Frazione|Fraz\\."
)
_STREET_WORDS = rf"{_CAP}(?:[ \t]+{_CAP}){{0,3}}"
_ADDRESSES = (
    # en: 221B Baker Street / 1600 Pennsylvania Avenue NW, Washington, DC 20500
    rf"{_NUMBER}(?:[ \t]+{_CAP}){{1,4}}[ \t]+(?:{_EN_TYPES})\b\.?"
    rf"(?:[ \t]+(?:NW|NE|SW|SE|N|S|E|W)\b)?{_TAIL}",
    # en, lines ending in a UK postcode or a US state and ZIP: Flat 7, Lewis Pines, Leeds, L9 2EN
    rf"(?:{_UNIT}{_GAP}(?:{_NUMBER}[ \t]+)?|{_NUMBER}[ \t]+){_STREET_WORDS}(?:[ \t]+{_UNIT})?"
    rf"(?:{_SEP}{_STREET_WORDS}){{0,2}}{_GAP}(?:{_US_STATE_ZIP}|{_UK_POSTCODE})(?!\w)",
    # fr: 12 rue de la Paix, 75002 Paris / chemin des Vignes, 24624 Jacobnec
    rf"(?:\d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+)?(?i:{_FR_TYPES})[ \t]+"
    rf"(?:(?:de la|de l'|du|des|de|d'|la|le|l'|les)[ \t]*)?{_CAP}"
    rf"(?:[ \t\-]+(?:(?:de|du|des|la|le|les|et|sur|en|d'|l')[ \t]*)?{_CAP}){{0,4}}{_TAIL}",
    # de: Hauptstraße 5, 10115 Berlin / Patrizia-Hänel-Weg 3-5 / Berliner Straße 12a
    rf"(?:\p{{Lu}}\p{{L}}*(?:{_DE_SUFFIXES})|(?:\p{{Lu}}\p{{L}}+-)+\p{{Lu}}\p{{L}}*"
    rf"|\p{{Lu}}\p{{L}}+[ \t]+(?:Straße|Strasse|Str\.|Weg|Gasse|Platz|Allee|Ring|Damm|Ufer))"
    rf"[ \t]+\d{{1,4}}[ \t]?[a-zA-Z]?(?:[ \t]*[-/][ \t]*\d{{1,4}}[a-z]?)?(?!\w){_TAIL}",
    # es: Calle Mayor 3 / Calle de Alcalá, 42, 28014 Madrid
    rf"(?:{_ES_TYPES})[ \t]+(?:(?:de la|de los|de las|del|de|la|el|los|las)[ \t]+)?{_CAP}"
    rf"(?:[ \t]+(?:(?:de|del|la|las|los|y)[ \t]+)?{_CAP}){{0,4}},?[ \t]+"
    rf"(?:n[º°o]\.?[ \t]*)?\d{{1,4}}(?:[ \t]?[A-Za-z](?!\w))?"
    rf"(?:,?[ \t]+\d{{1,2}}[ºª°][ \t]?[A-Za-z]?)?{_TAIL}",
    # it: Via Roma 10 / Via Roma, 10, 00184 Roma (RM)
    rf"(?:{_IT_TYPES})[ \t]+(?:(?:del|della|dei|degli|delle|di|da|dal|dello|San|Santa|S\.)[ \t]+)?"
    rf"{_CAP}(?:[ \t]+(?:(?:del|della|dei|degli|delle|di|e)[ \t]+)?{_CAP}){{0,4}},?[ \t]+"
    rf"(?:n\.?[ \t]*)?\d{{1,4}}(?:/?[A-Za-z](?!\w))?{_TAIL}",
)


@lru_cache(maxsize=1)
def _address_pattern() -> Any:
    import regex

    return regex.compile("|".join(f"(?<![\\w-])(?:{a})" for a in _ADDRESSES))


def _trim_address(text: str, start: int, end: int) -> tuple[int, int]:
    while end > start and text[end - 1] in " \t\r\n,;:":
        end -= 1
    # A final dot ends the sentence unless it closes an abbreviation ("Ave.").
    if text[end - 1 : end] == "." and not re.search(r"\b[A-Z][a-z]{0,3}\.$", text[start:end]):
        end -= 1
    return start, end
