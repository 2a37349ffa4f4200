"""The ``rag`` command line: exit codes, messages, and the main commands end to end."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def rag(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # A real process: main() maps RagError to exit code 2, which only shows from outside.
    return subprocess.run(
        [sys.executable, "-c", "from ingest._cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_bad_setting_is_named_and_exits_2(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "RAG_CHUNKING__MAX_TOKENS": "5"}
    result = rag("status", "--home", str(tmp_path), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "chunking.max_tokens" in result.stderr


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = rag("status", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert result.returncode == 2 and "nope.toml" in result.stderr


def test_toml_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "rag.toml").write_text('[store]\nbackend = "qdrant"\n', "utf-8")
    result = rag("status", "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert result.returncode == 2 and "store.url" in result.stderr  # backend qdrant needs a url


@pytest.mark.slow
def test_ingest_status_search_delete_doctor(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "samples", docs)
    (docs / "broken.docx").write_bytes(b"\x00garbage" * 100)
    (docs / "travel-policy.md.acl").write_text("group:travel\n", "utf-8")
    home = str(tmp_path / "home")

    first = rag("ingest", str(docs), "--home", home, cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # one bad file: exit 1, the rest ingested
    assert "5 ingested" in first.stdout and "1 failed" in first.stdout
    assert "broken.docx" in first.stdout and "corrupt" in first.stdout

    (docs / "broken.docx").unlink()
    again = rag("ingest", str(docs), "--home", home, "--prune", cwd=tmp_path)
    assert again.returncode == 0 and "5 unchanged" in again.stdout

    status = rag("status", "--home", home, cwd=tmp_path)
    assert "documents: 5" in status.stdout

    question = "notice period for termination"
    refused = rag("search", question, "--home", home, cwd=tmp_path)
    assert refused.returncode == 2 and "access-controlled" in refused.stderr  # fail closed
    found = rag("search", question, "--home", home, "-k", "2", "--as", "ann", cwd=tmp_path)
    assert found.returncode == 0 and "supplier-agreement.pdf" in found.stdout
    travel = ["--group", "travel", "--where", f"source={docs / 'travel-policy.md'}"]
    scoped = rag("search", "allowance", "--home", home, "--as", "ann", *travel, cwd=tmp_path)
    assert scoped.returncode == 0 and "travel-policy.md" in scoped.stdout
    assert "supplier-agreement" not in scoped.stdout
    hidden = rag("search", "allowance", "--home", home, "--as", "ann", *travel[2:], cwd=tmp_path)
    assert "travel-policy.md" not in hidden.stdout and "no matching chunks" in hidden.stdout
    bad = rag("search", "x", "--home", home, "--as", "ann", "--where", "nokey=1", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown filter key" in bad.stderr

    gone = rag("delete", str(docs / "supplier-agreement.pdf"), "--home", home, cwd=tmp_path)
    assert gone.returncode == 0 and "removed" in gone.stdout
    assert "documents: 4" in rag("status", "--home", home, cwd=tmp_path).stdout
    nothing = rag("delete", "0" * 24, "--home", home, cwd=tmp_path)
    assert nothing.returncode == 1

    doctor = rag("doctor", cwd=tmp_path)
    assert doctor.returncode == 0 and "Mistral tokenizer" in doctor.stdout
