"""Privacy keys: parsing, derivation, key files, and that no key ever shows in text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest

from rag import ConfigError, load_settings
from rag.privacy._keys import PrivacyKeys, generate_key, parse_key, write_key_file

MASTER = bytes(range(32))


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAG_PRIVACY__KEY", "RAG_PRIVACY__KEY_FILE", "RAG_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_generated_keys_parse_to_32_random_bytes() -> None:
    a, b = generate_key(), generate_key()
    assert a != b
    assert "=" not in a and len(a) == 43
    assert len(parse_key(a)) == 32


@pytest.mark.parametrize(
    "text",
    [
        MASTER.hex(),
        MASTER.hex().upper(),
        base64.b64encode(MASTER).decode(),
        base64.b64encode(MASTER).decode().rstrip("="),
        base64.urlsafe_b64encode(MASTER).decode(),
        base64.urlsafe_b64encode(MASTER).decode().rstrip("=") + "\n",
        "  " + base64.b64encode(MASTER).decode() + "  ",
    ],
)
def test_parse_key_accepts_hex_and_every_base64_flavour(text: str) -> None:
    assert parse_key(text) == MASTER


def test_sixty_four_hex_digits_are_hex_even_though_they_are_valid_base64() -> None:
    assert parse_key("ab" * 32) == b"\xab" * 32


def test_urlsafe_and_standard_alphabets_decode_the_same_key() -> None:
    key = bytes([0xFB, 0xFF, 0xBF] * 10 + [1, 2])  # encodes to '+' and '/' characters
    std = base64.b64encode(key).decode()
    assert "+" in std and "/" in std
    assert parse_key(std) == parse_key(base64.urlsafe_b64encode(key).decode()) == key


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (base64.b64encode(bytes(16)).decode(), r"16 bytes, 32 are needed"),
        (MASTER.hex()[:-2], r"62 hex digits, 64 are needed"),
        (base64.b64encode(b"\xff" * 48).decode(), r"48 bytes"),
        ("not a key at all!", r"neither base64 nor 64 hex"),
        ("", r"0 bytes"),
    ],
)
def test_bad_keys_raise_config_error_without_echoing_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        parse_key(text, setting="privacy.key_file")
    assert info.value.setting == "privacy.key_file"
    assert "keygen" in str(info.value)
    if text:
        assert text not in str(info.value)


def test_sub_keys_are_distinct_deterministic_and_tied_to_the_master() -> None:
    keys = PrivacyKeys.from_master(MASTER)
    assert len({keys.id_key, keys.enc_key, keys.audit_key, MASTER}) == 4
    assert all(len(k) == 32 for k in (keys.id_key, keys.enc_key, keys.audit_key))
    assert PrivacyKeys.from_master(MASTER) == keys
    other = PrivacyKeys.from_master(bytes(32))
    assert other.fingerprint != keys.fingerprint and other.id_key != keys.id_key
    assert len(keys.fingerprint) == 16 and int(keys.fingerprint, 16) >= 0


def test_master_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"must be 32 bytes, got 31"):
        PrivacyKeys.from_master(MASTER[:31])


def test_value_digest_is_the_hmac_of_the_utf8_value() -> None:
    keys = PrivacyKeys.from_master(MASTER)
    digest = keys.value_digest("jürgen müller")
    assert digest == hmac.new(keys.id_key, "jürgen müller".encode(), hashlib.sha256).digest()
    assert len(digest) == 32
    assert keys.value_digest("jurgen muller") != digest


def test_repr_and_str_never_show_key_material() -> None:
    keys = PrivacyKeys.from_master(MASTER)
    for text in (repr(keys), str(keys), f"{keys}", repr([keys])):
        assert keys.fingerprint in text
        for secret in (MASTER, keys.id_key, keys.enc_key, keys.audit_key):
            assert repr(secret) not in text and secret.hex() not in text
            assert str(list(secret)) not in text


def _key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_settings_key_wins_over_key_file(tmp_path: Path) -> None:
    key_file = _key_file(tmp_path / "secret" / "key", bytes(32).hex())
    settings = load_settings(
        home=tmp_path / "home", privacy={"key": MASTER.hex(), "key_file": key_file}
    )
    assert PrivacyKeys.from_settings(settings) == PrivacyKeys.from_master(MASTER)
    only_file = load_settings(home=tmp_path / "home", privacy={"key_file": key_file})
    assert PrivacyKeys.from_settings(only_file) == PrivacyKeys.from_master(bytes(32))


def test_no_key_names_the_setting_and_the_fixes(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, privacy={"key": None, "key_file": None})
    with pytest.raises(ConfigError, match=r"privacy\.key.*no key.*keygen.*enabled=false"):
        PrivacyKeys.from_settings(settings)


def test_bad_key_in_settings_is_not_echoed(tmp_path: Path) -> None:
    secret = "c2VjcmV0LWJ1dC10b28tc2hvcnQ"
    settings = load_settings(home=tmp_path, privacy={"key": secret})
    with pytest.raises(ConfigError, match=r"'privacy\.key'") as info:
        PrivacyKeys.from_settings(settings)
    assert secret not in str(info.value)


def test_key_file_inside_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key_file = _key_file(home / "keys" / "master", MASTER.hex())
    # The same file reached through a path outside home is still inside once resolved.
    link = tmp_path / "link"
    link.symlink_to(key_file)
    for path in (key_file, link):
        settings = load_settings(home=home, privacy={"key_file": path})
        with pytest.raises(ConfigError, match=r"privacy\.key_file.*beside the vault"):
            PrivacyKeys.from_settings(settings)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = _key_file(tmp_path / "key", MASTER.hex(), mode)
    settings = load_settings(home=tmp_path / "home", privacy={"key_file": key_file})
    with pytest.raises(ConfigError, match=r"privacy\.key_file.*chmod 600"):
        PrivacyKeys.from_settings(settings)


def test_missing_and_garbled_key_files(tmp_path: Path) -> None:
    missing = load_settings(home=tmp_path / "home", privacy={"key_file": tmp_path / "nope"})
    with pytest.raises(ConfigError, match=r"privacy\.key_file.*does not exist"):
        PrivacyKeys.from_settings(missing)
    garbled = _key_file(tmp_path / "bad", "hunter2-hunter2")
    settings = load_settings(home=tmp_path / "home", privacy={"key_file": garbled})
    with pytest.raises(ConfigError, match=r"'privacy\.key_file'") as info:
        PrivacyKeys.from_settings(settings)
    assert "hunter2" not in str(info.value)


def test_write_key_file_is_private_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "key"
    old_umask = os.umask(0o000)  # a permissive umask must not loosen the mode
    try:
        write_key_file(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert len(parse_key(first)) == 32
    with pytest.raises(ConfigError, match=r"already exists; refusing to overwrite"):
        write_key_file(path)
    assert path.read_text() == first
    settings = load_settings(home=tmp_path / "home", privacy={"key_file": path})
    assert PrivacyKeys.from_settings(settings) == PrivacyKeys.from_master(parse_key(first))
