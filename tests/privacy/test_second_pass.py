"""Values first found in a later document are replaced in the earlier ones too."""

from __future__ import annotations

import pytest

from ingest import PseudonymizeStep, ingest
from rag import load_settings
from rag.privacy import PrivacyKeys, Pseudonymizer, Vault, generate_key, placeholders_in
from rag.stores import open_store
from rag.testing import FakeDetector, FakeEmbedder


class _OnlyAfterTitles(FakeDetector):
    """Finds its names only where a title precedes them, as a model with little context."""

    def detect(self, texts, language="en"):
        found = super().detect(texts, language)
        return [
            [s for s in spans if s.source != "ner" or text[: s.start].endswith("Dr ")]
            for text, spans in zip(texts, found, strict=True)
        ]


@pytest.mark.slow
def test_stored_chunks_are_rewritten_when_a_later_document_teaches_a_value(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Zebulon Quark approved the budget for the new plant.", "utf-8")
    (docs / "b.txt").write_text("The lease was signed by Dr Zebulon Quark in March.", "utf-8")
    settings = load_settings(
        home=tmp_path / "home",
        ingest={"workers": 0},
        privacy={"enabled": True, "key": generate_key(), "ner": "none"},
    )
    keys = PrivacyKeys.from_settings(settings)
    pz = Pseudonymizer(
        settings.privacy, keys, Vault.open(settings, keys), _OnlyAfterTitles(["Zebulon Quark"])
    )
    embedder = FakeEmbedder()
    report = ingest([docs], settings, embedder=embedder, steps=[PseudonymizeStep(settings, pz)])
    assert report.ok and report.chunks_rewritten == 1
    store = open_store(settings, embedder.dimension)
    try:
        chunks = {c.source.rsplit("/", 1)[-1]: c for c in store.scroll(limit=10)[0]}
    finally:
        store.close()
    assert "Quark" not in chunks["a.txt"].text + chunks["b.txt"].text
    ph = placeholders_in(chunks["b.txt"].text)
    assert ph and placeholders_in(chunks["a.txt"].text) == ph
    assert chunks["a.txt"].metadata["pii_placeholders"] == ph
