"""Parsing over ../shared/data: real-world and deliberately broken files (skipped when absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest._parse import parse_file
from rag._config import ParseSettings
from rag._errors import PARSE_REASONS, ParseError
from rag._types import ParsedDocument

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXAMPLES = SHARED / "docs-unstructured-examples" / "files"
SETTINGS = ParseSettings()
MB = 1024 * 1024
REASONS = PARSE_REASONS

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent"),
]


def parse(path: Path, max_bytes: int = 10 * MB) -> ParsedDocument:
    return parse_file(path, SETTINGS, max_bytes=max_bytes)


@pytest.mark.skipif(shutil.which("soffice") is not None, reason="LibreOffice installed")
def test_legacy_doc_without_libreoffice() -> None:
    with pytest.raises(ParseError) as info:
        parse(EXAMPLES / "fake.doc")
    error = info.value
    assert error.reason == "missing_dependency" and "libreoffice" in error.hint


@pytest.mark.slow
def test_every_example_file_parses_or_fails_with_a_known_reason() -> None:
    # 1 MB keeps the run near a minute: the 619-page PDF and the full 10-K become too_large.
    outcomes: dict[str, str] = {}
    for path in sorted(p for p in EXAMPLES.rglob("*") if p.is_file()):
        try:
            doc = parse(path, max_bytes=1 * MB)
        except ParseError as exc:
            assert exc.reason in REASONS, path.name
            outcomes[path.relative_to(EXAMPLES).as_posix()] = exc.reason
        else:
            assert doc.elements and all(e.text.strip() for e in doc.elements), path.name
            outcomes[path.relative_to(EXAMPLES).as_posix()] = "parsed"
    assert outcomes["pdf/password.pdf"] == "encrypted"
    assert outcomes["password_protected.xlsx"] == "encrypted"
    assert outcomes["fake-encrypted.msg"] == "encrypted"
    assert outcomes["simple.zip"] == "unsupported"
    assert outcomes["empty.txt"] == "empty"
    assert outcomes["fake-text-utf-32.txt"] == "parsed"
    assert outcomes["pdf/copy-protected.pdf"] == "parsed"
    assert sum(v == "parsed" for v in outcomes.values()) >= 0.8 * len(outcomes)


@pytest.mark.slow
def test_real_mailing_list_emails_keep_their_headers() -> None:
    paths = sorted((SHARED / "docs-email-mailinglists" / "files").rglob("*.eml"))
    assert paths
    with_sender = 0
    for path in paths:
        try:
            doc = parse(path)
        except ParseError as exc:
            assert exc.reason in REASONS
            continue
        with_sender += bool(doc.metadata.get("sender") and doc.metadata.get("sent_at"))
    assert with_sender >= 0.9 * len(paths)


def test_government_pdfs_have_pages() -> None:
    pdfs = sorted((SHARED / "docs-us-gov-reports").rglob("*.pdf"), key=lambda p: p.stat().st_size)
    pdfs = pdfs[:3]  # the smallest: enough to see page numbers, fast enough for every run
    assert pdfs
    for path in pdfs:
        doc = parse(path)
        assert doc.metadata["page_count"] >= 1
        assert all(e.page is not None for e in doc.elements)
