"""Privacy keys: one 32-byte master key, split with HKDF into independent sub-keys.

The master key comes from ``privacy.key`` (normally ``RAG_PRIVACY__KEY``) or from
``privacy.key_file``. It is never stored under ``home``: whoever copies the vault and
the index must not get the key with them. Sub-keys are derived with distinct HKDF labels,
so learning one (e.g. the audit key handed to an auditor) reveals nothing about the others.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rag._errors import ConfigError

if TYPE_CHECKING:
    from rag._config import Settings

KEY_BYTES = 32

# Changing a label changes every derived key (and so every placeholder): version them.
_LABELS = {
    "id_key": b"sovereign-rag/v1/value-id",
    "enc_key": b"sovereign-rag/v1/vault-encryption",
    "audit_key": b"sovereign-rag/v1/audit-chain",
    "fingerprint": b"sovereign-rag/v1/key-fingerprint",
}

_KEY_FIX = (
    "export RAG_PRIVACY__KEY=$(rag privacy keygen) or set privacy.key_file; "
    "or set privacy.enabled=false for a corpus without personal data"
)


def _derive(master: bytes, label: str, length: int = KEY_BYTES) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=_LABELS[label])
    return hkdf.derive(master)


@dataclass(frozen=True, repr=False)  # the generated repr would print the key bytes
class PrivacyKeys:
    """Sub-keys derived from the master key. Build with :meth:`from_settings`."""

    #: HMAC-SHA256 key for value ids and placeholder suffixes.
    id_key: bytes
    #: AES-256-GCM key for the values in the vault.
    enc_key: bytes
    #: HMAC-SHA256 key of the audit chain.
    audit_key: bytes
    #: Non-secret 16-hex check value, stored in the vault to detect a wrong key.
    fingerprint: str

    def __repr__(self) -> str:
        return f"PrivacyKeys(fingerprint={self.fingerprint!r})"

    @classmethod
    def from_master(cls, master: bytes) -> PrivacyKeys:
        if len(master) != KEY_BYTES:
            raise ConfigError(
                "privacy.key",
                f"the master key must be {KEY_BYTES} bytes, got {len(master)}",
                "make one with `rag privacy keygen`",
            )
        return cls(
            id_key=_derive(master, "id_key"),
            enc_key=_derive(master, "enc_key"),
            audit_key=_derive(master, "audit_key"),
            fingerprint=_derive(master, "fingerprint", 8).hex(),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PrivacyKeys:
        """``privacy.key`` wins over ``privacy.key_file``; neither is a :class:`ConfigError`."""
        privacy = settings.privacy
        if privacy.key is not None:
            return cls.from_master(parse_key(privacy.key.get_secret_value(), setting="privacy.key"))
        if privacy.key_file is not None:
            return cls.from_master(_read_key_file(privacy.key_file, settings.home))
        raise ConfigError("privacy.key", "no key is configured", _KEY_FIX)

    def value_digest(self, normalized: str) -> bytes:
        """32-byte HMAC of a normalized value: the value id and placeholder suffix come from it."""
        # Hot path (called for every detected value): one C call, no Python-level HMAC object.
        return hmac.digest(self.id_key, normalized.encode(), "sha256")


def generate_key() -> str:
    """A new random master key, urlsafe base64 without padding (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=").decode("ascii")


_HEX = frozenset("0123456789abcdefABCDEF")


def parse_key(text: str, *, setting: str = "privacy.key") -> bytes:
    """Decode a master key given as base64 (standard or urlsafe, padded or not) or 64 hex digits.

    Raises :class:`ConfigError` naming ``setting``; the message never echoes the key.
    """
    text = text.strip()
    # 64 hex digits are also valid base64 (of 48 bytes), so hex is tried first.
    if len(text) == 2 * KEY_BYTES and set(text) <= _HEX:
        return bytes.fromhex(text)
    b64 = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            setting,
            "the key is neither base64 nor 64 hex digits",
            "make a valid key with `rag privacy keygen`",
        ) from None
    if len(raw) != KEY_BYTES:
        looks_hex = bool(text) and set(text) <= _HEX
        raise ConfigError(
            setting,
            f"the key has {len(text)} hex digits, {2 * KEY_BYTES} are needed"
            if looks_hex
            else f"the key decodes to {len(raw)} bytes, {KEY_BYTES} are needed",
            "make a valid key with `rag privacy keygen`",
        )
    return raw


def write_key_file(path: Path) -> None:
    """Write a new key to ``path`` (mode 600). Refuses to overwrite an existing file."""
    path = Path(path).expanduser()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        # O_EXCL: never replace a key (that would orphan the vault it protects).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            "privacy.key_file",
            f"{path} already exists; refusing to overwrite a key",
            "choose another path, or delete the old key only if no vault uses it",
        ) from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (generate_key() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key_file(key_file: Path, home: Path) -> bytes:
    path = key_file.expanduser()
    if not path.is_file():
        raise ConfigError(
            "privacy.key_file",
            f"{path} does not exist or is not a file",
            "fix the path, or create a key with `rag privacy keygen` outside home",
        )
    resolved, home_dir = path.resolve(), home.expanduser().resolve()
    if resolved.is_relative_to(home_dir):
        raise ConfigError(
            "privacy.key_file",
            f"{path} is inside home {home_dir}: the key must not be stored beside the vault",
            "move the key file outside home (e.g. ~/.config/sovereign-rag/key), update the setting",
        )
    mode = os.stat(resolved).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            "privacy.key_file",
            f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):o})",
            f"chmod 600 {path}",
        )
    try:
        text = resolved.read_bytes().decode("ascii")
    except PermissionError:
        raise ConfigError(
            "privacy.key_file",
            f"{path} is not readable by this user",
            "run as the key's owner or fix the file owner",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            "privacy.key_file",
            f"{path} does not hold a text key",
            "write a key made by `rag privacy keygen` into it",
        ) from None
    return parse_key(text, setting="privacy.key_file")
