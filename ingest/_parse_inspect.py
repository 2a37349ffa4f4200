"""Checks that run before unstructured: encryption, page count, e-mail headers, encoding.

unstructured reports these poorly (an encrypted PDF parses to zero elements, an e-mail's
date falls back to the file's mtime), so the parsing stage asks the format libraries
directly. Every function reads headers or trailers only, and raises :class:`ParseError`
with a stable reason or returns document-level metadata.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag._errors import ParseError

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 200
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xfe\xff", "utf-16"),
    (b"\xff\xfe", "utf-16"),
)
_WESTERN_LANGUAGES = frozenset(
    {"eng", "fra", "deu", "spa", "ita", "por", "nld", "dan", "swe", "nor", "fin", "cat", "gle"}
)
_OCR_INSTALL = {
    "tesseract": "apt-get install tesseract-ocr",
    "pdftoppm": "apt-get install poppler-utils",
    "unstructured_pytesseract": "pip install unstructured.pytesseract",
}
OCR_HINT = "; ".join(_OCR_INSTALL.values()) + "; then set parse.pdf_strategy=ocr_only"


def missing_ocr_parts() -> list[str]:
    """What to install for OCR (tesseract, poppler's pdftoppm, the Python binding); [] = ready."""
    from importlib.util import find_spec

    missing = [_OCR_INSTALL[name] for name in ("tesseract", "pdftoppm") if not shutil.which(name)]
    if find_spec("unstructured_pytesseract") is None:
        missing.append(_OCR_INSTALL["unstructured_pytesseract"])
    return missing


def inspect_pdf(path: Path) -> dict[str, Any]:
    """Encryption, page count and document-info title (pypdf reads trailer and page tree)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(path, strict=False)
        # An owner password alone (copy protection) still lets anyone read the text.
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError(
                "encrypted", "PDF is password-protected", "remove the password and re-ingest"
            )
        meta: dict[str, Any] = {"page_count": len(reader.pages)}
        title = reader.metadata.get("/Title") if reader.metadata else None
        if isinstance(title, str) and title.strip():
            meta["title"] = title.strip()[:MAX_TITLE_CHARS]
        return meta
    except ParseError:
        raise
    except Exception as exc:  # pypdf is stricter than pdfminer; let pdfminer try
        log.debug("pypdf could not inspect a PDF (%s)", type(exc).__name__)
        return {}


def check_office_encryption(path: Path, suffix: str) -> None:
    """Encrypted OOXML files are OLE containers, not zips; msoffcrypto tells which."""
    with path.open("rb") as handle:
        is_ole = handle.read(8) == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    if not is_ole:
        return
    try:
        import msoffcrypto

        with path.open("rb") as handle:
            encrypted = msoffcrypto.OfficeFile(handle).is_encrypted()
    except Exception as exc:  # not an Office OLE file: the partitioner reports it
        log.debug("msoffcrypto could not inspect a file (%s)", type(exc).__name__)
        return
    if encrypted:
        raise ParseError(
            "encrypted",
            f"{suffix} file is password-protected",
            "remove the password and re-ingest",
        )


def inspect_email(path: Path, suffix: str) -> dict[str, Any]:
    """Sent date and encryption from the headers (unstructured falls back to file mtime)."""
    try:
        if suffix == ".eml":
            with path.open("rb") as handle:
                headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parse(handle)
            content_type = str(headers.get("Content-Type", ""))
            date = headers.get("Date")
            sent = email.utils.parsedate_to_datetime(str(date)) if date else None
        else:
            from oxmsg import Message

            msg = Message.load(str(path))
            content_type = str(msg.message_headers.get("Content-Type", ""))
            sent = msg.sent_date
    except Exception as exc:  # malformed headers: the partitioner decides
        log.debug("could not read e-mail headers (%s)", type(exc).__name__)
        return {}
    lowered = content_type.lower()
    if "multipart/encrypted" in lowered or (
        "pkcs7-mime" in lowered and "signed-data" not in lowered
    ):
        raise ParseError(
            "encrypted", "e-mail body is encrypted (S/MIME or PGP)", "decrypt it before ingesting"
        )
    # Normalised to UTC so date-range filters compare it like every other date.
    return {"sent_at": rfc3339(sent)} if sent is not None else {}


def text_encoding(path: Path, languages: tuple[str, ...]) -> str | None:
    """BOM, strict UTF-8, then cp1252 for Western languages; None = unstructured detects.

    HTML and XML declare their charset in the file, so they never get the cp1252 guess.
    """
    data = path.read_bytes()
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    # NUL bytes are valid UTF-8 but mean UTF-16/32 without a BOM: leave it to detection.
    if encoding is None and b"\x00" not in data:
        candidates = ["utf-8"]
        # Charset detection confuses cp1252 with cp1250 on short French/German text; the
        # configured languages settle it. cp1252 leaves 5 bytes undefined, so binary fails.
        declares_charset = path.suffix.lower() in (".html", ".htm", ".xml")
        if languages and set(languages) <= _WESTERN_LANGUAGES and not declares_charset:
            candidates.append("cp1252")
        for candidate in candidates:
            try:
                data.decode(candidate)
            except UnicodeDecodeError:
                continue
            encoding = candidate
            break
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(
                "encoding", f"bytes do not match the {encoding} byte-order mark"
            ) from None
        if not text.strip():
            raise ParseError("empty", "file contains only whitespace")
    return encoding


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC (``2024-10-15T06:00:00Z``); a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
