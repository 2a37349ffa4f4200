"""A small corpus with planted fake PII in eight formats, for the "nothing leaks" test.

    corpus = build_planted_corpus(tmp_path / "docs")
    ...ingest corpus.root into a home, then for every file under the home:
    for value in corpus.searchable():
        for needle in encodings_of(value):
            assert needle not in data

Every value is invented: names chosen to be rare, e-mails at example.com/.org/.de, phones
in ranges reserved for fiction (UK 020 7946 0xxx, US 555-01xx, FR 01 99 00 xx xx, DE
030 23125 xxx) yet valid for ``phonenumbers``, IBANs and cards that are public test
numbers with valid checksums, addresses made up. File names and document titles carry
no PII, so a hit always means a value escaped pseudonymization, not file bookkeeping.
E-mail headers do carry names and addresses (From/To/Cc), as real mail does.
"""

from __future__ import annotations

import contextlib
import csv
import html
import html.entities
import importlib.util
import io
import json
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

THORNBURY = "Margaret Thornbury"
LEFEVRE = "Jean-Baptiste Lefèvre"
WURMBACH = "Anneliese Wurmbach"
MUELLER = "Konstanze Müller-Brandauer"
QUATREFAGES = "Séverine Quatrefages"
PETTIGREW = "Oswin Pettigrew-Hale"

#: Full name -> the other forms the documents use (surname after Ms/M./Frau/Mr, CSV cells,
#: a first-name greeting).
PEOPLE: dict[str, tuple[str, ...]] = {
    THORNBURY: ("Thornbury",),
    LEFEVRE: ("Lefèvre", "Jean-Baptiste"),
    WURMBACH: ("Wurmbach",),
    MUELLER: ("Müller-Brandauer", "Konstanze"),
    QUATREFAGES: ("Quatrefages", "Séverine"),
    PETTIGREW: ("Pettigrew-Hale",),
}

VALUES: dict[str, tuple[str, ...]] = {
    "PERSON": tuple(PEOPLE),
    "EMAIL_ADDRESS": (
        "margaret.thornbury@example.com",
        "jb.lefevre@example.org",
        "a.wurmbach@example.de",
        "k.mueller-brandauer@example.de",
        "severine.quatrefages@example.org",
        "o.pettigrew-hale@example.com",
    ),
    "PHONE_NUMBER": (
        "+44 20 7946 0321",
        "+33 1 99 00 42 17",
        "01 99 00 42 17",
        "+33 1 99 00 73 58",
        "01 99 00 73 58",
        "+49 30 23125 417",
        "+49 30 23125 988",
        "030 23125988",
        "(312) 555-0143",
        "+1 312-555-0143",
    ),
    "IBAN_CODE": (
        "GB29 NWBK 6016 1331 9268 19",
        "GB29NWBK60161331926819",
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "FR14 2004 1010 0505 0001 3M02 606",
        "GB82WEST12345698765432",
        "FR7630006000011234567890189",
    ),
    "CREDIT_CARD": ("4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005"),
    #: The street part, written the same way wherever the address appears.
    "ADDRESS": (
        "27 Quillfeather Lane",
        "42 rue des Cerisiers Bleus",
        "Lindgrabenstraße 14",
        "Holunderstraße 23a",
        "8 impasse des Glycines",
        "1180 Hollowbrook Avenue",
    ),
}


@dataclass(frozen=True)
class PlantedCorpus:
    root: Path
    files: tuple[Path, ...]
    #: entity -> planted values exactly as written in the files
    values: dict[str, tuple[str, ...]]
    #: full name -> the other surface forms used ("Ms Thornbury" -> "Thornbury")
    people: dict[str, tuple[str, ...]]
    #: file name -> every value and surface form written in that file
    by_file: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def searchable(self) -> tuple[str, ...]:
        """Every planted string: values, full names and their other forms, no repeats."""
        items = [v for vs in self.values.values() for v in vs]
        items += [form for forms in self.people.values() for form in forms]
        return tuple(dict.fromkeys(items))


