"""ACL resolution at ingestion: precedence, validation, and the names queries will match."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from ingest._acl import AclResolver
from rag import PUBLIC, ConfigError
from rag._config import AclRule, AclSettings


def test_sidecar_beats_folder_beats_rules_beats_default(tmp_path: Path) -> None:
    (tmp_path / "hr" / "deep").mkdir(parents=True)
    (tmp_path / "hr" / ".acl").write_text("group:hr\n# a comment\n\n", "utf-8")
    (tmp_path / "hr" / "deep" / "pay.txt.acl").write_text("user:cfo\n", "utf-8")
    settings = AclSettings(rules=(AclRule(path="legal/*", principals=("group:legal",)),))
    resolver = AclResolver(settings)
    assert resolver.principals(tmp_path / "hr" / "deep" / "pay.txt", tmp_path) == ("user:cfo",)
    assert resolver.principals(tmp_path / "hr" / "deep" / "x.txt", tmp_path) == ("group:hr",)
    assert resolver.principals(tmp_path / "legal" / "nda.pdf", tmp_path) == ("group:legal",)
    assert resolver.principals(tmp_path / "readme.md", tmp_path) == (PUBLIC,)


@pytest.mark.parametrize("bad", ["*", "group:*", "@admins", "   "])
def test_wildcards_and_reserved_names_are_refused(tmp_path: Path, bad: str) -> None:
    (tmp_path / "doc.txt.acl").write_text(f"{bad}\n" if bad.strip() else "user:x\n \n", "utf-8")
    if not bad.strip():
        with pytest.raises(ConfigError):
            AclResolver(AclSettings(default=(bad,)))
        return
    with pytest.raises(ConfigError, match=r"wildcard|reserved"):
        AclResolver(AclSettings()).principals(tmp_path / "doc.txt", tmp_path)
    with pytest.raises(ConfigError):
        AclResolver(AclSettings(default=(bad,)))


def test_names_are_stored_in_nfc_like_query_principals(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "group:café")
    (tmp_path / "menu.txt.acl").write_text(nfd + "\n", "utf-8")
    found = AclResolver(AclSettings()).principals(tmp_path / "menu.txt", tmp_path)
    assert found == (unicodedata.normalize("NFC", "group:café"),)
