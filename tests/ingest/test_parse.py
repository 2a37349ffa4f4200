"""Parsing stage: fixtures are generated in tmp_path; demo documents come from samples/."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from ingest import _parse
from ingest._parse import SUPPORTED_EXTENSIONS, configure_unstructured, parse_file
from rag._config import ParseSettings
from rag._errors import PARSE_REASONS, DependencyError, ParseError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
SETTINGS = ParseSettings()
MB = 1024 * 1024
REASONS = PARSE_REASONS


def parse(path: Path, settings: ParseSettings = SETTINGS, max_bytes: int = 10 * MB) -> Any:
    return parse_file(path, settings, max_bytes=max_bytes)


def reason_of(path: Path, **kwargs: Any) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(path, **kwargs)
    return info.value


# --------------------------------------------------------------------------- formats


def test_supported_extensions_are_lower_case_with_dot() -> None:
    assert all(e.startswith(".") and e == e.lower() for e in SUPPORTED_EXTENSIONS)
    assert {".pdf", ".docx", ".eml", ".msg", ".md", ".csv"} <= SUPPORTED_EXTENSIONS
    assert ".zip" not in SUPPORTED_EXTENSIONS


def test_docx_keeps_headings_tables_and_drops_page_breaks(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Annual Safety Review", level=1)
    document.add_paragraph("Incidents fell by a third after the new training programme started.")
    document.add_page_break()
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Site", "Incidents"), ("Leeds", "4")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    path = tmp_path / "review.docx"
    document.save(str(path))

    doc = parse(path)

    categories = [e.category for e in doc.elements]
    assert "PageBreak" not in categories
    title = doc.elements[0]
    assert (title.category, title.text, title.depth) == ("Title", "Annual Safety Review", 0)
    table_el = next(e for e in doc.elements if e.category == "Table")
    assert "Leeds" in table_el.text and "<table" in table_el.extra["text_as_html"]
    assert doc.metadata["filename"] == "review.docx"
    assert doc.metadata["filetype"].endswith("wordprocessingml.document")
    assert doc.metadata["title"] == "Annual Safety Review"
    assert doc.metadata["languages"] == ["eng"]


def test_xlsx_sheet_becomes_a_table(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [("Product", "Units"), ("AV-200", 1200), ("AV-350", 860)]:
        sheet.append(row)
    path = tmp_path / "units.xlsx"
    book.save(path)

    doc = parse(path)

    tables = [e for e in doc.elements if e.category == "Table"]
    assert tables and "AV-350" in tables[0].text and "text_as_html" in tables[0].extra


def test_pptx_slides_give_page_numbers(tmp_path: Path) -> None:
    import pptx

    deck = pptx.Presentation()
    for title in ("Roadmap 2025", "Hiring plan"):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = f"Details for {title.lower()} follow in the appendix."
    path = tmp_path / "deck.pptx"
    deck.save(str(path))

    doc = parse(path)

    assert {e.page for e in doc.elements} == {1, 2}
    assert doc.metadata["page_count"] == 2


def test_eml_headers_become_metadata_with_display_names(tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"] = "Ada Quill <ada@example.com>"
    message["To"] = "Bo Renn <bo@example.com>, cy@example.com"
    message["Cc"] = "Di Moss <di@example.com>"
    message["Subject"] = "Budget review moved"
    message["Date"] = "Tue, 15 Oct 2024 08:00:00 +0200"
    message["Message-ID"] = "<abc-123@example.com>"
    message.set_content("The budget review moves to Thursday at ten in room 4.")
    path = tmp_path / "note.eml"
    path.write_bytes(message.as_bytes())

    doc = parse(path)

    meta = doc.metadata
    assert meta["sender"] == "Ada Quill <ada@example.com>"
    assert meta["to"] == ["Bo Renn <bo@example.com>", "cy@example.com"]
    assert meta["cc"] == ["Di Moss <di@example.com>"]
    assert meta["bcc"] == []
    assert meta["subject"] == meta["title"] == "Budget review moved"
    assert meta["sent_at"] == "2024-10-15T06:00:00Z"  # RFC 3339 UTC, for date filters
    assert meta["modified_at"].endswith("Z")
    assert meta["message_id"] == "abc-123@example.com"
    assert any("Thursday" in e.text for e in doc.elements)


def test_encrypted_eml(tmp_path: Path) -> None:
    path = tmp_path / "secret.eml"
    path.write_bytes(
        b"From: a@example.com\nContent-Type: multipart/encrypted; boundary=x;"
        b' protocol="application/pgp-encrypted"\n\n--x\n\n-----BEGIN PGP MESSAGE-----\n--x--\n'
    )
    assert reason_of(path).reason == "encrypted"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("utf16.txt", "Quarterly numbers are final.".encode("utf-16"), "are final"),
        ("utf16be.txt", "Numbers are final, no BOM.".encode("utf-16-be"), "no BOM"),
        ("utf8bom.md", "# Notes\n\nCafé menu changes on Monday.".encode("utf-8-sig"), "Café"),
        ("latin.txt", "Le café coûte 3 € à la réunion.".encode("cp1252"), "coûte 3 € à"),
    ],
    ids=["utf16-bom", "utf16be-no-bom", "utf8-bom", "cp1252"],
)
def test_text_encodings(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    text = " ".join(e.text for e in parse(path).elements)
    assert expected in text and "\x00" not in text


def test_csv_and_ragged_csv_fallback_to_text(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("city,limit\nParis,210\nLondon,230\n", encoding="utf-8")
    assert parse(good).elements[0].category == "Table"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\nc\nd,e,f,g\nh,i\n" * 3, encoding="utf-8")
    assert parse(ragged).elements  # read as plain text instead of failing


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("records.json", '[{"id": 1, "note": "alpha"}, {"id": 2, "note": "beta"}]'),
        ("c.yaml", "a: 1\nb: two\n"),
    ],
)
def test_json_and_yaml_parse_as_text(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert parse(path).elements


# --------------------------------------------------------------------------- samples


def test_sample_pdf_pages_title_and_page_count() -> None:
    doc = parse(SAMPLES / "supplier-agreement.pdf")
    assert doc.metadata["page_count"] == 2
    assert doc.metadata["title"] == "Supplier Agreement SA-2024-117"
    assert doc.metadata["filetype"] == "application/pdf"
    assert {e.page for e in doc.elements} == {1, 2}
    assert any("45 days" in e.text for e in doc.elements)


def test_every_sample_parses() -> None:
    for path in sorted(SAMPLES.iterdir()):
        assert parse(path).elements, path.name


def test_make_samples_is_deterministic(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts/make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.build(tmp_path):
        assert path.read_bytes() == (SAMPLES / path.name).read_bytes(), path.name
        assert path.stat().st_size < 50_000


# --------------------------------------------------------------------------- failures


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "blank.txt").write_text(" \n\t\n ", encoding="utf-8")
    assert reason_of(tmp_path / "empty.pdf").reason == "empty"
    assert reason_of(tmp_path / "blank.txt").reason == "empty"


def test_too_large_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 2000, encoding="utf-8")
    monkeypatch.setattr(_parse, "_partition", _fail_if_called)
    error = reason_of(path, max_bytes=1000)
    assert error.reason == "too_large" and "2000" in error.detail


def test_unsupported_extensions_and_archives(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inside.txt", "hello")
    error = reason_of(archive)
    assert error.reason == "unsupported" and "unzip" in error.hint
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00")
    assert reason_of(tmp_path / "tool.exe").reason == "unsupported"


def test_corrupt_docx_does_not_leak_content(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 TOP-SECRET-PAYLOAD " + bytes(range(256)) * 8)
    error = reason_of(path)
    assert error.reason == "corrupt"
    assert "TOP-SECRET" not in str(error)


def test_undecodable_text_is_an_encoding_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_bytes(b"\xff\xfe" + b"abc")  # UTF-16 BOM with an odd byte count
    assert reason_of(path).reason == "encoding"


def test_encrypted_pdf_and_owner_only_protection(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    locked, owner_only = PdfWriter(), PdfWriter()
    for writer in (locked, owner_only):
        writer.append(PdfReader(SAMPLES / "supplier-agreement.pdf"))
    locked.encrypt("s3cret", algorithm="RC4-128")
    owner_only.encrypt("", owner_password="owner", algorithm="RC4-128")
    locked.write(tmp_path / "locked.pdf")
    owner_only.write(tmp_path / "copy-protected.pdf")

    assert reason_of(tmp_path / "locked.pdf").reason == "encrypted"
    assert parse(tmp_path / "copy-protected.pdf").elements


def test_encrypted_docx(tmp_path: Path) -> None:
    import docx
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Salary bands for 2025.")
    document.save(plain)
    plain.seek(0)
    path = tmp_path / "locked.docx"
    with path.open("wb") as out:
        OOXMLFile(plain).encrypt("s3cret", out)
    assert reason_of(path).reason == "encrypted"


def test_pdf_without_text_suggests_ocr(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(tmp_path / "scan.pdf")
    error = reason_of(tmp_path / "scan.pdf")
    assert error.reason == "no_text"
    assert "tesseract" in error.hint and "ocr_only" in error.hint


def test_ocr_strategy_without_tesseract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ingest._parse_inspect.shutil.which", lambda _name: None)
    error = reason_of(
        SAMPLES / "supplier-agreement.pdf", settings=ParseSettings(pdf_strategy="ocr_only")
    )
    assert error.reason == "missing_dependency" and "tesseract-ocr" in error.hint


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (FileNotFoundError("soffice command was not found: TOP-SECRET"), "missing_dependency"),
        (ImportError("no module", name="oxmsg"), "missing_dependency"),
        (ValueError("bad xref near TOP-SECRET"), "corrupt"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "TOP-SECRET"), "encoding"),
        (MemoryError(), "too_large"),
        (PermissionError(13, "denied: TOP-SECRET"), "corrupt"),
        (ImportError("TOP-SECRET", name="unstructured_pytesseract"), "missing_dependency"),
    ],
)
def test_library_errors_are_mapped_without_their_message(exc: BaseException, reason: str) -> None:
    error = _parse._map_exception(exc, ".doc")
    assert error.reason == reason and error.reason in REASONS
    assert "TOP-SECRET" not in str(error)


def test_our_own_read_errors_become_parse_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_parse, "text_encoding", denied)
    (tmp_path / "locked.txt").write_text("Some text.", encoding="utf-8")
    error = reason_of(tmp_path / "locked.txt")
    assert error.reason == "corrupt" and "PermissionError" in error.detail


# --------------------------------------------------------------------------- spaCy set-up


def test_configure_uses_local_model_and_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import unstructured.nlp.tokenize as tokenize

    monkeypatch.setattr(tokenize, "_install_spacy_model", _fail_if_called)
    monkeypatch.setattr(tokenize, "_download_with_timeout", _fail_if_called)
    configure_unstructured(SETTINGS)
    configure_unstructured(SETTINGS)  # idempotent
    nlp = tokenize._get_nlp()
    assert "ner" not in nlp.pipe_names
    assert tokenize.sent_tokenize("First sentence here. Second one follows.")


def test_missing_spacy_model_is_a_dependency_error(tmp_path: Path) -> None:
    with pytest.raises(DependencyError, match=r"scripts/setup\.sh"):
        configure_unstructured(ParseSettings(spacy_model=str(tmp_path / "nowhere")))
    (tmp_path / "a.txt").write_text("Some text here.", encoding="utf-8")
    error = reason_of(tmp_path / "a.txt", settings=ParseSettings(spacy_model=str(tmp_path)))
    assert error.reason == "missing_dependency"


def _fail_if_called(*_args: object, **_kwargs: object) -> Any:
    raise AssertionError("must not be called")