def encodings_of(value: str) -> list[bytes]:
    """The byte forms a leaked value could take in an index, a database, a log or a report.

    UTF-8 (NFC, NFD, lower and upper case), UTF-16 LE/BE, cp1252, JSON ``\\u`` escapes,
    Python ``\\x`` escapes, HTML entities (named, decimal, hex) and percent-encoding.
    """
    out: list[bytes] = []

    def add(data: bytes) -> None:
        if data not in out:
            out.append(data)

    for text in (value, unicodedata.normalize("NFD", value), value.lower(), value.upper()):
        add(text.encode("utf-8"))
    for codec in ("utf-16-le", "utf-16-be", "cp1252"):
        with contextlib.suppress(UnicodeEncodeError):  # cp1252 lacks most of Unicode
            add(value.encode(codec))
    escaped = json.dumps(value)[1:-1]
    add(escaped.encode())
    add("".join(f"\\u{ord(c):04X}" if ord(c) > 127 else c for c in value).encode())
    add(value.encode("unicode_escape"))
    add(html.escape(value).encode())
    for template in ("&#{};", "&#x{:x};", "&#x{:X};"):
        add("".join(template.format(ord(c)) if ord(c) > 127 else c for c in value).encode())
    named = html.entities.codepoint2name
    add("".join(f"&{named[ord(c)]};" if ord(c) in named else c for c in value).encode())
    add(urllib.parse.quote(value, safe="").encode())
    add(urllib.parse.quote_plus(value, safe="").encode())
    add(urllib.parse.quote(value, safe="@").encode())
    return out


# --------------------------------------------------------------------------- documents

POLICY_EN = (
    "All new suppliers are screened by the procurement team before the first purchase "
    "order. Screening covers sanctions lists, financial stability and a site audit for "
    "suppliers of safety-critical parts. Purchase orders above EUR 50,000 need two "
    "approvers, and framework agreements are reviewed every three years. Payment terms are "
    "45 days from receipt of a correct invoice."
)

TXT = f"""Supplier onboarding: Kestrel Precision Castings

{POLICY_EN}

{THORNBURY} signed the supplier agreement on 3 March 2024. Ms Thornbury remains the
contract owner; questions about the agreement go to margaret.thornbury@example.com or
+44 20 7946 0321.

Bank details for refunds: {THORNBURY}, IBAN GB29 NWBK 6016 1331 9268 19.
Correspondence address: 27 Quillfeather Lane, Norwich NR2 4ZQ.

Travel for the site audit was paid with the corporate card 5555 5555 5555 4444 held by
{PETTIGREW}. Mr Pettigrew-Hale can be reached at o.pettigrew-hale@example.com.
"""

MD = f"""# Compte rendu du comité fournisseurs

Date : 12 mars 2024. Présents : {LEFEVRE}, {QUATREFAGES}, {THORNBURY}.

## Politique d'achat

Les nouveaux fournisseurs sont évalués avant toute commande : listes de sanctions,
solidité financière et audit sur site pour les pièces critiques. Au-delà de 50 000 EUR,
une commande exige deux signatures. Les accords-cadres sont revus tous les trois ans.

## Décisions

- M. Lefèvre présente le bilan qualité de Kestrel : 180 ppm de défauts sur le trimestre.
- Mme Quatrefages demande un audit de l'usine avant le renouvellement.
- Mme Thornbury confirme que l'accord fournisseur a été signé le 3 mars 2024.

## Contacts

| Nom | Courriel | Téléphone |
|---|---|---|
| {LEFEVRE} | jb.lefevre@example.org | +33 1 99 00 42 17 |
| {QUATREFAGES} | severine.quatrefages@example.org | +33 1 99 00 73 58 |

Adresse de facturation : {QUATREFAGES}, 8 impasse des Glycines, 31000 Toulouse.
"""

