"""Done-when of the privacy layer, end to end on real parsers and the real detector:
planted PII in eight formats never reaches any file under the home directory; the vault
gives it back with the key only; one person gets one placeholder in every document and
in questions; erasure shreds the value; the audit chain detects a flipped byte."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from planted import build_planted_corpus, encodings_of

from ingest import forget, ingest
from rag import PUBLIC, Principal, Retriever, VaultError, load_settings
from rag.privacy import AuditLog, PrivacyKeys, Pseudonymizer, Reidentifier, Vault, generate_key
from rag.privacy._text import normalize
from rag.stores import Filter, Match, open_store
from rag.testing import FakeEmbedder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    corpus = build_planted_corpus(base / "docs")
    key_file = base / "secrets" / "vault.key"
    key_file.parent.mkdir()
    key_file.write_text(generate_key())
    os.chmod(key_file, 0o600)
    settings = load_settings(
        home=base / "home",
        ingest={"workers": 1, "embed_group": 16},
        privacy={
            "enabled": True,
            "key_file": str(key_file),
            "languages": ["en", "fr", "de"],
            "reidentify": ["group:dpo"],
        },
    )
    embedder = FakeEmbedder(dimension=32, max_tokens=512)
    report = ingest([corpus.root], settings, embedder=embedder)
    assert report.ok, report.errors
    assert report.files_ingested == len(corpus.files)
    return corpus, settings, embedder, report


def _home_files(home: Path):
    for path in sorted(home.rglob("*")):
        if path.is_file():
            yield path


def test_no_planted_value_in_any_file_under_home(world):
    corpus, settings, embedder, _ = world
    leaks = []
    files = list(_home_files(settings.home))
    assert any(p.suffix == ".sqlite" for p in files) and any("runs" in p.parts for p in files)
    for path in files:
        data = path.read_bytes()
        for value in corpus.searchable():
            if any(needle in data for needle in encodings_of(value)):
                leaks.append((path.relative_to(settings.home).as_posix(), value))
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"
    # The embedder saw pseudonymized text only.
    seen = "\n".join(embedder.passages)
    assert "<PERSON_" in seen
    assert not [v for v in corpus.searchable() if v in seen]


def test_vault_gives_the_values_back_with_the_key_only(world, tmp_path):
    corpus, settings, _, _ = world
    keys = PrivacyKeys.from_settings(settings)
    with Vault.open(settings, keys) as vault:
        placeholders = [e.placeholder for e in vault.entries_since(0)]
        revealed = set(vault.reveal(placeholders).values())
    for entity in ("PERSON", "EMAIL_ADDRESS", "IBAN_CODE", "CREDIT_CARD"):
        for value in corpus.values[entity]:
            assert any(normalize(value) in normalize(r) for r in revealed), (entity, value)
    other = PrivacyKeys.from_master(os.urandom(32))
    with pytest.raises(VaultError, match=r"different key"):
        Vault.open(settings, other).reveal(placeholders[:1])


def test_one_person_one_placeholder_in_documents_and_questions(world):
    _, settings, embedder, _ = world
    store = open_store(settings, embedder.dimension)
    try:
        keys = PrivacyKeys.from_settings(settings)
        with Vault.open(settings, keys) as vault:
            value_id = keys.value_digest(normalize("Margaret Thornbury"))[:16]
            placeholder = vault.get([value_id])[value_id].placeholder
        where = Filter(must=(Match("meta.pii_placeholders", (placeholder,)),))
        chunks, _ = store.scroll(where, limit=100)
        assert len({c.doc_id for c in chunks}) >= 2, "she is named in several documents"
        retriever = Retriever(
            settings,
            embedder=embedder,
            store=store,
            query_steps=(Pseudonymizer.open(settings).query_step(),),
        )
        found = retriever.retrieve("What did Margaret Thornbury sign?", Principal("x"), k=3)
        assert placeholder in found.question
        assert any(placeholder in h.chunk.text for h in found.hits)
        assert all(h.chunk.acl == (PUBLIC,) for h in found.hits)
    finally:
        store.close()


def test_forget_shreds_the_value_and_the_audit_chain_detects_tampering(world, tmp_path):
    _, settings, embedder, _ = world
    keys = PrivacyKeys.from_settings(settings)
    store = open_store(settings, embedder.dimension)
    try:
        done = forget(settings, store, value="Anneliese Wurmbach", delete=True)
        assert done.chunks >= 1 and done.documents
        assert store.count(Filter(must=(Match("meta.pii_placeholders", (done.placeholder,)),))) == 0
    finally:
        store.close()
    receipt = Path(done.receipt).read_text("utf-8")
    assert "Wurmbach" not in receipt and done.placeholder in receipt
    vault = Vault.open(settings, keys)
    audit = AuditLog.open(settings, keys)
    text = f"Contact {done.placeholder} today."
    assert (
        Reidentifier(settings.privacy, vault, audit).reidentify(
            text, Principal("dpo-officer", ("dpo",))
        )
        == text
    ), "an erased value can no longer be re-identified"
    # Still recognised (tombstone) in new text, so it is never stored or sent again.
    pz = Pseudonymizer.open(settings)
    assert done.placeholder in pz.pseudonymize_text("Anneliese Wurmbach called.")
    events = [json.loads(x)["event"] for x in settings.audit_file.read_text().splitlines()]
    assert {"ingest_run", "erasure", "reidentify"} <= set(events)
    report = audit.verify()
    assert report.ok, report.problem
    raw = bytearray(settings.audit_file.read_bytes())
    lines = raw.split(b"\n")
    target = len(lines[0]) + 1 + 10  # a byte inside the second record
    raw[target] ^= 0x01
    tampered = tmp_path / "audit.jsonl"
    tampered.write_bytes(bytes(raw))
    bad = AuditLog(tampered, keys.audit_key).verify()
    assert not bad.ok and bad.first_bad_line == 2
