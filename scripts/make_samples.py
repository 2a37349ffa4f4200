"""Regenerate the demo documents in ``samples/`` byte for byte.

    python scripts/make_samples.py [OUT_DIR]      (default: samples/ next to this script)

Every person, company, address and number in them is invented; addresses use the reserved
``example.com`` / ``example.org`` domains and phone numbers the fictional 555-01xx range.
Output is deterministic (fixed dates, fixed zip timestamps), so a regenerated file only
differs from the committed one when this script changes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
import zipfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

FIXED_DATE = dt.datetime(2024, 10, 14, 9, 30, tzinfo=dt.UTC)

# --------------------------------------------------------------------------- PDF

AGREEMENT_PAGES: list[list[tuple[int, str]]] = [
    [
        (18, "Supplier Agreement"),
        (11, "Agreement no. SA-2024-117 between Arden Valve Systems Ltd (the Buyer) and"),
        (11, "Kestrel Precision Castings SAS (the Supplier), effective 1 November 2024."),
        (14, "1. Scope"),
        (11, "The Supplier manufactures and delivers stainless steel valve bodies of types"),
        (11, "AV-200 and AV-350 to the Buyer's plant in Leeds according to purchase orders."),
        (14, "2. Prices and payment"),
        (11, "Unit prices are fixed for twelve months: AV-200 at EUR 41.50 and AV-350 at"),
        (11, "EUR 63.20. Invoices are payable within 45 days of receipt. Late payments carry"),
        (11, "interest at 3 percentage points above the ECB main refinancing rate."),
        (14, "3. Delivery"),
        (11, "Lead time is six weeks from order confirmation. Deliveries are DAP Leeds"),
        (11, "(Incoterms 2020). A delay of more than ten working days entitles the Buyer to"),
        (11, "a penalty of 0.5% of the order value per week, capped at 5%."),
    ],
    [
        (14, "4. Quality"),
        (11, "Each batch ships with a material certificate (EN 10204 3.1). The defect rate"),
        (11, "must stay below 250 parts per million over any rolling quarter. The Buyer may"),
        (11, "audit the Supplier's foundry once a year with 14 days' notice."),
        (14, "5. Term and termination"),
        (11, "The agreement runs for three years and renews for one year at a time unless"),
        (11, "either party gives six months' written notice. Either party may terminate at"),
        (11, "once for a material breach not remedied within 30 days."),
        (14, "6. Confidentiality"),
        (11, "Drawings and prices are confidential for five years after the agreement ends."),
        (14, "7. Governing law"),
        (11, "English law applies. Disputes go to the courts of London."),
    ],
]


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[tuple[int, str]]], title: str) -> bytes:
    """A minimal PDF 1.4 using the built-in Helvetica, so pdfminer extracts plain text."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for number, lines in enumerate(pages, start=1):
        y, previous = 780, 11
        ops = ["BT"]
        for size, text in lines:
            # Wide gaps around headings: pdfminer then keeps them as blocks of their own.
            y -= 34 if size > 11 else (28 if previous > 11 else 15)
            previous = size
            ops.append(f"/F1 {size} Tf 1 0 0 1 60 {y} Tm ({_pdf_escape(text)}) Tj")
        ops.append(f"/F1 9 Tf 1 0 0 1 290 40 Tm (Page {number} of {len(pages)}) Tj")
        ops.append("ET")
        stream = "\n".join(ops).encode("cp1252")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects) + 2} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    objects.append(
        f"<< /Title ({_pdf_escape(title)}) /Producer (sovereign-rag make_samples) "
        f"/CreationDate (D:{FIXED_DATE:%Y%m%d%H%M%S}Z) >>".encode()
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


# --------------------------------------------------------------------------- DOCX


def _normalize_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps so the bytes do not depend on the clock."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 10, 14, 9, 30, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = "Q3 2024 Operations Report"
    props.author = "Finance team"
    props.created = props.modified = FIXED_DATE.replace(tzinfo=None)
    props.last_modified_by = "Finance team"
    props.revision = 1
    document.add_heading("Q3 2024 Operations Report", level=0)
    document.add_heading("Summary", level=1)
    document.add_paragraph(
        "Revenue for the third quarter reached EUR 18.4 million, 7% above Q3 2023. Order "
        "intake grew fastest in the Nordics, while Southern Europe was flat. Gross margin "
        "improved to 38.2% after the new supplier agreement for valve bodies took effect."
    )
    document.add_heading("Revenue by region", level=1)
    rows = [
        ("Region", "Q3 2024 (EUR m)", "Q3 2023 (EUR m)", "Change"),
        ("Nordics", "5.1", "4.3", "+18.6%"),
        ("DACH", "6.2", "5.9", "+5.1%"),
        ("Southern Europe", "3.9", "3.9", "0.0%"),
        ("UK and Ireland", "3.2", "3.1", "+3.2%"),
    ]
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Risks", level=1)
    for item in (
        "Energy prices at the Leeds plant remain 22% above the 2022 level.",
        "Two of five CNC machines in line B reach end of service life in Q2 2025.",
        "The customer portal migration slipped to January 2025.",
    ):
        document.add_paragraph(item, style="List Bullet")
    document.add_heading("Outlook", level=1)
    document.add_paragraph(
        "We expect Q4 revenue between EUR 18.9 and 19.6 million and keep the full-year "
        "guidance of EUR 73 million."
    )
    buffer = io.BytesIO()
    document.save(buffer)
    return _normalize_zip(buffer.getvalue())


# --------------------------------------------------------------------------- text formats

TRAVEL_POLICY = """\
# Travel and Expenses Policy

Version 3.2, valid from 1 September 2024. Owner: People & Finance.

## Booking

- Book all trips through the internal travel desk at least 14 days ahead.
- Trains are preferred for trips under 5 hours door to door.
- Economy class for flights under 6 hours; premium economy above that.

## Hotel limits per night

| City      | Limit (EUR) |
|-----------|-------------|
| Paris     | 210         |
| London    | 230         |
| Munich    | 170         |
| Elsewhere | 140         |

## Meals and per diem

The daily meal allowance is EUR 55 within Europe and EUR 70 elsewhere. Alcohol is not
reimbursed. Client dinners need the approval of a director beforehand.

## Claims

Submit receipts in the expenses tool within 30 days of returning. Claims older than
90 days are not reimbursed.
"""

CONTACTS = [
    ("name", "role", "team", "email", "phone", "office"),
    (
        "Mira Okonkwo-Lind",
        "Head of Procurement",
        "Operations",
        "m.okonkwo-lind@example.com",
        "+44 20 5550 0114",
        "Leeds",
    ),
    (
        "Tobias Raskel",
        "Plant Manager",
        "Operations",
        "t.raskel@example.com",
        "+44 20 5550 0127",
        "Leeds",
    ),
    (
        "Ines Vardaro",
        "Financial Controller",
        "Finance",
        "i.vardaro@example.com",
        "+33 1 5550 0143",
        "Paris",
    ),
    (
        "Jonah Pellworth",
        "Travel Desk Lead",
        "People",
        "j.pellworth@example.com",
        "+49 89 5550 0158",
        "Munich",
    ),
    (
        "Saanvi Qadir",
        "Quality Engineer",
        "Operations",
        "s.qadir@example.com",
        "+44 20 5550 0162",
        "Leeds",
    ),
]


def make_csv() -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(CONTACTS)
    return buffer.getvalue().encode("utf-8")


def make_eml() -> bytes:
    message = EmailMessage()
    message["From"] = "Jonah Pellworth <j.pellworth@example.com>"
    message["To"] = "Saanvi Qadir <s.qadir@example.com>"
    message["Cc"] = "Tobias Raskel <t.raskel@example.com>"
    message["Subject"] = "Welcome to the Leeds quality team"
    message["Date"] = "Mon, 14 Oct 2024 09:30:00 +0000"
    message["Message-ID"] = "<welcome-0114@mail.example.com>"
    message.set_content(
        "Hi Saanvi,\n\n"
        "Welcome aboard! Your first day is Monday 4 November. Please come to reception in "
        "building C at 9:00; Tobias will give you the plant tour and your safety induction.\n\n"
        "Your laptop is ready at the IT desk. Before your first trip, read the travel policy "
        "in the handbook: trips must be booked through the travel desk 14 days ahead.\n\n"
        "Best regards,\nJonah\n"
    )
    return message.as_bytes(policy=SMTP)


def build(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "supplier-agreement.pdf": make_pdf(AGREEMENT_PAGES, "Supplier Agreement SA-2024-117"),
        "q3-report.docx": make_docx(),
        "travel-policy.md": TRAVEL_POLICY.encode("utf-8"),
        "team-contacts.csv": make_csv(),
        "welcome.eml": make_eml(),
    }
    written = []
    for name, data in files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "samples"
    for written_path in build(target):
        print(f"{written_path} ({written_path.stat().st_size} bytes)")
