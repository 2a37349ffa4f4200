"""``rag doctor`` checks: every family reported, failures carry the fix, nothing raises."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingest import _doctor
from ingest._doctor import Check, run_checks
from rag._config import Settings


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_reports_every_family_and_the_installed_parts_pass() -> None:
    started = time.perf_counter()
    checks = by_name(run_checks(Settings()))
    assert time.perf_counter() - started < 60
    for name in (
        "python",
        "torch (CPU build)",
        "torchvision absent",
        "PDF (fast, pdfminer)",
        "DOCX",
        "PPTX",
        "XLSX / XLS",
        "HTML",
        "Markdown",
        "TXT",
        "EML",
        "MSG (Outlook)",
        "CSV / TSV",
        "RTF / ODT / EPUB / RST / ORG (pandoc)",
        "spaCy model (unstructured)",
        "embedding model",
        "Mistral tokenizer",
        "Qdrant Edge",
    ):
        assert checks[name].ok, (name, checks[name].detail)
    assert "PDF OCR (scanned PDFs)" in checks
    assert "DOC / PPT (LibreOffice)" in checks
    assert all(c.detail for c in checks.values())


def test_missing_programs_name_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    checks = by_name(run_checks(Settings()))
    soffice = checks["DOC / PPT (LibreOffice)"]
    assert not soffice.ok and "apt-get install" in soffice.detail
    ocr = checks["PDF OCR (scanned PDFs)"]
    assert not ocr.ok and "tesseract-ocr" in ocr.detail and "ocr_only" in ocr.detail


def test_torchvision_present_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _doctor.importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return object() if name == "torchvision" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_doctor.importlib.util, "find_spec", find_spec)
    check = _doctor._run("torchvision absent", _doctor._no_torchvision)
    assert not check.ok and "uninstall" in check.detail


def test_bad_spacy_model_setting(tmp_path: Path) -> None:
    settings = Settings(parse={"spacy_model": str(tmp_path)})
    check = by_name(run_checks(settings))["spaCy model (unstructured)"]
    assert not check.ok and "parse.spacy_model" in check.detail


def test_a_crashing_check_becomes_a_failed_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> tuple[bool, str]:
        raise RuntimeError("secret detail that must not be shown")

    monkeypatch.setattr(_doctor, "_pandoc", boom)
    check = by_name(run_checks(Settings()))["RTF / ODT / EPUB / RST / ORG (pandoc)"]
    assert not check.ok and "RuntimeError" in check.detail and "secret" not in check.detail


def test_unknown_tokenizer_is_reported() -> None:
    settings = Settings(chunking={"tokenizer": "v99"})
    check = _doctor._run("Mistral tokenizer", lambda: _doctor._tokenizer(settings))
    assert not check.ok and "chunking.tokenizer" in check.detail
