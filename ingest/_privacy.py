"""The ingestion step that pseudonymizes a parsed document before it is chunked.

Everything textual is rewritten in one batch per document: element text, table HTML,
and the metadata strings that end up in payloads (title, subject, sender, recipients,
file name). Values found in one are replaced in all, and values known to be personal
data from the document's structure (e-mail headers, table columns named ``name``,
``email``...) are replaced wherever they appear. Metadata is fail-closed: every string
is pseudonymized except a short list of fields that never hold personal data.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rag._config import Settings
from rag._types import Chunk, ParsedDocument
from rag.privacy._pseudonymize import Pseudonymized, Pseudonymizer, placeholders_in
from rag.privacy._text import PLACEHOLDER

#: Metadata fields left as they are; every other string is pseudonymized. ``filename`` is
#: operator metadata like the source path (kept for citations and erasure); NER reads a
#: bare file name badly ("team-contacts.csv" as an organisation). A file name holding a
#: known value still cannot leave: the egress guard blocks it.
_SAFE_META = frozenset(
    {"filetype", "modified_at", "sent_at", "languages", "page_count", "filename"}
)
_LANGUAGES = {"eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es"}
_LANGUAGES |= {"ita": "it", "en": "en", "fr": "fr", "de": "de", "es": "es", "it": "it"}
#: Payload fields written on every chunk (under ``meta.``).
PLACEHOLDERS_KEY = "pii_placeholders"
COUNTS_KEY = "pii_counts"


class PseudonymizeStep:
    """A :class:`~ingest.DocumentStep`: pseudonymizes documents with the corpus vault."""

    def __init__(self, settings: Settings, pseudonymizer: Pseudonymizer | None = None) -> None:
        self.settings = settings
        self.pseudonymizer = pseudonymizer or Pseudonymizer.open(settings)
        p = settings.privacy
        config = p.model_dump(mode="json", exclude={"key", "key_file", "vault_path", "reidentify"})
        config["key"] = self.pseudonymizer.keys.fingerprint
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        # The name is part of the pipeline fingerprint: another key or detector setting
        # re-ingests every document.
        self.name = f"pseudonymize:{digest}"

    def warm_up(self) -> None:
        """Load the NER model now, so a bad ``privacy.ner_model`` stops the run at start."""
        self.pseudonymizer.detector.warm_up()

    def rewrite_stale(self, store: Any, embedder: Any, chunker: Any, sparse: Any) -> int:
        """Second pass: rewrite stored chunks that hold a value the vault learned after they
        were written (a name first detected in a later document). Returns chunks rewritten.

        Chunks keep their ids, document hash and ACL; text, token count, vectors and
        placeholder lists are replaced. Scans the whole collection (dictionary matching
        only, no NER), so it runs only when the vault grew during the run.
        """
        from rag._types import IndexedChunk
        from rag.stores import Filter

        pz = self.pseudonymizer
        changed: list[Chunk] = []
        offset: str | None = None
        while True:
            page, offset = store.scroll(limit=512, offset=offset)
            for chunk in page:
                new = pz.replace_known(chunk.text)
                if new.replacements:
                    changed.append(
                        replace(chunk, text=new.text, token_count=chunker.mistral.count(new.text))
                    )
            if offset is None:
                break
        # A placeholder can take more of the embedder's window than the word it replaced;
        # a chunk pushed over it is not cut: its document is dropped and re-ingested whole
        # by the next run (it then finds no points and starts over).
        too_long = {
            c.doc_id for c in changed if embedder.count_tokens(c.text) > embedder.max_tokens
        }
        for doc_id in too_long:
            store.delete(Filter.of(doc_id=doc_id))
        changed = [c for c in changed if c.doc_id not in too_long]
        # Each document's hash and chunk count, read once: the points keep them.
        versions: dict[str, tuple[str, int]] = {}
        for doc_id in dict.fromkeys(c.doc_id for c in changed):
            facet = store.facet("content_hash", Filter.of(doc_id=doc_id), limit=2)
            versions[doc_id] = next(iter(facet.items()))
        for i in range(0, len(changed), 64):
            batch = self.annotate_chunks(changed[i : i + 64])
            vectors = embedder.embed_passages([c.text for c in batch])
            points = []
            for chunk, vector in zip(batch, vectors, strict=True):
                content_hash, count = versions[chunk.doc_id]
                points.append(
                    IndexedChunk(
                        chunk,
                        vector.tolist(),
                        sparse.encode_document(chunk.text),
                        content_hash,
                        count,
                    )
                )
            store.upsert(points)
        return len(changed)

    def audit_run(self, report: Any) -> None:
        """One audit record per ingestion run: ids and counts, never paths or values."""
        from rag.privacy._audit import AuditLog

        AuditLog.open(self.settings, self.pseudonymizer.keys).append(
            "ingest_run",
            run_id=report.run_id,
            collection=report.collection,
            files_ingested=report.files_ingested,
            files_failed=report.files_failed,
            chunks_written=report.chunks_written,
            pii_counts=dict(sorted(report.pii_counts.items())),
            operator=self.settings.privacy.operator,
            step=self.name,
        )

    def __call__(self, doc: ParsedDocument) -> ParsedDocument:
        texts: list[str] = [el.text for el in doc.elements]
        html_at: list[int] = []
        for i, el in enumerate(doc.elements):
            if isinstance(el.extra.get("text_as_html"), str):
                html_at.append(i)
                texts.append(el.extra["text_as_html"])
        meta_slots: list[tuple[str, int | None]] = []
        for key, value in doc.metadata.items():
            if key in _SAFE_META:
                continue
            if isinstance(value, str):
                meta_slots.append((key, None))
                texts.append(value)
            elif isinstance(value, list | tuple):
                for j, item in enumerate(value):
                    if isinstance(item, str):
                        meta_slots.append((key, j))
                        texts.append(item)
        from rag.privacy._detect import structured_values

        results = self.pseudonymizer.pseudonymize(
            texts, language=_language(doc, self.settings), seeds=structured_values(doc)
        )
        n = len(doc.elements)
        elements = [replace(el, text=r.text) for el, r in zip(doc.elements, results, strict=False)]
        for i, r in zip(html_at, results[n : n + len(html_at)], strict=True):
            elements[i] = replace(elements[i], extra={**elements[i].extra, "text_as_html": r.text})
        meta: dict[str, Any] = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in doc.metadata.items()
        }
        for (key, slot), r in zip(meta_slots, results[n + len(html_at) :], strict=True):
            if slot is None:
                meta[key] = r.text
            else:
                meta[key][slot] = r.text
        meta[PLACEHOLDERS_KEY], meta[COUNTS_KEY] = _summary(results)
        return ParsedDocument(doc.path, tuple(elements), meta)

    def annotate_chunks(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        """Each chunk lists its own placeholders and counts (erasure finds chunks by them).

        With one-way operators (redact, mask, surrogate) the text holds no placeholders,
        so chunks keep the document's list: erasure then finds whole documents."""
        if self.settings.privacy.operator != "pseudonymize":
            return list(chunks)
        out = []
        for chunk in chunks:
            counts = Counter(m.group(1) for m in PLACEHOLDER.finditer(chunk.text))
            found = placeholders_in(chunk.text)
            meta = {**chunk.metadata, PLACEHOLDERS_KEY: found, COUNTS_KEY: dict(counts)}
            out.append(replace(chunk, metadata=meta))
        return out


def _summary(results: Sequence[Pseudonymized]) -> tuple[list[str], dict[str, int]]:
    placeholders: dict[str, None] = {}
    counts: Counter[str] = Counter()
    for r in results:
        placeholders.update(dict.fromkeys(r.placeholders))
        counts.update(r.counts)
    return list(placeholders), dict(counts)


def _language(doc: ParsedDocument, settings: Settings) -> str:
    configured = settings.privacy.languages
    for lang in doc.metadata.get("languages") or ():
        code = _LANGUAGES.get(str(lang).lower())
        if code in configured:
            return code
    return configured[0]