DOCX_PARAGRAPHS = (
    f"Zwischen der Arden Valve Systems GmbH, vertreten durch {MUELLER} (Personalleitung), "
    f"und {WURMBACH}, wohnhaft Lindgrabenstraße 14, 80997 München, wird folgender "
    "Arbeitsvertrag geschlossen.",
    "§ 1 Tätigkeit. Frau Wurmbach wird ab dem 1. April 2024 als Qualitätsingenieurin im "
    "Werk München eingestellt.",
    "§ 2 Vergütung. Das Bruttojahresgehalt beträgt 68.000 EUR. Die Zahlung erfolgt auf das "
    "Konto IBAN DE89 3704 0044 0532 0130 00.",
    "§ 3 Arbeitszeit. Die regelmäßige Arbeitszeit beträgt 38 Stunden pro Woche. Überstunden "
    "werden innerhalb von drei Monaten durch Freizeit ausgeglichen.",
    "§ 4 Dienstreisen. Für Dienstreisen erhält Frau Wurmbach die Firmenkreditkarte "
    "3782 822463 10005.",
    "Kontakt: Frau Müller-Brandauer, k.mueller-brandauer@example.de, +49 30 23125 988; "
    f"{WURMBACH}, a.wurmbach@example.de, +49 30 23125 417.",
)

XLSX_ROWS = (
    ("Name", "Email", "Phone", "IBAN"),
    (THORNBURY, "margaret.thornbury@example.com", "+44 20 7946 0321", "GB29NWBK60161331926819"),
    (WURMBACH, "a.wurmbach@example.de", "+49 30 23125 417", "DE89370400440532013000"),
    (PETTIGREW, "o.pettigrew-hale@example.com", "+1 312-555-0143", "GB82WEST12345698765432"),
    (
        QUATREFAGES,
        "severine.quatrefages@example.org",
        "+33 1 99 00 73 58",
        "FR7630006000011234567890189",
    ),
)

CSV_ROWS = (
    ("nom", "prénom", "email", "téléphone"),
    ("Lefèvre", "Jean-Baptiste", "jb.lefevre@example.org", "01 99 00 42 17"),
    ("Quatrefages", "Séverine", "severine.quatrefages@example.org", "01 99 00 73 58"),
    ("Müller-Brandauer", "Konstanze", "k.mueller-brandauer@example.de", "030 23125988"),
)

EML_BODY = f"""Dear Jean-Baptiste,

Our card 4111 1111 1111 1111 was charged twice for invoice KPC-2024-0193 (EUR 12,480.00
each). Could you refund the duplicate to our account GB29 NWBK 6016 1331 9268 19?

{WURMBACH} from our Munich office has checked the delivery notes: all 240 valve
bodies arrived, so only the payment is in question. Frau Wurmbach is copied for reference.

Best regards,
{THORNBURY}
Head of Procurement
Arden Valve Systems Ltd
+44 20 7946 0321
"""

