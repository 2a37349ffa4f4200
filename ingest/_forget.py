"""Erasure (right to be forgotten): crypto-shred a value and find what mentions it.

``forget`` deletes the value's ciphertext from the vault, so its placeholder can never be
reversed again. The vault keeps a tombstone (the keyed id and the placeholder, no
plaintext): the value is still recognised and replaced in text ingested later, and the
egress guard still blocks it, but it cannot be re-identified. Chunks whose payload lists
the placeholder are reported, and deleted on request. A receipt (JSON, no value) goes to
``<home>/receipts`` and an ``erasure`` record to the audit log.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest._privacy import PLACEHOLDERS_KEY
from rag._config import Settings
from rag._errors import PrivacyError
from rag.privacy._audit import AuditLog
from rag.privacy._keys import PrivacyKeys
from rag.privacy._text import PLACEHOLDER, normalize
from rag.privacy._vault import Vault, VaultEntry
from rag.stores import Filter, Match, VectorStore


@dataclass(frozen=True)
class Erasure:
    receipt_id: str
    placeholder: str
    entity: str
    #: doc id -> source path of every document with a chunk mentioning the value.
    documents: dict[str, str]
    chunks: int
    deleted: bool
    already_forgotten: bool
    receipt: str


def forget(
    settings: Settings,
    store: VectorStore,
    *,
    value: str | None = None,
    placeholder: str | None = None,
    delete: bool = False,
) -> Erasure:
    """Erase one value (given as text or as its placeholder); see the module docstring."""
    if (value is None) == (placeholder is None):
        raise PrivacyError("give either a value or a placeholder to forget")
    keys = PrivacyKeys.from_settings(settings)
    vault = Vault.open(settings, keys)
    try:
        entry = _find(vault, keys, value, placeholder)
        already = entry.forgotten
        vault.forget(entry.placeholder)
    finally:
        vault.close()
    where = Filter(must=(Match(f"meta.{PLACEHOLDERS_KEY}", (entry.placeholder,)),))
    documents: dict[str, str] = {}
    chunks = 0
    offset: str | None = None
    while True:
        page, offset = store.scroll(where, limit=256, offset=offset)
        for chunk in page:
            documents.setdefault(chunk.doc_id, chunk.source)
            chunks += 1
        if offset is None:
            break
    if delete and chunks:
        store.delete(where)
    receipt_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    receipt = {
        "receipt_id": receipt_id,
        "erased_at": now,
        "placeholder": entry.placeholder,
        "entity": entry.entity,
        "vault": "ciphertext deleted (tombstone kept: id and placeholder, no plaintext)",
        "documents": sorted(documents),
        "chunks": chunks,
        "chunks_deleted": chunks if delete else 0,
        "already_forgotten": already,
    }
    path = _write_receipt(settings.receipts_dir, receipt_id, receipt)
    AuditLog.open(settings, keys).append(
        "erasure",
        receipt_id=receipt_id,
        placeholder=entry.placeholder,
        entity=entry.entity,
        documents=len(documents),
        chunks=chunks,
        deleted=bool(delete and chunks),
    )
    return Erasure(
        receipt_id, entry.placeholder, entry.entity, documents, chunks, delete, already, str(path)
    )


def _find(
    vault: Vault, keys: PrivacyKeys, value: str | None, placeholder: str | None
) -> VaultEntry:
    if placeholder is not None:
        if not PLACEHOLDER.fullmatch(placeholder.strip()):
            raise PrivacyError("not a placeholder: expected the form <PERSON_3f9a1c2b>")
        entry = vault.by_placeholder([placeholder.strip()]).get(placeholder.strip())
    else:
        norm = normalize(value or "")
        if not norm:
            raise PrivacyError("the value to forget has no letters or digits")
        value_id = keys.value_digest(norm)[:16]
        entry = vault.get([value_id]).get(value_id)
    if entry is None:
        raise PrivacyError(
            "the vault holds no such value: nothing was pseudonymized under it with this key "
            "(check the spelling, or give the placeholder)"
        )
    return entry


def _write_receipt(folder: Path, receipt_id: str, receipt: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"erasure-{receipt_id}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(receipt, f, indent=2, sort_keys=True)
    return path
