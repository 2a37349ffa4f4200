"""``rag privacy keygen``, ingestion with privacy on, ``rag forget``, ``rag audit verify``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import REPO, rag


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_PRIVACY")}
    return {**env, "RAG_PRIVACY__ENABLED": "true", **extra}


def test_ingest_refuses_without_a_key_and_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hello", "utf-8")
    result = rag(
        "ingest", str(tmp_path / "a.txt"), "--home", str(tmp_path / "h"), cwd=tmp_path, env=_env()
    )
    assert result.returncode == 2
    assert "privacy.key" in result.stderr and "rag privacy keygen" in result.stderr
    assert not (tmp_path / "h" / "index").exists(), "nothing was written"


def test_keygen_writes_a_private_key_file_once(tmp_path: Path) -> None:
    key = tmp_path / "k" / "vault.key"
    key.parent.mkdir()
    assert rag("privacy", "keygen", "--out", str(key), cwd=tmp_path).returncode == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    again = rag("privacy", "keygen", "--out", str(key), cwd=tmp_path)
    assert again.returncode == 2 and key.read_text().strip(), "an existing key is never replaced"
    printed = rag("privacy", "keygen", cwd=tmp_path)
    assert printed.returncode == 0 and len(printed.stdout.strip()) >= 43


@pytest.mark.slow
def test_private_ingest_forget_and_audit(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "samples", docs)
    home = str(tmp_path / "home")
    key = rag("privacy", "keygen", cwd=tmp_path).stdout.strip()
    env = _env(RAG_PRIVACY__KEY=key, RAG_PRIVACY__REIDENTIFY='["group:dpo"]')

    first = rag("ingest", str(docs), "--home", home, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "pseudonymized:" in first.stdout and "PERSON" in first.stdout

    found = rag("search", "Jonah Pellworth", "--home", home, cwd=tmp_path, env=env)
    assert found.returncode == 0, found.stderr
    assert "welcome.eml" in found.stdout and "Pellworth" not in found.stdout

    revealed = rag(
        "search",
        "Jonah Pellworth",
        "--as",
        "carol",
        "--group",
        "dpo",
        "--reveal",
        "--home",
        home,
        cwd=tmp_path,
        env=env,
    )
    assert revealed.returncode == 0 and "Pellworth" in revealed.stdout, revealed.stderr
    refused = rag(
        "search",
        "Jonah Pellworth",
        "--as",
        "bob",
        "--reveal",
        "--home",
        home,
        cwd=tmp_path,
        env=env,
    )
    assert refused.returncode == 2 and "privacy.reidentify" in refused.stderr

    scan = rag("privacy", "scan", "write to jonah pellworth", "--home", home, cwd=tmp_path, env=env)
    assert scan.returncode == 1 and "VAULT_VALUE" in scan.stdout

    gone = rag(
        "forget", "--value", "Jonah Pellworth", "--delete", "--home", home, cwd=tmp_path, env=env
    )
    assert gone.returncode == 0, gone.stderr
    assert "erased from the vault" in gone.stdout and "deleted" in gone.stdout
    assert "Pellworth" not in gone.stdout
    unknown = subprocess.run(  # --value - reads the value from stdin, off the command line
        [
            sys.executable,
            "-c",
            "from ingest._cli import main; main()",
            "forget",
            "--value",
            "-",
            "--home",
            home,
        ],
        input="Nobody Atall\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert unknown.returncode == 2 and "no such value" in unknown.stderr

    ok = rag("audit", "verify", "--home", home, cwd=tmp_path, env=env)
    assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stdout + ok.stderr
    audit = Path(home) / "audit.jsonl"
    data = bytearray(audit.read_bytes())
    events = [line for line in audit.read_text("utf-8").splitlines() if '"reidentify"' in line]
    assert events and "Pellworth" not in audit.read_text("utf-8")
    data[5] ^= 0x20
    audit.write_bytes(bytes(data))
    bad = rag("audit", "verify", "--home", home, cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "line 1" in bad.stdout
