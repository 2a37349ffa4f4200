"""Egress guard: the last check on every request body about to leave for an LLM provider.

Two detectors run on every string of the body (JSON keys aside): the pattern recognizers
(e-mails, phones, cards, IBANs, national ids...) and an exact match against every value
in the vault, including erased ones. The vault match hashes each word n-gram of the body
with the vault's key and looks it up in a set of 16-byte ids, so its cost depends on the
body's length, not on the vault's size (1M entries cost memory, not time).

On a hit the request is blocked (``privacy.egress = "block"``, the default) or its
strings are pseudonymized and checked again (``"redact"``). Blocks, redactions and
passed requests are written to the audit log with the body's SHA-256, never its text.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rag._config import Settings
from rag._errors import EgressBlockedError
from rag.privacy._audit import AuditLog
from rag.privacy._keys import PrivacyKeys
from rag.privacy._names import written_as_value
from rag.privacy._pseudonymize import Pseudonymizer
from rag.privacy._text import PLACEHOLDER, normalize, scan
from rag.privacy._vault import Vault

#: Finding type of an exact vault match (its entity type is not looked up: that would
#: need the vault row, and the count is what matters).
KNOWN_VALUE = "VAULT_VALUE"


#: Distinct strings whose pattern findings are remembered (20-byte keyed hashes).
_PATTERN_CACHE = 4096


@dataclass(frozen=True)
class GuardResult:
    action: Literal["pass", "redacted"]
    #: Entity type -> occurrences found in the body as submitted (empty when clean).
    findings: Mapping[str, int]
    #: What may be sent: the body itself, or its redacted copy.
    body: Any
    body_sha256: str


@dataclass
class _Ids:
    #: value id -> entity type (names match only where written like names).
    ids: dict[bytes, str] = field(default_factory=dict)
    prefixes: set[bytes] = field(default_factory=set)
    row: int = 0
    prefix_row: int = 0


class EgressGuard:
    """Blocks (or redacts) requests that still hold personal data."""

    def __init__(
        self,
        settings: Settings,
        pseudonymizer: Pseudonymizer,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.privacy = settings.privacy
        self.pseudonymizer = pseudonymizer
        self.keys: PrivacyKeys = pseudonymizer.keys
        self.vault: Vault = pseudonymizer.vault
        self.detector = pseudonymizer.detector
        self.audit = audit
        self._allow = frozenset(normalize(v) for v in self.privacy.allow_list)
        self._known = _Ids()
        self._pattern_cache: OrderedDict[bytes, Counter[str]] = OrderedDict()
        self._cache_salt = os.urandom(32)

    @classmethod
    def open(cls, settings: Settings, pseudonymizer: Pseudonymizer | None = None) -> EgressGuard:
        pseudonymizer = pseudonymizer or Pseudonymizer.open(settings)
        return cls(settings, pseudonymizer, AuditLog.open(settings, pseudonymizer.keys))

    def refresh(self) -> int:
        """Load vault ids added since the last call; returns how many ids are known."""
        known = self._known
        for rowid, prefix_id in self.vault.prefixes_since(known.prefix_row):
            known.prefixes.add(prefix_id)
            known.prefix_row = rowid
        for entry in self.vault.entries_since(known.row):
            known.ids[entry.value_id] = sys.intern(entry.entity)
            known.row = entry.rowid
        return len(self._known.ids)

    # -- scanning --
    def scan_text(self, text: str) -> Counter[str]:
        """Findings by type in one string."""
        return self._scan([text])

    def _scan(self, texts: list[str], file_names: Collection[str] = ()) -> Counter[str]:
        self.refresh()
        found: Counter[str] = Counter()
        ids = self._known.ids
        digest = self.keys.value_digest

        def value_id(norm: str) -> bytes:
            return digest(norm)[:16]

        for text in texts:
            for start, end, norm, key in scan(text, value_id, self._known.prefixes):
                entity = ids.get(key)
                if entity is None or norm in self._allow:
                    continue
                if written_as_value(text[start:end], entity):
                    found[KNOWN_VALUE] += 1
        # Placeholders are ours: hide their hex so no recognizer reads them as numbers.
        masked = [
            PLACEHOLDER.sub(lambda m: "<" + "x" * (len(m.group()) - 2) + ">", t) for t in texts
        ]
        # File names are kept in clear by design ("minutes.md" is not a URL); the known-value
        # match above still sees them, so a file named after a person is still blocked.
        for name in sorted(set(file_names), key=len, reverse=True):
            if len(name) >= 3:
                masked = [t.replace(name, "x" * len(name)) for t in masked]
        # Requests repeat most of their strings (system prompt, schema, tools, the earlier
        # turns of a tool loop): pattern findings are cached by the masked string's hash.
        # Keyed with a per-process secret: the cache keys say nothing about the strings.
        salt = self._cache_salt
        keys = [
            hashlib.blake2b(t.encode("utf-8", "surrogatepass"), key=salt, digest_size=20).digest()
            for t in masked
        ]
        cache = self._pattern_cache
        pending = list(dict.fromkeys(k for k in keys if k not in cache))
        if pending:
            first = {k: masked[keys.index(k)] for k in pending}
            for key, counts in zip(pending, self._patterns(list(first.values())), strict=True):
                cache[key] = counts
        for key in keys:
            cache.move_to_end(key)
            found.update(cache[key])
        while len(cache) > _PATTERN_CACHE:
            cache.popitem(last=False)
        return found

    def _patterns(self, texts: list[str]) -> list[Counter[str]]:
        """Pattern findings of each text; recognizers of several languages may find the
        same value: it counts once."""
        out: list[Counter[str]] = [Counter() for _ in texts]
        seen: set[tuple[int, int, int, str]] = set()
        for language in self.privacy.languages:
            for i, spans in enumerate(self.detector.detect_patterns(texts, language)):
                for span in spans:
                    if (i, span.start, span.end, span.entity) not in seen:
                        seen.add((i, span.start, span.end, span.entity))
                        out[i][span.entity] += 1
        return out

    def check(
        self,
        body: Any,
        *,
        provider: str,
        model: str,
        request_id: str | None = None,
        tokens: int | None = None,
        file_names: Collection[str] = (),
    ) -> GuardResult:
        """Scan ``body`` (a JSON-able object, JSON text or bytes) before it is sent.

        ``file_names`` (the source files named in passage headers) are skipped by the
        pattern recognizers only: a file name that holds a known value is still found.

        Returns the body to send; raises :class:`~rag.EgressBlockedError` when it holds
        personal data and the policy is ``block`` (or redaction could not clean it).
        """
        obj = _as_object(body)
        strings = _strings(obj)
        findings = self._scan(strings, file_names)
        digest = _sha256(obj)
        meta = {"provider": provider, "model": model, "request_id": request_id}
        if not findings:
            self._audit("llm_request", **meta, body_sha256=digest, tokens=tokens)
            return GuardResult("pass", {}, body, digest)
        counts = dict(sorted(findings.items()))
        if self.privacy.egress == "redact":
            cleaned = _map_strings(obj, self.pseudonymizer.pseudonymize_text)
            if not self._scan(_strings(cleaned), file_names):
                new_digest = _sha256(cleaned)
                self._audit("egress_redacted", **meta, findings=counts, body_sha256=new_digest)
                self._audit("llm_request", **meta, body_sha256=new_digest, tokens=tokens)
                return GuardResult("redacted", counts, cleaned, new_digest)
        self._audit("egress_blocked", **meta, findings=counts, body_sha256=digest)
        kinds = ", ".join(f"{n} {k}" for k, n in counts.items())
        raise EgressBlockedError(
            f"request to {provider} not sent: it holds personal data ({kinds}); "
            "pseudonymize the text before sending it, allow-list public terms in "
            "privacy.allow_list, or set privacy.egress = 'redact'",
            counts,
        )

    def _audit(self, event: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.append(event, **{k: v for k, v in fields.items() if v is not None})


def _as_object(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _strings(obj: Any) -> list[str]:
    """Every string value, and the strings inside string values that hold JSON (tool-call
    arguments are JSON text inside the request's JSON)."""
    out: list[str] = []

    def collect(s: str) -> str:
        if s[:1] in "{[":
            try:
                out.extend(_strings(json.loads(s)))
                return s
            except ValueError:
                pass
        out.append(s)
        return s

    _map_strings(obj, collect)
    return out


def _map_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    """A copy of ``obj`` with every string value (not key) passed through ``fn``."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, Mapping):
        return {k: _map_strings(v, fn) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_map_strings(v, fn) for v in obj]
    return obj


def _sha256(obj: Any) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
