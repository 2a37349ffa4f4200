"""``rag ask`` in a real process: without a provider it shows the passages and how to
configure one; with one (the simulator) it answers with sources, re-identified only for
an allowed principal; provider errors exit 2 with what to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.privacy import PLACEHOLDER, generate_key
from rag.testing import MistralSimulator

REPO = Path(__file__).resolve().parents[2]
QUESTION = "Who will give Saanvi the plant tour?"

pytestmark = pytest.mark.slow


def rag(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from ingest._cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("ask")
    docs = base / "docs"
    shutil.copytree(REPO / "samples", docs)
    env = {
        **os.environ,
        "RAG_PRIVACY__ENABLED": "true",
        "RAG_PRIVACY__KEY": generate_key(),
        "RAG_PRIVACY__REIDENTIFY": '["group:dpo"]',
        "RAG_HOME": str(base / "home"),
    }
    env.pop("RAG_LLM__PROVIDER", None)
    done = rag("ingest", str(docs), "--home", str(base / "home"), cwd=base, env=env)
    assert done.returncode == 0, done.stderr
    return base, env


def test_without_a_provider_shows_passages_and_how_to_configure(home) -> None:  # type: ignore[no-untyped-def]
    base, env = home
    result = rag("ask", QUESTION, "--home", env["RAG_HOME"], cwd=base, env=env)
    assert result.returncode == 2
    assert "no LLM provider is configured" in result.stderr
    assert "llm.provider" in result.stderr and "RAG_LLM__API_KEY" in result.stderr
    assert "welcome.eml" in result.stdout and "plant tour" in result.stdout


def test_answers_with_sources_reidentified_for_allowed_principals(home) -> None:  # type: ignore[no-untyped-def]
    base, env = home
    with MistralSimulator(api_key="k") as sim:
        env = {
            **env,
            "RAG_LLM__PROVIDER": "openai-compatible",
            "RAG_LLM__ENDPOINT": sim.url + "/v1",
            "RAG_LLM__API_KEY": "k",
        }
        dpo = rag("ask", QUESTION, "--as", "dana", "--group", "dpo", cwd=base, env=env)
        assert dpo.returncode == 0, dpo.stderr
        assert "Tobias" in dpo.stdout and not PLACEHOLDER.search(dpo.stdout)
        assert "welcome.eml" in dpo.stdout and "re-identified" in dpo.stdout

        clerk = rag("ask", QUESTION, "--as", "colin", "--no-stream", cwd=base, env=env)
        assert clerk.returncode == 0, clerk.stderr
        assert "Tobias" not in clerk.stdout and PLACEHOLDER.search(clerk.stdout)

        as_json = rag("ask", QUESTION, "--as", "colin", "--json", cwd=base, env=env)
        data = json.loads(as_json.stdout)
        assert data["citations"][0]["source"].endswith("welcome.eml")
        assert data["provider"] == "openai-compatible" and data["reidentified"] is False
        assert "Tobias" not in sim.requests[0].body.decode()

        sim.fault("unauthorized")
        refused = rag("ask", QUESTION, "--as", "colin", cwd=base, env=env)
        assert refused.returncode == 2 and "llm.api_key" in refused.stderr