HTML = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Procurement team</title></head>
<body>
<h1>Procurement team</h1>
<p>The procurement team buys castings, valves and services for all plants. Requests go
through the purchasing portal; urgent orders below EUR 5,000 can be approved by any team
lead, larger ones follow the two-approver rule.</p>
<h2>Contacts</h2>
<ul>
<li>{PETTIGREW}, Category Manager: o.pettigrew-hale@example.com, (312) 555-0143,
1180 Hollowbrook Avenue, Chicago, IL 60614</li>
<li>{MUELLER}, HR Director: k.mueller-brandauer@example.de, +49 30 23125 988,
Holunderstraße 23a, 10557 Berlin</li>
<li>{THORNBURY}, Head of Procurement: margaret.thornbury@example.com</li>
</ul>
<p>Mr Pettigrew-Hale covers North America; Frau Müller-Brandauer handles all contracts of
employment.</p>
</body>
</html>
"""

PDF_LINES = (
    (16, "Supplier Agreement SA-2024-117: signature page"),
    (11, f"{THORNBURY} signed the supplier agreement on 3 March 2024."),
    (11, f"Signed for Arden Valve Systems Ltd (the Buyer): {THORNBURY}, Head of Procurement."),
    (11, f"Signed for Kestrel Precision Castings SAS (the Supplier): {LEFEVRE}."),
    (11, "Payments to the Supplier: IBAN FR14 2004 1010 0505 0001 3M02 606."),
    (11, "Supplier address: 42 rue des Cerisiers Bleus, 69004 Lyon."),
    (14, "Payment terms"),
    (11, "Invoices are payable within 45 days of receipt. Late payments carry interest at"),
    (11, "3 percentage points above the ECB main refinancing rate."),
    (11, "M. Lefèvre confirmed the delivery schedule by e-mail (jb.lefevre@example.org)."),
)


def _docx() -> tuple[bytes, str]:
    import docx

    document = docx.Document()
    # Neutral metadata: python-docx would otherwise write its own author and the clock.
    document.core_properties.author = "HR"
    document.core_properties.title = "Arbeitsvertrag"
    document.add_heading("Arbeitsvertrag", level=1)
    for paragraph in DOCX_PARAGRAPHS:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue(), "\n".join(DOCX_PARAGRAPHS)


def _xlsx() -> tuple[bytes, str]:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Contacts"
    for row in XLSX_ROWS:
        sheet.append(list(row))  # all strings: phones and IBANs must not become numbers
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue(), "\n".join(" | ".join(row) for row in XLSX_ROWS)


def _csv() -> tuple[bytes, str]:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\n").writerows(CSV_ROWS)
    return buffer.getvalue().encode("utf-8"), buffer.getvalue()


def _eml() -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = f"{THORNBURY} <margaret.thornbury@example.com>"
    message["To"] = f"{LEFEVRE} <jb.lefevre@example.org>"
    message["Cc"] = f"{WURMBACH} <a.wurmbach@example.de>"
    message["Subject"] = "Duplicate charge on invoice KPC-2024-0193"
    message["Date"] = "Tue, 12 Mar 2024 10:15:00 +0000"
    message["Message-ID"] = "<kpc-2024-0193@mail.example.com>"
    message.set_content(EML_BODY)
    headers = "\n".join(f"{k}: {message[k]}" for k in ("From", "To", "Cc"))
    return message.as_bytes(policy=SMTP), f"{headers}\n{EML_BODY}"


def _pdf() -> tuple[bytes, str]:
    # The repo's dependency-free PDF writer (Helvetica, WinAnsi: covers è, ü, ß).
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts/make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.make_pdf([list(PDF_LINES)], "Supplier Agreement SA-2024-117")
    return data, "\n".join(text for _, text in PDF_LINES)


def build_planted_corpus(root: Path) -> PlantedCorpus:
    """Write the eight fixture files under ``root`` (created if missing)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    builds = {
        "supplier-onboarding.txt": (TXT.encode("utf-8"), TXT),
        "compte-rendu-comite.md": (MD.encode("utf-8"), MD),
        "arbeitsvertrag.docx": _docx(),
        "contacts.xlsx": _xlsx(),
        "fournisseurs.csv": _csv(),
        "invoice-dispute.eml": _eml(),
        "procurement-team.html": (HTML.encode("utf-8"), HTML),
        "supplier-agreement-signed.pdf": _pdf(),
    }
    everything = [v for vs in VALUES.values() for v in vs]
    everything += [form for forms in PEOPLE.values() for form in forms]
    files, by_file = [], {}
    for name, (data, text) in builds.items():
        path = root / name
        path.write_bytes(data)
        files.append(path)
        by_file[name] = tuple(dict.fromkeys(v for v in everything if v in text))
    return PlantedCorpus(
        root=root,
        files=tuple(files),
        values={k: tuple(v) for k, v in VALUES.items()},
        people={k: tuple(v) for k, v in PEOPLE.items()},
        by_file=by_file,
    )
