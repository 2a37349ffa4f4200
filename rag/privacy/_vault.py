"""The vault: placeholder -> original value, in one SQLite file, values sealed with AES-GCM.

No plaintext is stored: a value is known by its id (a keyed HMAC of its normalized form)
and its placeholder; its surface form is AES-256-GCM ciphertext bound to the row by the
associated data ``value_id + placeholder``, so a ciphertext moved to another row fails to
decrypt. ``forget`` crypto-shreds one value: the ciphertext is overwritten (``secure_delete``)
and the WAL truncated, but the row stays as a tombstone so the value is still recognised
and replaced in new text, and can never be revealed again. Copies in backups and old disk
blocks are out of reach of this module.

Concurrency: WAL mode, 30 s busy timeout, every write in one ``BEGIN IMMEDIATE``
transaction, so several ingestion processes may ``assign`` at once and readers never
block. Rowids only grow and commit in order, so ``entries_since``/``aliases_since`` feed
incremental in-memory copies without missing rows.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rag._errors import PrivacyError, VaultError
from rag.privacy._keys import PrivacyKeys

if TYPE_CHECKING:
    from rag._config import Settings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ID_BYTES = 16
_CHUNK = 500  # ids per IN (...) query: well under SQLite's variable limit
_STREAM_BATCH = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
    rowid INTEGER PRIMARY KEY,
    value_id BLOB UNIQUE NOT NULL,
    placeholder TEXT UNIQUE NOT NULL,
    entity TEXT NOT NULL,
    nonce BLOB,
    ciphertext BLOB,
    created_at TEXT NOT NULL,
    forgotten_at TEXT
);
-- placeholder NULL = ambiguous (one alias seen for two values): never applied again.
CREATE TABLE IF NOT EXISTS aliases(
    rowid INTEGER PRIMARY KEY,
    alias_id BLOB UNIQUE NOT NULL,
    placeholder TEXT
);
-- Keyed ids of the leading words of multi-word values ("margaret" of "margaret
-- thornbury"): a scan extends a word run only while it is such a prefix.
CREATE TABLE IF NOT EXISTS prefixes(
    rowid INTEGER PRIMARY KEY,
    prefix_id BLOB UNIQUE NOT NULL
);
-- Keyed ids of the words of a multi-word value, for search only: BM25 matches part of a
-- name ("Coral Gold" of "Coral Gold Resources Ltd") as it would in clear text.
CREATE TABLE IF NOT EXISTS terms(
    placeholder TEXT NOT NULL,
    term_id BLOB NOT NULL,
    PRIMARY KEY(placeholder, term_id)
) WITHOUT ROWID;
"""

# A conflicting alias turns NULL and moves to a new, highest rowid so that readers
# polling ``aliases_since`` see it again. The ``max + 1`` is safe: writers are serialized.
_UPSERT_ALIAS = """
INSERT INTO aliases(alias_id, placeholder) VALUES (?, ?)
ON CONFLICT(alias_id) DO UPDATE
SET placeholder = NULL, rowid = (SELECT max(rowid) FROM aliases) + 1
WHERE aliases.placeholder IS NOT NULL AND aliases.placeholder != excluded.placeholder
"""

_PAGE = "SELECT rowid, value_id, placeholder FROM entries WHERE rowid > ? ORDER BY rowid LIMIT ?"
_ENTRY_COLUMNS = "rowid, value_id, placeholder, entity, forgotten_at IS NOT NULL"

_FIX_DAMAGED = "restore the vault from a backup, or point privacy.vault_path at the right file"

# Connections inherited through fork() must not be used or closed in the child (SQLite
# forbids it); they are parked here so garbage collection does not close them either.
_INHERITED: list[sqlite3.Connection] = []


@dataclass(frozen=True)
class NewValue:
    """A detected value to register. ``original`` is encrypted, never stored in clear."""

    #: First 16 bytes of ``PrivacyKeys.value_digest(normalized value)``.
    value_id: bytes
    entity: str
    #: ``value_digest(normalized).hex()``; the placeholder suffix is a prefix of it.
    digest_hex: str
    #: Surface form, what re-identification gives back.
    original: str = field(repr=False)  # the value itself: never in a repr or a log


