"""The Workspace facade: one object ingests, searches and answers over one home."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import Workspace
from rag import Principal, ProviderNotConfiguredError, load_settings
from rag.testing import FakeEmbedder, ScriptedChatModel, grounded_answer

pytestmark = pytest.mark.slow  # real parsers


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lease.txt").write_text(
        "Termination. The tenant must give ninety days notice before terminating the lease.\n",
        "utf-8",
    )
    (docs / "travel.md").write_text(
        "# Travel\n\nTrips must be booked through the travel desk 14 days ahead.\n", "utf-8"
    )
    return docs


def test_ingest_search_answer_status_from_one_object(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", ingest={"workers": 0})
    chat = ScriptedChatModel(default=grounded_answer)
    with Workspace(settings, embedder=FakeEmbedder(max_tokens=512), chat=chat) as ws:
        report = ws.ingest([_docs(tmp_path)])
        assert report.ok and report.files_ingested == 2
        hits = ws.search("notice before terminating", k=1).hits
        assert hits[0].chunk.source.endswith("lease.txt")
        answer = ws.answer("How much notice must the tenant give?", Principal("alice"))
        assert "ninety days" in answer.text
        assert answer.citations[0].source.endswith("lease.txt")
        events = list(ws.stream("How much notice must the tenant give?", Principal("alice")))
        assert events[-1].answer.text == answer.text  # type: ignore[attr-defined]
        assert ws.status().collection.documents == 2
    # Closed: the embedded index is free for another opener (one per process at a time).
    with Workspace(settings, embedder=FakeEmbedder(max_tokens=512)) as again:
        assert again.status().collection.points >= 2


def test_answer_without_a_provider_says_how_to_configure_one(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    with Workspace(settings, embedder=FakeEmbedder(max_tokens=512)) as ws:
        ws.ingest([_docs(tmp_path)])
        with pytest.raises(ProviderNotConfiguredError, match=r"llm\.provider") as caught:
            ws.answer("notice?", Principal("alice"))
        assert "RAG_LLM__API_KEY" in str(caught.value)
        assert ws.search("notice", Principal("alice")).hits  # search still works
