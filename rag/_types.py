"""Internal values passed between pipeline stages (frozen dataclasses)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ACL principal stored on chunks that anybody may read. The ``@`` prefix is reserved:
#: user and group names given at query time can never produce it.
PUBLIC = "@public"

_CHUNK_NAMESPACE = uuid.UUID("6f1d5c3a-9a51-4a39-9c7e-2f1b8d0c7e11")


def doc_id_for(path: Path | str) -> str:
    """Stable document id for a source file: derived from its resolved absolute path."""
    resolved = Path(path).expanduser().resolve().as_posix()
    return hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:24]


def chunk_id_for(doc_id: str, index: int, text: str) -> str:
    """Stable chunk id from content and position; a UUID so every Qdrant backend accepts it."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{doc_id}:{index}:{digest}"))


@dataclass(frozen=True)
class Element:
    """One structural piece of a parsed document (a title, paragraph, list item, table...).

    ``category`` uses unstructured's names (``Title``, ``NarrativeText``, ``ListItem``,
    ``Table``, ...). ``depth`` is the heading level for titles (0 = top). ``extra`` holds
    element-level metadata such as ``text_as_html`` for tables.
    """

    text: str
    category: str
    page: int | None = None
    depth: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedDocument:
    """A file turned into ordered elements plus document-level metadata.

    ``metadata`` holds JSON-safe values only: file type, title, languages and, for e-mails,
    the headers (``subject``, ``sender``, ``to``, ``cc``, ``bcc``, ``sent_at``).
    """

    path: Path
    elements: tuple[Element, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def replace_elements(self, elements: Sequence[Element]) -> ParsedDocument:
        return ParsedDocument(self.path, tuple(elements), self.metadata)


@dataclass(frozen=True)
class Chunk:
    """A retrievable unit of text with everything needed to cite and filter it."""

    chunk_id: str
    doc_id: str
    index: int
    text: str
    source: str
    pages: tuple[int, ...]
    section: str | None
    element_types: tuple[str, ...]
    acl: tuple[str, ...]
    token_count: int
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Tokenizer of ``token_count`` (e.g. ``mistral-v2``); empty when unknown.
    tokenizer: str = ""


@dataclass(frozen=True)
class SparseVector:
    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class IndexedChunk:
    """A chunk ready for a store: vectors plus the fields the batch job uses for idempotency."""

    chunk: Chunk
    dense: Sequence[float]
    sparse: SparseVector
    content_hash: str
    chunk_count: int


@dataclass(frozen=True)
class Hit:
    """A search result: the stored chunk and its score (higher is better)."""

    chunk: Chunk
    score: float