@dataclass(frozen=True)
class VaultEntry:
    rowid: int
    value_id: bytes
    placeholder: str
    entity: str
    forgotten: bool


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _entry(row: tuple[Any, ...]) -> VaultEntry:
    return VaultEntry(row[0], row[1], row[2], row[3], bool(row[4]))


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class Vault:
    """SQLite vault. Picklable (path, keys, options); the connection opens lazily.

    Use from one thread at a time; give each process its own copy (pickling does that).
    """

    def __init__(
        self,
        path: Path,
        keys: PrivacyKeys,
        *,
        placeholder_digits: int = 8,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self.keys = keys
        self.placeholder_digits = placeholder_digits
        self.create = create
        self._aead = AESGCM(keys.enc_key)
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    @classmethod
    def open(
        cls, settings: Settings, keys: PrivacyKeys | None = None, *, create: bool = True
    ) -> Vault:
        """The vault at ``settings.vault_file``, opened now so a wrong key fails at start-up."""
        vault = cls(
            settings.vault_file,
            keys or PrivacyKeys.from_settings(settings),
            placeholder_digits=settings.privacy.placeholder_digits,
            create=create,
        )
        vault._connection()
        return vault

    def __repr__(self) -> str:
        return f"Vault({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "keys": self.keys,
            "placeholder_digits": self.placeholder_digits,
            "create": self.create,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["path"],
            state["keys"],
            placeholder_digits=state["placeholder_digits"],
            create=state["create"],
        )

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    # -- writes --
    def assign(self, values: Sequence[NewValue]) -> dict[bytes, VaultEntry]:
        """One entry per value id: existing ones unchanged (first entity wins), new ones created."""
        if not values:
            return {}
        for v in values:
            if len(v.value_id) != ID_BYTES:
                raise PrivacyError(
                    f"a value id has {len(v.value_id)} bytes instead of {ID_BYTES}; "
                    "use the first 16 bytes of PrivacyKeys.value_digest()"
                )
        ids = list(dict.fromkeys(v.value_id for v in values))
        # Known values need no write lock: workers re-seeing values do not queue behind writers.
        result = self.get(ids)
        if len(result) == len(ids):
            return result
        with self._write() as conn:
            # Another process may have added some since the read above.
            result.update(self._select(conn, "value_id", [i for i in ids if i not in result]))
            now = _now()
            for v in values:
                if v.value_id not in result:
                    result[v.value_id] = self._insert(conn, v, now)
        return result

    def _insert(self, conn: sqlite3.Connection, v: NewValue, now: str) -> VaultEntry:
        plaintext = v.original.encode()
        for placeholder in self._candidates(v):
            nonce = os.urandom(12)
            sealed = self._aead.encrypt(nonce, plaintext, v.value_id + placeholder.encode())
            try:
                cur = conn.execute(
                    "INSERT INTO entries(value_id, placeholder, entity, nonce, ciphertext, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (v.value_id, placeholder, v.entity, nonce, sealed, now),
                )
            except sqlite3.IntegrityError:
                continue  # placeholder taken by another value (value ids were checked)
            assert cur.lastrowid is not None
            return VaultEntry(cur.lastrowid, v.value_id, placeholder, v.entity, False)
        raise PrivacyError(
            f"no free placeholder for a {v.entity} value: its full digest collides; "
            "check that value ids and digests come from the same PrivacyKeys"
        )

    def _candidates(self, v: NewValue) -> Iterator[str]:
        # Deterministic order, so every process proposes the same placeholders.
        for digits in range(self.placeholder_digits, len(v.digest_hex) + 2, 2):
            yield f"<{v.entity}_{v.digest_hex[:digits]}>"

    def add_aliases(self, aliases: Sequence[tuple[bytes, str]]) -> None:
        """Record ``(alias_id, placeholder)`` pairs; an alias seen with two placeholders turns
        ambiguous (None) for good."""
        if not aliases:
            return
        with self._write() as conn:
            conn.executemany(_UPSERT_ALIAS, aliases)

    def add_prefixes(self, prefix_ids: Iterable[bytes]) -> None:
        """Record keyed ids of value prefixes (no plaintext); duplicates are ignored."""
        rows = [(p,) for p in set(prefix_ids)]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany("INSERT OR IGNORE INTO prefixes(prefix_id) VALUES (?)", rows)

    def add_terms(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        """Record ``(placeholder, term_id)`` pairs: keyed ids of a value's words."""
        rows = list(set(pairs))
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO terms(placeholder, term_id) VALUES (?, ?)", rows
            )

    def terms_for(self, placeholders: Iterable[str]) -> dict[str, list[bytes]]:
        """Word ids of each placeholder's value (placeholders without any are absent)."""
        wanted = list(set(placeholders))
        out: dict[str, list[bytes]] = {}
        with self._errors():
            conn = self._connection()
            for part in _chunks(wanted):
                rows = conn.execute(
                    "SELECT placeholder, term_id FROM terms "
                    f"WHERE placeholder IN ({','.join('?' * len(part))})",
                    part,
                )
                for placeholder, term_id in rows:
                    out.setdefault(placeholder, []).append(term_id)
        return out

    def prefixes_since(self, rowid: int) -> list[tuple[int, bytes]]:
        """``(rowid, prefix_id)`` above ``rowid``, in order."""
        with self._errors():
            rows = self._connection().execute(
                "SELECT rowid, prefix_id FROM prefixes WHERE rowid > ? ORDER BY rowid", (rowid,)
            )
            return list(rows)

    def forget(self, placeholder: str) -> VaultEntry | None:
        """Crypto-shred one value; the tombstone keeps its id and placeholder. None if unknown."""
        with self._write() as conn:
            conn.execute(
                "UPDATE entries SET nonce = NULL, ciphertext = NULL, forgotten_at = ? "
                "WHERE placeholder = ? AND forgotten_at IS NULL",
                (_now(), placeholder),
            )
            entry = self._select(conn, "placeholder", [placeholder]).get(placeholder)
        # Old page images with the ciphertext stay in the WAL until it is reset; truncate it.
        # A reader still holding an old snapshot blocks this; the next forget retries.
        with self._errors():
            busy = self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            log.warning(
                "vault %s: the WAL could not be truncated after forget (a reader was busy); "
                "old ciphertext stays in it until the next checkpoint",
                self.path,
            )
        return entry

    # -- reads --
    def get(self, value_ids: Iterable[bytes]) -> dict[bytes, VaultEntry]:
        with self._errors():
            return self._select(self._connection(), "value_id", list(set(value_ids)))

    def by_placeholder(self, placeholders: Iterable[str]) -> dict[str, VaultEntry]:
        with self._errors():
            return self._select(self._connection(), "placeholder", list(set(placeholders)))

    def reveal(self, placeholders: Iterable[str]) -> dict[str, str]:
        """Original values of the known, not forgotten placeholders."""
        wanted = list(set(placeholders))
        out: dict[str, str] = {}
        with self._errors():
            conn = self._connection()
            for part in _chunks(wanted):
                rows = conn.execute(
                    "SELECT rowid, value_id, placeholder, nonce, ciphertext FROM entries "
                    f"WHERE placeholder IN ({','.join('?' * len(part))}) "
                    "AND ciphertext IS NOT NULL",
                    part,
                ).fetchall()
                for rowid, value_id, placeholder, nonce, sealed in rows:
                    try:
                        clear = self._aead.decrypt(nonce, sealed, value_id + placeholder.encode())
                    except InvalidTag:
                        raise VaultError(
                            f"vault entry {rowid} in {self.path} failed authentication: "
                            f"the file was modified or damaged ({_FIX_DAMAGED})"
                        ) from None
                    out[placeholder] = clear.decode()
        return out

    def entries_since(self, rowid: int) -> list[VaultEntry]:
        """Entries with a rowid above ``rowid``, in rowid order."""
        with self._errors():
            rows = self._connection().execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE rowid > ? ORDER BY rowid", (rowid,)
            )
            return [_entry(r) for r in rows]

    def aliases_since(self, rowid: int) -> list[tuple[int, bytes, str | None]]:
        """``(rowid, alias_id, placeholder or None if ambiguous)`` above ``rowid``, in order."""
        with self._errors():
            rows = self._connection().execute(
                "SELECT rowid, alias_id, placeholder FROM aliases WHERE rowid > ? ORDER BY rowid",
                (rowid,),
            )
            return list(rows)

    def count(self) -> int:
        with self._errors():
            return int(self._connection().execute("SELECT count(*) FROM entries").fetchone()[0])

    def iter_ids(self) -> Iterator[tuple[bytes, str]]:
        """``(value_id, placeholder)`` of every entry, tombstones included, streamed."""
        # Keyset pages: no read transaction stays open while the caller consumes rows,
        # so writes from this object and WAL checkpoints are not held up.
        last = 0
        while True:
            with self._errors():
                rows = self._connection().execute(_PAGE, (last, _STREAM_BATCH)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, value_id, placeholder in rows:
                yield value_id, placeholder

    # -- plumbing --
    def _select(
        self, conn: sqlite3.Connection, column: str, keys: list[Any]
    ) -> dict[Any, VaultEntry]:
        found: dict[Any, VaultEntry] = {}
        index = 1 if column == "value_id" else 2
        for part in _chunks(keys):
            rows = conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries "
                f"WHERE {column} IN ({','.join('?' * len(part))})",
                part,
            )
            for row in rows:
                found[row[index]] = _entry(row)
        return found

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:  # SQLite messages hold no values, only names
            raise VaultError(
                f"vault {self.path}: {exc} (if the database is locked, another process holds "
                f"a write for over 30 s; if it is damaged, {_FIX_DAMAGED})"
            ) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            conn = self._connection()
            with _transaction(conn):
                yield conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._conn = self._connect()
        self._pid = os.getpid()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            if not self.create:
                raise VaultError(
                    f"there is no vault at {self.path}; ingest documents first "
                    "(ingestion creates the vault), or set privacy.vault_path to the vault"
                )
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                # SQLite gives the -wal and -shm files the database file's mode.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError as exc:
                raise VaultError(
                    f"cannot create the vault at {self.path}: {exc.strerror}; check the "
                    "permissions of home, or set privacy.vault_path to a writable place"
                ) from None
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _write).
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # A commit must survive a power cut: the index may already hold its placeholders.
            conn.execute("PRAGMA synchronous=FULL")
            # forget() must not leave ciphertext behind in free pages.
            conn.execute("PRAGMA secure_delete=ON")
            # Value ids and placeholders are random keys: every insert dirties a different
            # index page. A 64 MB cache holds both indexes of a 1M-entry vault, and rarer
            # checkpoints write each page once for several commits (measured: about half
            # the system time of assign at 1M entries). The cache only grows as it is used.
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA wal_autocheckpoint=8000")
            conn.execute("PRAGMA journal_size_limit=67108864")
            self._check_schema(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise VaultError(
                f"{self.path} is damaged or is not a vault ({exc}); {_FIX_DAMAGED}"
            ) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        meta = self._read_meta(conn)
        if meta is None:
            with _transaction(conn):  # first opener creates; others wait, then see it
                meta = self._read_meta(conn)
                if meta is None:
                    meta = self._create_schema(conn)
        version = meta.get("schema_version", "")
        if not version.isdigit() or "fingerprint" not in meta:
            raise VaultError(f"{self.path} has no vault metadata; {_FIX_DAMAGED}")
        if int(version) > SCHEMA_VERSION:
            raise VaultError(
                f"the vault at {self.path} has schema version {version}, newer than this "
                f"release understands ({SCHEMA_VERSION}); upgrade sovereign-rag"
            )
        if meta["fingerprint"] != self.keys.fingerprint:
            raise VaultError(
                f"the vault at {self.path} was created with a different key (fingerprint "
                f"{meta['fingerprint']}, this key {self.keys.fingerprint}); set the key it was "
                "created with in privacy.key or privacy.key_file, or point privacy.vault_path "
                "at a new vault"
            )

    def _create_schema(self, conn: sqlite3.Connection) -> dict[str, str]:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise VaultError(
                f"{self.path} is an SQLite database but not a vault; "
                "set privacy.vault_path to a new file or to the vault"
            )
        # Not executescript(): it would COMMIT the open transaction first.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        meta = {"schema_version": str(SCHEMA_VERSION), "fingerprint": self.keys.fingerprint}
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
        return meta

    @staticmethod
    def _read_meta(conn: sqlite3.Connection) -> dict[str, str] | None:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if exists is None:
            return None
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front: read-then-insert cannot race another writer.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
            conn.execute("ROLLBACK")
        raise
