"""Error taxonomy.

Every message says what failed and how to fix it. Messages carry ids, paths, counts
and setting names only: never document text, PII values or keys.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error raised by sovereign-rag."""


class ConfigError(RagError):
    """A setting is missing or invalid; the message names the setting."""

    def __init__(self, setting: str, problem: str, fix: str = "") -> None:
        self.setting = setting
        message = f"setting {setting!r}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class DependencyError(RagError):
    """An optional package or system program needed for a feature is missing."""


class ParseError(RagError):
    """A file could not be turned into text.

    ``reason`` is a short stable code (``empty``, ``encrypted``, ``unsupported``, ``corrupt``,
    ``too_large``, ``timeout``, ``missing_dependency``, ``encoding``, ``no_text``) so run reports
    can be grouped by it; ``hint`` says what the operator can do.
    """

    def __init__(self, reason: str, detail: str, hint: str = "") -> None:
        self.reason = reason
        self.detail = detail
        self.hint = hint
        super().__init__(f"{reason}: {detail}" + (f" ({hint})" if hint else ""))


class EmbeddingError(RagError):
    """The embedding model could not be loaded or failed on a batch."""


class StoreError(RagError):
    """The vector store rejected an operation or is unreachable."""


class StoreLockedError(StoreError):
    """The embedded index is open in another process (Qdrant Edge allows one opener)."""


class CollectionMismatchError(StoreError):
    """An existing collection was built with a different vector size or layout."""


class FilterError(RagError):
    """A metadata filter names an unknown payload key or has an invalid value."""
