"""Deleting documents and reporting the state of a collection."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag._config import Settings
from rag._embedding import SentenceTransformerEmbedder
from rag._types import doc_id_for
from rag.stores import ALL_VALUES, CollectionInfo, Filter, VectorStore, open_store

_DOC_ID = re.compile(r"^[0-9a-f]{24}$")


def resolve_targets(targets: list[str], store: VectorStore) -> dict[str, str]:
    """Map each DOC_ID or PATH argument to the doc ids it names (a folder names all below).

    Paths need not exist any more: a deleted file's id is derived from its path.
    """
    found: dict[str, str] = {}
    sources: dict[str, int] | None = None
    for target in targets:
        if _DOC_ID.match(target) and not Path(target).exists():
            found[target] = target
            continue
        path = Path(target).expanduser().resolve()
        found[doc_id_for(path)] = str(path)
        if path.is_dir() or not path.exists():
            if sources is None:
                sources = store.facet("source", limit=ALL_VALUES)
            prefix = path.as_posix().rstrip("/") + "/"
            for source in sources:
                if source.startswith(prefix):
                    found[doc_id_for(source)] = source
    return found


def delete_documents(targets: list[str], store: VectorStore) -> dict[str, int]:
    """Delete the chunks of every named document; returns chunks removed per doc id."""
    removed: dict[str, int] = {}
    for doc_id in resolve_targets(targets, store):
        where = Filter.of(doc_id=doc_id)
        n = store.count(where)
        if n:
            store.delete(where)
        removed[doc_id] = n
    return removed


@dataclass(frozen=True)
class Status:
    collection: CollectionInfo
    last_run: dict[str, Any] | None


def collection_status(settings: Settings, store: VectorStore) -> Status:
    return Status(store.info(), _last_run(settings.runs_dir))


def _open(settings: Settings) -> VectorStore:
    # The vector size comes from the model's files; no weights are loaded.
    return open_store(settings, SentenceTransformerEmbedder(settings.embedding).dimension)


def delete(targets: list[str], settings: Settings) -> dict[str, int]:
    """``rag delete``: remove documents by id or path; chunks removed per doc id."""
    store = _open(settings)
    try:
        return delete_documents(targets, store)
    finally:
        store.close()


def status(settings: Settings) -> Status:
    """``rag status``: counts of the collection and the last run report."""
    store = _open(settings)
    try:
        return collection_status(settings, store)
    finally:
        store.close()


def _last_run(runs_dir: Path) -> dict[str, Any] | None:
    reports = sorted(runs_dir.glob("*.json")) if runs_dir.is_dir() else []
    if not reports:
        return None
    data: dict[str, Any] = json.loads(reports[-1].read_text("utf-8"))
    return data
