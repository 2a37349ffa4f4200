"""The encrypted vault: placeholders, collisions, no plaintext on disk, forget, aliases,
several writer processes, pickling."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sqlite3
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from rag import load_settings
from rag._errors import VaultError
from rag.privacy import _vault
from rag.privacy._keys import PrivacyKeys
from rag.privacy._vault import NewValue, Vault

KEYS = PrivacyKeys.from_master(bytes(range(32)))


def value(text: str, entity: str = "PERSON") -> NewValue:
    digest = KEYS.value_digest(text.lower())
    return NewValue(digest[:16], entity, digest.hex(), text)


def crafted(tag: int, digest_hex: str, entity: str = "PERSON") -> NewValue:
    """A value whose digest is chosen, to force placeholder collisions."""
    return NewValue(bytes([tag]) * 16, entity, digest_hex, f"crafted {tag}")


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    with Vault(tmp_path / "vault.sqlite", KEYS) as v:
        yield v


def test_assign_and_reveal_round_trip(vault: Vault) -> None:
    names = ["Ada Lovelace", "Zoë Ødegård-Ñúñez", "李小龙", "o'brien@example.org"]
    entries = vault.assign([value(n) for n in names])
    assert vault.count() == 4
    placeholders = {entries[value(n).value_id].placeholder: n for n in names}
    for placeholder in placeholders:
        digest = value(placeholders[placeholder]).digest_hex
        assert placeholder == f"<PERSON_{digest[:8]}>"
    assert vault.reveal([*placeholders, "<PERSON_00000000>"]) == placeholders
    assert vault.by_placeholder(placeholders)["<PERSON_" + value(names[0]).digest_hex[:8] + ">"]
    assert not any(e.forgotten for e in entries.values())


def test_same_value_gets_the_same_placeholder_and_first_entity_wins(vault: Vault) -> None:
    first = vault.assign([value("Acme Ltd", "ORGANIZATION"), value("Acme Ltd", "PERSON")])
    again = vault.assign([value("Acme Ltd", "LOCATION")])
    vid = value("Acme Ltd").value_id
    assert first[vid] == again[vid]
    assert again[vid].entity == "ORGANIZATION" and again[vid].placeholder.startswith("<ORGAN")
    assert vault.count() == 1
    assert vault.get([vid, b"\0" * 16]) == {vid: first[vid]}


def test_placeholder_collisions_grow_the_suffix_deterministically(tmp_path: Path) -> None:
    values = [
        crafted(1, "deadbeef" + "0" * 56),
        crafted(2, "deadbeef" + "1" * 56),
        crafted(3, "deadbeef11" + "2" * 54),
    ]
    expected = ["<PERSON_deadbeef>", "<PERSON_deadbeef11>", "<PERSON_deadbeef1122>"]
    for name in ("a", "b"):
        with Vault(tmp_path / f"{name}.sqlite", KEYS) as v:
            got = v.assign(values)
            assert [got[x.value_id].placeholder for x in values] == expected
            originals = [x.original for x in values]
            assert v.reveal(expected) == dict(zip(expected, originals, strict=True))


def test_placeholder_digits_option(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.sqlite", KEYS, placeholder_digits=12) as v:
        v_ = value("Grace Hopper")
        assert v.assign([v_])[v_.value_id].placeholder == f"<PERSON_{v_.digest_hex[:12]}>"


def test_no_plaintext_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    originals = ["Quentin Zebulon Quackenbush", "Wilhelmina Xenakis-Ypres", "Þórdís Jökulsdóttir"]
    wal = Path(f"{path}-wal")

    def assert_no_plaintext() -> None:
        for file in (path, wal):
            data = file.read_bytes() if file.exists() else b""
            for original in originals:
                for form in (original, original.lower(), original.upper()):
                    assert form.encode() not in data
                    assert form.encode("utf-16-le") not in data

    vault = Vault(path, KEYS)
    vault.assign([value(o, "PERSON") for o in originals])
    assert wal.stat().st_size > 0  # the new rows are still in the WAL here
    assert_no_plaintext()
    vault.forget(f"<PERSON_{value(originals[0]).digest_hex[:8]}>")
    assert_no_plaintext()
    vault.close()
    assert_no_plaintext()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ciphertext_is_bound_to_its_row(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    with Vault(path, KEYS) as vault:
        vault.assign([value("Alice Able"), value("Bob Baker")])
    db = sqlite3.connect(path)
    rows = db.execute("SELECT rowid, nonce, ciphertext FROM entries ORDER BY rowid").fetchall()
    db.execute("UPDATE entries SET nonce=?, ciphertext=? WHERE rowid=?", (*rows[0][1:], rows[1][0]))
    db.commit()
    db.close()
    with Vault(path, KEYS) as vault:
        bob = f"<PERSON_{value('Bob Baker').digest_hex[:8]}>"
        with pytest.raises(VaultError, match=r"failed authentication.*restore"):
            vault.reveal([bob])


def test_forget_shreds_the_value_but_keeps_the_tombstone(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    vault = Vault(path, KEYS)
    keep, gone = value("Carol Keep"), value("Dave Gone " + "x" * 300)
    # Enough rows that the shredded bytes would linger in a free block without secure_delete.
    filler = [value(f"filler {i} " + "y" * 300) for i in range(40)]
    entries = vault.assign([keep, gone, *filler])
    placeholder = entries[gone.value_id].placeholder
    db = sqlite3.connect(path)
    (sealed,) = db.execute(
        "SELECT ciphertext FROM entries WHERE placeholder=?", (placeholder,)
    ).fetchone()
    db.close()

    entry = vault.forget(placeholder)
    assert entry is not None and entry.forgotten and entry.placeholder == placeholder
    assert vault.reveal([placeholder, entries[keep.value_id].placeholder]) == {
        entries[keep.value_id].placeholder: "Carol Keep"
    }
    assert vault.get([gone.value_id])[gone.value_id].forgotten
    assert vault.by_placeholder([placeholder])[placeholder].forgotten
    assert (gone.value_id, placeholder) in set(vault.iter_ids())
    # Seen again in new text: same placeholder, still not revealable.
    assert vault.assign([gone])[gone.value_id] == entry
    assert vault.reveal([placeholder]) == {}
    assert vault.forget(placeholder) == entry  # idempotent
    assert vault.forget("<PERSON_ffffffff>") is None
    for file in (path, Path(f"{path}-wal")):
        if file.exists():
            assert sealed not in file.read_bytes()
    vault.close()
    assert sealed not in path.read_bytes()


def test_aliases_turn_ambiguous_for_good_and_resurface(vault: Vault) -> None:
    a, b = b"a" * 16, b"b" * 16
    vault.add_aliases([(a, "<PERSON_1>"), (b, "<PERSON_2>"), (a, "<PERSON_1>")])
    rows = vault.aliases_since(0)
    assert [(r[1], r[2]) for r in rows] == [(a, "<PERSON_1>"), (b, "<PERSON_2>")]
    seen = rows[-1][0]
    vault.add_aliases([(a, "<PERSON_1>"), (b, "<PERSON_2>")])
    assert vault.aliases_since(seen) == []
    vault.add_aliases([(a, "<PERSON_3>")])
    changed = vault.aliases_since(seen)
    assert [(r[1], r[2]) for r in changed] == [(a, None)] and changed[0][0] > seen
    vault.add_aliases([(a, "<PERSON_1>"), (a, "<PERSON_3>")])
    assert vault.aliases_since(changed[0][0]) == []
    assert {r[1]: r[2] for r in vault.aliases_since(0)} == {a: None, b: "<PERSON_2>"}


def test_entries_since_and_iter_ids_page_through_everything(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_vault, "_STREAM_BATCH", 7)
    vault.assign([value(f"person {i}") for i in range(30)])
    entries = vault.entries_since(0)
    assert [e.rowid for e in entries] == sorted(e.rowid for e in entries) and len(entries) == 30
    assert vault.entries_since(entries[19].rowid) == entries[20:]
    ids = list(vault.iter_ids())
    assert ids == [(e.value_id, e.placeholder) for e in entries]


def test_wrong_key_is_a_vault_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    with Vault(path, KEYS) as vault:
        vault.assign([value("Erin Early")])
    other = PrivacyKeys.from_master(bytes(32))
    with pytest.raises(VaultError, match=r"created with a different key.*privacy\.key"):
        Vault(path, other).count()


def test_missing_damaged_foreign_and_newer_files(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match=r"no vault at .*ingest"):
        Vault(tmp_path / "missing.sqlite", KEYS, create=False).count()
    assert not (tmp_path / "missing.sqlite").exists()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(VaultError, match=r"damaged or is not a vault.*privacy\.vault_path"):
        Vault(junk, KEYS).count()
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(VaultError, match=r"not a vault"):
        Vault(foreign, KEYS).count()
    newer = tmp_path / "newer.sqlite"
    Vault(newer, KEYS).close()
    Vault(newer, KEYS).count()
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(VaultError, match=r"schema version 99.*upgrade"):
        Vault(newer, KEYS).count()


def test_open_from_settings_fails_early_and_uses_the_options(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path / "home", privacy={"key": bytes(range(32)).hex(), "placeholder_digits": 10}
    )
    with pytest.raises(VaultError, match=r"ingest"):
        Vault.open(settings, create=False)
    with Vault.open(settings) as vault:
        assert vault.path == tmp_path / "home" / "vault.sqlite"
        v = value("Frank Fisher")
        assert len(vault.assign([v])[v.value_id].placeholder) == len("<PERSON_>") + 10


def test_pickle_round_trip_reopens_lazily(vault: Vault) -> None:
    entries = vault.assign([value("Gina Gold")])
    clone = pickle.loads(pickle.dumps(vault))
    assert clone._conn is None and clone.path == vault.path and clone.keys == vault.keys
    placeholder = next(iter(entries.values())).placeholder
    assert clone.reveal([placeholder]) == {placeholder: "Gina Gold"}
    clone.close()


def _assign_in_child(vault: Vault, texts: list[str]) -> dict[bytes, str]:
    out = {}
    for i in range(0, len(texts), 10):  # many small transactions interleave with the other
        for vid, entry in vault.assign([value(t) for t in texts[i : i + 10]]).items():
            out[vid] = entry.placeholder
    vault.close()
    return out


@pytest.mark.slow
def test_two_processes_assign_overlapping_values_consistently(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.sqlite", KEYS)
    vault.count()  # the parent's open connection must not disturb the children
    texts = [f"shared person {i}" for i in range(400)]
    spawn = multiprocessing.get_context("spawn")
    # An executor (unlike Pool) fails instead of hanging when a worker dies.
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        jobs = [
            pool.submit(_assign_in_child, vault, texts[:300]),
            pool.submit(_assign_in_child, vault, texts[100:][::-1]),
        ]
        a, b = (job.result(timeout=120) for job in jobs)
    overlap = a.keys() & b.keys()
    assert len(overlap) == 200
    assert all(a[k] == b[k] for k in overlap)
    assert vault.count() == 400
    merged = a | b
    assert dict(vault.iter_ids()) == merged
    assert len(set(merged.values())) == 400
    assert vault.reveal(merged.values()) == {merged[value(t).value_id]: t for t in texts}


def test_forked_child_gets_its_own_connection(vault: Vault) -> None:
    vault.assign([value("Hana Hill")])  # the parent connection is open across the fork
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_assign_in_child, args=(vault, ["Ivan Ives", "Hana Hill"]))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert vault.count() == 2
    assert len(vault.entries_since(0)) == 2


def test_prefixes_are_stored_once_and_read_incrementally(vault: Vault) -> None:
    vault.add_prefixes([b"p" * 16, b"q" * 16, b"p" * 16])
    first = vault.prefixes_since(0)
    assert sorted(p for _, p in first) == [b"p" * 16, b"q" * 16]
    vault.add_prefixes([b"q" * 16, b"r" * 16])
    assert [p for _, p in vault.prefixes_since(first[-1][0])] == [b"r" * 16]
