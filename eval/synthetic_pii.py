"""Labelled synthetic business documents for measuring PII detection recall and precision.

    .venv/bin/python -m eval.synthetic_pii --n 300 --seed 7 --out /tmp/synthetic_pii.jsonl

Documents are rendered from 57 hand-written templates in the shapes of real enterprise
documents (e-mails with headers and signature blocks, HR letters, reviews, contract
preambles and signature pages, minutes, incident reports, invoices, CSV exports, chat and
auth logs, payslips, directories, card disputes) filled with Faker values. Every gold span
is checked while rendering: ``text[start:end]`` is the value, never padded, and card, IBAN,
SSN, NIF/NIE and codice fiscale values pass their checksums. Same arguments, same output.

Distribution for the defaults (300 docs, seed 7, all five languages):

- Languages 2:1:1:1:1 (en 100, fr/de/es/it 50 each); templates en 24, fr 8, de 8, es 8,
  it 9, drawn round-robin within a language so each is used about equally often.
- Gold spans: PERSON 1552, EMAIL_ADDRESS 294, ORGANIZATION 211, ADDRESS 204, PHONE_NUMBER
  144, IBAN_CODE 91, LOCATION 83, CREDIT_CARD 77, IP_ADDRESS 66, IT_FISCAL_CODE 47, US_SSN
  32, ES_NIF 31, ES_NIE 24 (``ES_NIE`` is Presidio's name). For a tighter estimate of a
  0.99 recall goal on the rarer types, generate more documents (``--n 1000``).
- People: Faker names of the document's locale (en: en_US or en_GB); 25 % of the people in
  en documents and 10 % elsewhere come from another locale (an "Anna Müller" in an English
  e-mail). 15 % get a particle or compound surname (van der Berg, de la Cruz, O'Brien,
  D'Angelo); half the Spanish ones carry two surnames. A person recurs in a document as
  full name, honorific + surname (Dr/Ms/M./Mme/Herr/Frau/Sr./Sig.ra; the honorific is
  outside the span), surname alone (also opening a sentence, capitalised, and possessive
  "Smith's" / "Müllers"), first name alone, "SURNAME/FIRST" booking style, "Surname,
  First", upper-case surname ("Nom : DUPONT"), and inside lower-case e-mail local parts.
- Structured values: phones in E.164, international, "+44 (0)...", "0044 ...", national
  with spaces/dots/dashes/parentheses/slash (all valid for ``phonenumbers``); cards Visa,
  Mastercard (incl. 2-series), Amex, Discover, grouped or plain; IBANs grouped or compact;
  IPv4 (80 %) and IPv6; addresses on one line or several (one ADDRESS span).
- Unlabelled distractors: product names, departments, job titles, capitalised defined
  terms ("the Effective Date", "Confidential Information"), dates (one style per
  document), amounts, reference numbers ("GAO-23-105", "INC0012345"), section numbers
  ("3.1.4"), versions ("v2.10.1"), VAT/SIRET/CIF numbers, extensions, times. Templates
  name no real place outside LOCATION and ADDRESS spans.

Baseline (bare Presidio 2.2 predefined recognizers + en_core_web_md for all five
languages, threshold 0.4): PERSON recall 0.71 (en docs 0.80; full names 0.86, a surname
or first name alone 0.53), STRUCTURED recall 0.75: it misses cards outside en documents
and 2-series/65xx cards, Spanish national phones, and every ADDRESS (no recognizer).
These figures move whenever a template changes; the CLI prints the current counts.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers

from eval._pii_templates import SOURCES

#: Gold entity types; ``STRUCTURED`` are the ones with a recall goal of 0.99.
ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "ADDRESS",
    "ORGANIZATION",
    "LOCATION",
)
STRUCTURED = ENTITIES[1:11]
LANGUAGES = ("en", "fr", "de", "es", "it")
LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT")

Span = tuple[int, int, str]


@dataclass(frozen=True)
class SyntheticDoc:
    doc_id: str
    language: str
    kind: str
    text: str
    #: Gold ``(start, end, entity)``; PERSON spans never include the honorific.
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Template:
    language: str
    kind: str
    text: str


# --------------------------------------------------------------------------- checksums
# python-stdnum is not a dependency; these are the few checks the generator relies on.


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += (d * 2 - 9 if d > 4 else d * 2) if i % 2 else d
    return len(digits) >= 12 and total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", s):
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


_ES_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_id_ok(value: str) -> bool:
    """Spanish NIF (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter)."""
    v = value.upper()
    if not re.fullmatch(r"[XYZ0-9]\d{7}[A-Z]", v):
        return False
    number = int(str("XYZ".index(v[0])) + v[1:8]) if v[0] in "XYZ" else int(v[:8])
    return _ES_LETTERS[number % 23] == v[8]


# Values of 0-9 / A-Z at odd positions (the code's own table; even positions count 0-25).
# fmt: off
_CF_ODD = (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22,
           25, 24, 23)
# fmt: on


def it_fiscal_code_ok(code: str) -> bool:
    c = code.upper()
    if not re.fullmatch(r"[A-Z0-9]{15}[A-Z]", c):
        return False
    total = 0
    for i, ch in enumerate(c[:15]):
        index = int(ch) if ch.isdigit() else ord(ch) - 65
        total += _CF_ODD[index] if i % 2 == 0 else index  # positions counted from 1
    return chr(65 + total % 26) == c[15]


def us_ssn_ok(ssn: str) -> bool:
    m = re.fullmatch(r"(\d{3})[- ]?(\d{2})[- ]?(\d{4})", ssn)
    if not m or m[1] in ("000", "666") or m[1][0] == "9":
        return False
    return m[2] != "00" and m[3] != "0000"


#: Checksum validators of the structured types the generator writes.
CHECKS = {
    "CREDIT_CARD": luhn_ok,
    "IBAN_CODE": iban_ok,
    "ES_NIF": es_id_ok,
    "ES_NIE": es_id_ok,
    "IT_FISCAL_CODE": it_fiscal_code_ok,
    "US_SSN": us_ssn_ok,
}


# --------------------------------------------------------------------------- values

# National significant numbers: (prefix, random digits after it); invalid draws are retried.
_PHONE_SHAPES = {
    "US": (("212", 7), ("312", 7), ("415", 7), ("617", 7), ("713", 7), ("206", 7)),
    "GB": (("20", 8), ("161", 7), ("131", 7), ("117", 7), ("74", 8), ("77", 8)),
    "FR": (("1", 8), ("4", 8), ("6", 8), ("7", 8)),
    "DE": (("30", 8), ("89", 7), ("40", 8), ("221", 7), ("151", 8), ("176", 8)),
    "ES": (("91", 7), ("93", 7), ("6", 8), ("96", 7)),
    "IT": (("02", 8), ("06", 8), ("3", 9), ("011", 7)),
}
_REGION = {"en_US": "US", "en_GB": "GB", "fr_FR": "FR", "de_DE": "DE", "es_ES": "ES", "it_IT": "IT"}
# en_US/en_GB Faker cities are invented ("North Cynthiaport"); real ones read like real mail.
# fmt: off
_EN_CITIES = ("Leeds", "Manchester", "Bristol", "Glasgow", "Boston", "Denver", "Chicago",
              "Seattle", "Dublin", "Toronto", "Cardiff")
# fmt: on
_LEGAL_FORMS = {"en_US": "Inc.", "en_GB": "Ltd", "fr_FR": "SAS", "de_DE": "GmbH"}
_LEGAL_FORMS |= {"es_ES": "S.L.", "it_IT": "S.p.A."}
_MILITARY = re.compile(r"\b(Box|PSC|USNS|USS|USCGC|USNV|FPO|APO|DPO)\b")
_PARTICLES = {
    "en": ("O'Brien", "O'Sullivan", "McAllister", "van der Berg", "Fitzgerald-Hughes"),
    "fr": ("de la Fontaine", "Le Goff", "d'Aubigné", "Saint-Clair", "du Plessis"),
    "de": ("von Ahlen", "van der Berg", "zu Stolberg", "Schulte-Brinkmann", "Meyer-Özdemir"),
    "es": ("de la Cruz", "del Río", "de los Santos", "García-Rubio", "Ruiz de Alda"),
    "it": ("De Luca", "Di Stefano", "D'Angelo", "Lo Russo", "Dal Molin"),
}
_HONORIFICS = {  # (female, male)
    "en": (("Ms", "Mrs", "Ms.", "Dr", "Dr."), ("Mr", "Mr.", "Dr", "Dr.")),
    "fr": (("Mme", "Madame", "Dr"), ("M.", "Monsieur", "Dr")),
    "de": (("Frau", "Frau Dr."), ("Herr", "Herr Dr.")),
    "es": (("Sra.", "Dña.", "Dra."), ("Sr.", "D.", "Dr.")),
    "it": (("Sig.ra", "Dott.ssa", "Avv."), ("Sig.", "Dott.", "Ing.")),
}
# Per language: "|"-separated job titles, departments, closing phrases and month names.
_WORD_LISTS = {
    "en": (
        "Head of Procurement|HR Business Partner|Financial Controller|IT Security Manager|"
        "Senior Data Analyst|Operations Director|Legal Counsel",
        "Procurement|Human Resources|Finance|Legal & Compliance|IT Operations|"
        "Customer Success|Internal Audit",
        "Best regards|Kind regards|Many thanks|Regards|Best wishes",
        "January|February|March|April|May|June|July|August|September|October|November|December",
    ),
    "fr": (
        "Responsable des achats|Chargée de recrutement|Contrôleur de gestion|"
        "Directeur des opérations|Juriste|Cheffe de projet",
        "Achats|Ressources humaines|Finance|Juridique|Exploitation",
        "Cordialement|Bien cordialement|Bien à vous",
        "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre",
    ),
    "de": (
        "Leiterin Einkauf|Personalreferent|Controller|Projektleiterin|"
        "IT-Sicherheitsbeauftragter|Geschäftsführer",
        "Einkauf|Personal|Finanzen|Recht & Compliance|IT-Betrieb",
        "Mit freundlichen Grüßen|Viele Grüße|Beste Grüße",
        "Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember",
    ),
    "es": (
        "Responsable de Compras|Técnica de RR. HH.|Controller financiero|"
        "Director de Operaciones|Jefa de proyecto|Asesor jurídico",
        "Compras|Recursos Humanos|Finanzas|Asesoría Jurídica|Sistemas",
        "Un saludo|Saludos cordiales|Atentamente",
        "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre",
    ),
    "it": (
        "Responsabile Acquisti|HR Business Partner|Controller|Direttore Operativo|"
        "Project Manager|Consulente legale",
        "Acquisti|Risorse Umane|Amministrazione|Ufficio Legale|Sistemi",
        "Cordiali saluti|Un saluto|Distinti saluti",
        "gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|"
        "novembre|dicembre",
    ),
}
_WORDS = {
    lang: dict(
        zip(("role", "dept", "close", "month"), (tuple(x.split("|")) for x in lists), strict=True)
    )
    for lang, lists in _WORD_LISTS.items()
}
# fmt: off
_PRODUCTS = ("Vega Analytics Suite", "Orion Gateway", "Atlas CRM", "Nimbus Data Platform",
             "Helix Payroll", "Falcon Dashboard", "Quasar ERP", "Polaris Service Portal")
# fmt: on
_DATE_FORMATS = {
    "en": ("{d} {M} {y}", "{M} {d}, {y}", "{y}-{mm}-{dd}"),
    "fr": ("{d} {M} {y}", "{dd}/{mm}/{y}"),
    "de": ("{d}. {M} {y}", "{dd}.{mm}.{y}"),
    "es": ("{d} de {M} de {y}", "{dd}/{mm}/{y}"),
    "it": ("{d} {M} {y}", "{dd}/{mm}/{y}"),
}
_AMOUNT_FORMATS = {
    "en": ("EUR {en}", "£{en}", "${en}"),
    "fr": ("{eu} €",),
    "de": ("{eu} EUR", "{eu} €"),
    "es": ("{eu} €",),
    "it": ("€ {eu}",),
}
# fmt: off
_REFS = ("GAO-{yy}-{n3}", "PO-20{yy}-00{n3}", "INC00{n5}", "CHG-{n5}", "SR-{n5}",
         "TKT-20{yy}-{n4}", "REQ-1{n5}")
# fmt: on
_GERMAN_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_EMAIL_LOCALS = ("{f}.{l}", "{f0}{l}", "{f}_{l}", "{l}.{f}", "{f0}.{l}", "{f}{l}", "{l}")


def _fold(name: str) -> str:
    """An e-mail local-part fragment: lower case ASCII, no spaces or apostrophes."""
    s = unicodedata.normalize("NFKD", name.lower().translate(_GERMAN_FOLD))
    return re.sub(r"[^a-z0-9-]", "", s.encode("ascii", "ignore").decode())


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10**n)).zfill(n)


def _phone(rng: random.Random, region: str) -> str:
    for _ in range(200):
        prefix, n = rng.choice(_PHONE_SHAPES[region])
        cc = phonenumbers.country_code_for_region(region)
        number = phonenumbers.parse(f"+{cc}{prefix}{_digits(rng, n)}")
        if phonenumbers.is_valid_number(number):
            break
    else:  # pragma: no cover - the shapes above are valid for most draws
        raise RuntimeError(f"no valid {region} phone number drawn; fix _PHONE_SHAPES")
    fmt = phonenumbers.PhoneNumberFormat
    intl = phonenumbers.format_number(number, fmt.INTERNATIONAL)
    national = phonenumbers.format_number(number, fmt.NATIONAL)
    roll = rng.random()
    if roll < 0.2:
        return phonenumbers.format_number(number, fmt.E164)
    if roll < 0.45:
        return intl
    if roll < 0.55:  # "+44 (0)20 ..." where a trunk 0 exists, else the "0044 ..." prefix
        if region in ("GB", "DE", "FR"):
            return intl.replace(" ", " (0)", 1)
        return "00" + intl[1:]
    digits = re.sub(r"\D", "", national)
    if region == "US":  # national is "(212) 555-0143"
        dashed = f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
        return rng.choice((national, dashed, dashed.replace("-", ".")))
    groups = national.split(" ")
    variants = [national, national, ".".join(groups), "-".join(groups)]
    if region in ("DE", "GB") and len(groups) > 1:
        variants.append(f"({groups[0]}) {' '.join(groups[1:])}")
    if region == "DE" and len(groups) > 1:
        variants.append(f"{groups[0]}/{''.join(groups[1:])}")
    return rng.choice(variants)


def _es_id(rng: random.Random, nie_prefix: str) -> str:
    # Faker's es_ES nif()/nie() draw from the unseeded global random: not reproducible.
    body = _digits(rng, 7 if nie_prefix else 8)
    number = int(str("XYZ".index(nie_prefix)) + body) if nie_prefix else int(body)
    return f"{nie_prefix}{body}{_ES_LETTERS[number % 23]}"


def _grouped(value: str, sizes: Sequence[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(value[i : i + size])
        i += size
    if i < len(value):
        out.append(value[i:])
    return sep.join(part for part in out if part)


# --------------------------------------------------------------------------- rendering

_FIELD = re.compile(r"\{([A-Za-z]+\d?)(?:\.([A-Za-z]+))?\}")
_LABELS = {
    "org": "ORGANIZATION",
    "city": "LOCATION",
    "addr": "ADDRESS",
    "addrml": "ADDRESS",
    "phone": "PHONE_NUMBER",
    "email": "EMAIL_ADDRESS",
    "iban": "IBAN_CODE",
    "card": "CREDIT_CARD",
    "ip": "IP_ADDRESS",
    "ssn": "US_SSN",
    "nif": "ES_NIF",
    "nie": "ES_NIE",
    "cf": "IT_FISCAL_CODE",
}


@dataclass(frozen=True)
class _Person:
    first: str
    last: str
    hon: str
    locale: str
    email: str
    phone: str
    address: str  # lines joined by "\n"
    role: str


class _Doc:
    """Values of one document: people by slot letter, other values by placeholder name."""

    def __init__(self, rng: random.Random, fake: Any, language: str, template: Template):
        self.rng, self.fake, self.lang = rng, fake, language
        en_locale = "en_US" if "{ssn}" in template.text else rng.choice(LOCALES[:2])
        self.locale = en_locale if language == "en" else LOCALES[LANGUAGES.index(language) + 1]
        self.domains = [fake[self.locale].domain_name() for _ in range(2)]
        self.date_format = rng.choice(_DATE_FORMATS[language])  # one style per document
        self.people: dict[str, _Person] = {}
        self.cache: dict[str, str] = {}

    def person(self, slot: str) -> _Person:
        if slot in self.people:
            return self.people[slot]
        rng, lang = self.rng, self.lang
        locale = self.locale
        if rng.random() < (0.25 if lang == "en" else 0.10):
            locale = rng.choice(LOCALES)
        fake = self.fake[locale]
        female = rng.random() < 0.5
        first = fake.first_name_female() if female else fake.first_name_male()
        last = fake.last_name()
        person_lang = locale[:2]
        if rng.random() < 0.15:
            last = rng.choice(_PARTICLES[person_lang])
        elif person_lang == "es" and rng.random() < 0.5:
            last = f"{last} {fake.last_name()}"
        local = rng.choice(_EMAIL_LOCALS).format(
            f=_fold(first), f0=_fold(first)[:1], l=_fold(last).replace("-", "")
        )
        domain = fake.free_email_domain() if rng.random() < 0.2 else rng.choice(self.domains)
        person = _Person(
            first=first,
            last=last,
            hon=rng.choice(_HONORIFICS[lang][0 if female else 1]),
            locale=locale,
            email=f"{local}@{domain}",
            phone=_phone(rng, _REGION[locale]),
            address=self._address(locale),
            role=rng.choice(_WORDS[lang]["role"]),
        )
        self.people[slot] = person
        return person

    def _address(self, locale: str) -> str:
        for _ in range(20):
            raw = self.fake[locale].address()
            if not _MILITARY.search(raw):
                break
        return "\n".join(line.strip() for line in raw.splitlines() if line.strip())

    def person_value(self, slot: str, field: str | None) -> tuple[str, str | None]:
        p = self.person(slot)
        values: dict[str, tuple[str, str | None]] = {
            "": (f"{p.first} {p.last}", "PERSON"),
            "first": (p.first, "PERSON"),
            "last": (p.last, "PERSON"),
            "FIRST": (p.first.upper(), "PERSON"),
            "LAST": (p.last.upper(), "PERSON"),
            "lf": (f"{p.last}, {p.first}", "PERSON"),
            "hon": (p.hon, None),
            "HON": (p.hon.upper().rstrip("."), None),
            "role": (p.role, None),
            "email": (p.email, "EMAIL_ADDRESS"),
            "phone": (p.phone, "PHONE_NUMBER"),
            "addr": (p.address.replace("\n", ", "), "ADDRESS"),
            "addrml": (p.address, "ADDRESS"),
        }
        if (field or "") not in values:
            raise KeyError(f"unknown person field {field!r} in a template; see _Doc.person_value")
        return values[field or ""]

    def value(self, key: str) -> tuple[str, str | None]:
        kind = key.rstrip("0123456789")
        if key not in self.cache:
            self.cache[key] = self._new_value(kind)
        return self.cache[key], _LABELS.get(kind)

    def _new_value(self, kind: str) -> str:
        rng, fake, lang = self.rng, self.fake[self.locale], self.lang
        en_us = self.fake["en_US"]
        if kind in ("date", "isodate"):
            y, m, d = rng.randrange(2019, 2026), rng.randrange(1, 13), rng.randrange(1, 29)
            if kind == "isodate":
                return f"{y}-{m:02d}-{d:02d}"
            return self.date_format.format(
                d=d, dd=f"{d:02d}", mm=f"{m:02d}", y=y, M=_WORDS[lang]["month"][m - 1]
            )
        if kind == "amount":
            whole, cents = rng.randrange(120, 250_000), rng.choice((0, 0, rng.randrange(100)))
            en, eu = f"{whole:,}.{cents:02d}", f"{whole:,}".replace(",", ".") + f",{cents:02d}"
            return rng.choice(_AMOUNT_FORMATS[lang]).format(en=en, eu=eu)
        simple = {
            "time": lambda: f"{rng.randrange(7, 19):02d}:{rng.choice((0, 15, 30, 45)):02d}",
            "n": lambda: str(rng.randrange(100, 1000)),
            "ref": lambda: rng.choice(_REFS).format(
                yy=rng.randrange(19, 26), n3=_digits(rng, 3), n4=_digits(rng, 4), n5=_digits(rng, 5)
            ),
            "version": lambda: (
                rng.choice(("v", "", ""))
                + ".".join(str(rng.randrange(0, 12)) for _ in range(rng.choice((2, 3))))
            ),
            "section": lambda: ".".join(
                str(rng.randrange(1, 10)) for _ in range(rng.randrange(2, 4))
            ),
            "product": lambda: rng.choice(_PRODUCTS),
            "dept": lambda: rng.choice(_WORDS[lang]["dept"]),
            "close": lambda: rng.choice(_WORDS[lang]["close"]),
            "org": self._org,
            "city": lambda: rng.choice(_EN_CITIES) if lang == "en" else fake.city(),
            "addr": lambda: self._address(self.locale).replace("\n", ", "),
            "addrml": lambda: self._address(self.locale),
            "phone": lambda: _phone(rng, _REGION[self.locale]),
            "iban": lambda: self._iban(fake.iban()),
            "card": self._card,
            "ip": lambda: en_us.ipv4_public() if rng.random() < 0.8 else en_us.ipv6(),
            "ssn": lambda: self.fake["en_US"].ssn(),
            "nif": lambda: _es_id(rng, ""),
            "nie": lambda: _es_id(rng, rng.choice("XYZ")),
            "cf": lambda: self.fake["it_IT"].ssn(),
        }
        if kind not in simple:
            raise KeyError(f"unknown placeholder {kind!r} in a template; see _Doc._new_value")
        return simple[kind]()

    def _org(self) -> str:
        name = str(self.fake[self.locale].company())
        # Faker's bare-surname companies ("Thies") read as people; real letterheads add a form.
        return name if " " in name else f"{name} {_LEGAL_FORMS[self.locale]}"

    def _iban(self, iban: str) -> str:
        return _grouped(iban, [4] * 9, " ") if self.rng.random() < 0.6 else iban

    def _card(self) -> str:
        rng = self.rng
        number = self.fake["en_US"].credit_card_number(
            rng.choice(("visa16", "visa16", "mastercard", "amex", "discover"))
        )
        roll = rng.random()
        if roll < 0.35:
            return str(number)
        sizes = (4, 6, 5) if len(number) == 15 else (4, 4, 4, 4)
        return _grouped(number, sizes, " " if roll < 0.85 else "-")


def _render(template: Template, doc: _Doc) -> tuple[str, tuple[Span, ...]]:
    parts: list[str] = []
    spans: list[Span] = []
    length, pos = 0, 0
    for m in _FIELD.finditer(template.text):
        literal = template.text[pos : m.start()]
        parts.append(literal)
        length += len(literal)
        key, field = m.group(1), m.group(2)
        if len(key) == 1 and key.isupper():
            value, label = doc.person_value(key, field)
        else:
            value, label = doc.value(key)
        tail = "".join(parts[-2:])[-2:]
        if label == "PERSON" and (length == 0 or tail.endswith("\n") or tail == ". "):
            value = value[:1].upper() + value[1:]  # "van der Berg" opening a sentence
        if label:
            spans.append((length, length + len(value), label))
        parts.append(value)
        length += len(value)
        pos = m.end()
    parts.append(template.text[pos:])
    text = "".join(parts)
    for start, end, label in spans:
        value = text[start:end]
        if not value or value != value.strip():
            raise AssertionError(f"gold {label} span {start}:{end} is empty or padded")
        check = CHECKS.get(label)
        if check and not check(value):
            raise AssertionError(f"gold {label} span {start}:{end} fails its checksum")
    return text, tuple(spans)


def generate(
    n_docs: int = 300, seed: int = 7, languages: Sequence[str] = LANGUAGES
) -> list[SyntheticDoc]:
    """``n_docs`` labelled documents; the same arguments always give the same documents."""
    from faker import Faker

    unknown = sorted(set(languages) - set(LANGUAGES))
    if unknown or not languages:
        raise ValueError(f"unsupported languages {unknown}; use a subset of {LANGUAGES}")
    Faker.seed(seed)  # Faker's shared Random: every locale proxy draws from it
    fake = Faker(list(LOCALES))
    rng = random.Random(seed)
    langs = [lang for lang in LANGUAGES if lang in languages]  # caller's order is irrelevant
    deck: list[str] = []  # en twice per deck: exact 2:1:1:1:1 proportions, shuffled order
    queues: dict[str, list[Template]] = {lang: [] for lang in langs}
    docs = []
    for i in range(n_docs):
        if not deck:
            deck = [lang for lang in langs for _ in range(2 if lang == "en" else 1)]
            rng.shuffle(deck)
        lang = deck.pop()
        if not queues[lang]:  # round-robin over a fresh shuffle: every template gets used
            queues[lang] = [t for t in TEMPLATES if t.language == lang]
            rng.shuffle(queues[lang])
        template = queues[lang].pop()
        text, spans = _render(template, _Doc(rng, fake, lang, template))
        docs.append(SyntheticDoc(f"syn-{seed}-{i:04d}", lang, template.kind, text, spans))
    return docs


# --------------------------------------------------------------------------- scoring


def score(
    docs: Sequence[SyntheticDoc], predicted: Sequence[Sequence[Span]]
) -> dict[str, dict[str, float]]:
    """Per-entity span P/R/F1 plus character-level recall, and STRUCTURED/ALL totals.

    - recall: share of gold spans overlapped by a predicted span of the same type;
    - precision: share of predicted spans overlapping a gold span of the same type;
    - char_recall (the privacy view: was the value hidden?): share of the gold spans'
      letters and digits inside a predicted span of *any* type; separators are left out,
      so an address found as "street" + "city" still counts fully;
    - hidden: share of gold spans with every letter and digit inside predicted spans.
    """
    if len(predicted) != len(docs):
        raise ValueError(
            f"{len(predicted)} predictions for {len(docs)} documents; "
            "pass one sequence of (start, end, entity) spans per document, in order"
        )
    n: dict[str, Counter[str]] = {
        k: Counter() for k in ("gold", "found", "predicted", "correct", "chars", "covered")
    }
    n["hidden"] = Counter()
    for doc, pred in zip(docs, predicted, strict=True):
        covered = bytearray(len(doc.text))
        for start, end, _ in pred:
            covered[max(start, 0) : max(end, 0)] = b"\1" * (min(end, len(doc.text)) - max(start, 0))
        for start, end, entity in doc.spans:
            n["gold"][entity] += 1
            n["found"][entity] += any(
                ps < end and start < pe and pe_type == entity for ps, pe, pe_type in pred
            )
            alnum = [i for i in range(start, end) if doc.text[i].isalnum()]
            hidden = sum(covered[i] for i in alnum)
            n["chars"][entity] += len(alnum)
            n["covered"][entity] += hidden
            n["hidden"][entity] += hidden == len(alnum)
        for ps, pe, pe_type in pred:
            n["predicted"][pe_type] += 1
            n["correct"][pe_type] += any(
                s < pe and ps < e and t == pe_type for s, e, t in doc.spans
            )
    seen = [t for t in ENTITIES if n["gold"][t] or n["predicted"][t]]
    types = seen + sorted(set(n["predicted"]) - set(ENTITIES))
    groups: dict[str, tuple[str, ...]] = {t: (t,) for t in types}
    groups["STRUCTURED"] = STRUCTURED
    groups["ALL"] = ENTITIES  # labelled types only: a DATE_TIME hit is not counted as wrong
    return {
        name: _row({k: sum(c[t] for t in members) for k, c in n.items()})
        for name, members in groups.items()
    }


def _row(c: dict[str, int]) -> dict[str, float]:
    precision = c["correct"] / c["predicted"] if c["predicted"] else 0.0
    recall = c["found"] / c["gold"] if c["gold"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "gold": c["gold"],
        "predicted": c["predicted"],
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "char_recall": round(c["covered"] / c["chars"], 4) if c["chars"] else 0.0,
        "hidden": round(c["hidden"] / c["gold"], 4) if c["gold"] else 0.0,
    }


def format_scores(scores: dict[str, dict[str, float]]) -> str:
    columns = ("gold", "predicted", "precision", "recall", "f1", "char_recall", "hidden")
    lines = [f"{'entity':<16}" + "".join(f"{c:>12}" for c in columns)]
    for name, row in scores.items():
        lines.append(f"{name:<16}" + "".join(f"{row[c]:>12}" for c in columns))
    return "\n".join(lines)


# --------------------------------------------------------------------------- files


def write_jsonl(docs: Sequence[SyntheticDoc], path: Path) -> None:
    with Path(path).open("w", encoding="utf-8") as out:
        for doc in docs:
            row = {**doc.__dict__, "spans": [list(s) for s in doc.spans]}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[SyntheticDoc]:
    docs = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            spans = tuple((int(s), int(e), str(t)) for s, e, t in row.pop("spans"))
            docs.append(SyntheticDoc(**row, spans=spans))
    return docs


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="number of documents")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--languages", default=",".join(LANGUAGES), help="comma-separated")
    ap.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    args = ap.parse_args(argv)
    docs = generate(args.n, args.seed, tuple(args.languages.split(",")))
    write_jsonl(docs, args.out)
    langs = Counter(d.language for d in docs)
    entities = Counter(t for d in docs for _, _, t in d.spans)
    print(f"{len(docs)} documents -> {args.out}", file=sys.stderr)
    print(f"languages: {dict(sorted(langs.items()))}", file=sys.stderr)
    print(f"templates used: {len({(d.language, d.kind) for d in docs})}", file=sys.stderr)
    print(f"spans: {dict(entities.most_common())}", file=sys.stderr)


TEMPLATES: tuple[Template, ...] = tuple(
    Template(lang, *text.split("\n", 1)) for lang, group in SOURCES.items() for text in group
)


if __name__ == "__main__":
    main()
