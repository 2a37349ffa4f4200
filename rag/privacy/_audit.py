"""Append-only audit log: one JSON record per line, each chained to the previous one.

Every record carries ``seq`` (1, 2, ...), ``prev`` (the previous record's ``hash``, 64 zeros
for the first) and ``hash``: HMAC-SHA256 with the audit key (``"alg": "hmac-sha256"``) of the
canonical JSON of the record without ``hash``, or plain SHA-256 (``"alg": "sha256"``) when
no key is configured.

What the chain proves, when ``verify`` passes: no record up to the last one was changed,
removed, inserted or reordered; with the HMAC, nobody without the key could have rewritten
the log consistently. What it does not prove: that the tail was not cut off (dropping the
last records leaves a valid chain; compare ``seq`` and the last hash with a copy kept
elsewhere, e.g. in the run report), that the whole file was not replaced by an older copy,
or, for an unsigned ``sha256`` log, anything against someone able to write the file: they
can recompute every hash. A log is signed or unsigned as a whole: mixing is refused, since
an unsigned record in a signed log would invite a downgrade.

Records hold ids, counts, entity types and setting names: never values, text or keys.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag._errors import RagError
from rag.privacy._keys import PrivacyKeys

if TYPE_CHECKING:
    from rag._config import Settings

GENESIS = "0" * 64
HMAC_ALG = "hmac-sha256"
PLAIN_ALG = "sha256"
_RESERVED = frozenset({"seq", "ts", "event", "alg", "prev", "hash"})
_TAIL_STEP = 4096


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    #: Records that verified, up to the first bad one (all of them when ``ok``).
    records: int
    #: 1-based line of the first bad record; None when ``ok``.
    first_bad_line: int | None
    #: What is wrong, in words; no record content.
    problem: str


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _hash(alg: str, key: bytes | None, body: bytes) -> str:
    if alg == HMAC_ALG:
        assert key is not None
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


class AuditLog:
    """Hash-chained JSONL file; safe for appends from several processes (``flock``)."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.alg = HMAC_ALG if key is not None else PLAIN_ALG

    @classmethod
    def open(cls, settings: Settings, keys: PrivacyKeys | None = None) -> AuditLog:
        """The log at ``settings.audit_file``, signed with the privacy key when privacy is on."""
        if keys is None and settings.privacy.enabled:
            keys = PrivacyKeys.from_settings(settings)
        return cls(settings.audit_file, keys.audit_key if keys is not None else None)

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r}, alg={self.alg!r})"

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record (flushed and fsynced before returning) and return it."""
        if not isinstance(event, str):
            raise RagError("the audit event must be a string, e.g. 'vault.forget'")
        clash = sorted(_RESERVED & fields.keys())
        if clash:
            raise RagError(f"audit fields {clash} are reserved; rename them")
        for name, value in fields.items():
            try:
                _canonical({name: value})
            except (TypeError, ValueError):
                raise RagError(
                    f"audit field {name!r} holds a {type(value).__name__}, which is not "
                    "JSON-safe; pass strings, numbers, booleans, None, lists or dicts"
                ) from None
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close()
            last = self._last_record(fd)
            if last is not None and last.get("alg") != self.alg:
                raise RagError(
                    f"the audit log {self.path} is {last.get('alg')}-chained but this writer "
                    f"uses {self.alg}; configure the same privacy key, or move the old log "
                    "aside (it stays verifiable) to start a new one"
                )
            record: dict[str, Any] = {
                "seq": last["seq"] + 1 if last else 1,
                "ts": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
                "event": event,
                **fields,
                "alg": self.alg,
                "prev": last["hash"] if last else GENESIS,
            }
            body = _canonical(record)
            # Return what verify() will parse (tuples become lists...), in writing order.
            parsed = json.loads(body)
            record = {name: parsed[name] for name in record}
            record["hash"] = _hash(self.alg, self.key, body)
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
            data = line.encode()
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return record

    def _last_record(self, fd: int) -> dict[str, Any] | None:
        """The last record, read backwards from the end: the log may be large."""
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        tail = b""
        pos = size
        # Stop once the tail holds a newline before the final one (or reaches the start).
        while pos > 0 and tail.count(b"\n") < 2:
            step = min(_TAIL_STEP, pos)
            pos -= step
            tail = os.pread(fd, step, pos) + tail
        if not tail.endswith(b"\n"):
            raise RagError(
                f"the audit log {self.path} ends with an incomplete record (an interrupted "
                "write); run verify, then remove the incomplete last line"
            )
        line = tail[:-1].rsplit(b"\n", 1)[-1]
        try:
            last = json.loads(line)
        except ValueError:
            last = None
        if not (
            isinstance(last, dict)
            and isinstance(last.get("seq"), int)
            and isinstance(last.get("hash"), str)
        ):
            raise RagError(
                f"the last record of the audit log {self.path} is damaged; run verify to "
                "find the first bad line, and restore the log from a copy"
            )
        return last

    def verify(self) -> AuditReport:
        """Walk the whole log and check every link; report the first bad line."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115  (closed below; flock needs the object)
        except FileNotFoundError:
            return AuditReport(True, 0, None, "")
        with f:
            # Appends only grow the file: check what was complete when verify started,
            # without blocking writers for the whole walk.
            fcntl.flock(f, fcntl.LOCK_SH)
            size = os.fstat(f.fileno()).st_size
            fcntl.flock(f, fcntl.LOCK_UN)
            prev, read, good = GENESIS, 0, 0
            for number, raw in enumerate(f, 1):
                read += len(raw)
                if read > size:  # appended after the snapshot
                    break
                problem, prev = self._check(raw, number, prev)
                if problem:
                    return AuditReport(False, good, number, problem)
                good = number
        return AuditReport(True, good, None, "")

    def _check(self, raw: bytes, number: int, prev: str) -> tuple[str, str]:
        """``(problem or "", this record's hash)`` for line ``number``."""
        if not raw.endswith(b"\n"):
            return f"line {number} is incomplete (an interrupted write)", prev
        try:
            record = json.loads(raw)
            claimed, seq, alg = record.pop("hash"), record["seq"], record["alg"]
        except (ValueError, TypeError, KeyError, AttributeError):
            return f"line {number} is not a well-formed audit record (damaged)", prev
        if alg == HMAC_ALG and self.key is None:
            return (
                f"line {number} is signed with {HMAC_ALG}; the audit key is needed to verify "
                "it (configure the privacy key)",
                prev,
            )
        if alg == PLAIN_ALG and self.key is not None:
            return (
                f"line {number} is unsigned ({PLAIN_ALG}) although a key was given; an "
                "unsigned chain can be rewritten by anyone with write access",
                prev,
            )
        if alg not in (HMAC_ALG, PLAIN_ALG):
            return f"line {number} names an unknown hash algorithm", prev
        try:
            expected = _hash(alg, self.key, _canonical(record))
        except (TypeError, ValueError):
            return f"line {number} is not a well-formed audit record (damaged)", prev
        if not isinstance(claimed, str) or not hmac.compare_digest(expected, claimed):
            return (
                f"line {number}: hash mismatch (the record was modified, or it was signed "
                "with another key)",
                prev,
            )
        if seq != number:
            return (
                f"line {number} has seq {seq}: records were removed, inserted or reordered",
                prev,
            )
        if record.get("prev") != prev:
            return f"line {number} does not link to the previous record (prev mismatch)", prev
        return "", claimed
