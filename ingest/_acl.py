"""Which principals may read a file's chunks.

Most specific first:
1. a sidecar ``<file>.acl`` next to the file;
2. a ``.acl`` file in the file's folder or the nearest parent folder up to the ingest root;
3. the first ``acl.rules`` entry whose glob matches the path relative to the ingest root
   (or the absolute path);
4. ``acl.default`` (``@public`` unless configured).

ACL files hold one principal per line (``user:alice``, ``group:hr``...); ``#`` starts a
comment. Names starting with ``@`` are reserved (``@public``) and rejected elsewhere, and
``*`` is refused (there are no wildcards; ``@public`` means everyone). Names are stored in
Unicode NFC, the form query-time principals are normalised to, so ``café`` typed either way
matches.
"""

from __future__ import annotations

import unicodedata
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path

from rag._config import AclSettings
from rag._errors import ConfigError
from rag._types import PUBLIC

SIDECAR_SUFFIX = ".acl"
FOLDER_FILE = ".acl"


class AclResolver:
    def __init__(self, settings: AclSettings) -> None:
        self._rules = [
            (rule.path, _validate(rule.principals, f"acl.rules[{rule.path!r}]"))
            for rule in settings.rules
        ]
        self._default = _validate(settings.default, "acl.default")

    def principals(self, path: Path, root: Path) -> tuple[str, ...]:
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if sidecar.is_file():
            return _read(sidecar, sidecar.stat().st_mtime_ns)
        folder = path.parent
        while True:
            marker = folder / FOLDER_FILE
            if marker.is_file():
                return _read(marker, marker.stat().st_mtime_ns)
            if folder == root or folder.parent == folder or root not in folder.parents:
                break
            folder = folder.parent
        relative = path.relative_to(root).as_posix() if root in path.parents else path.name
        for pattern, principals in self._rules:
            if fnmatch(relative, pattern) or fnmatch(path.as_posix(), pattern):
                return principals
        return self._default


def _validate(principals: tuple[str, ...], setting: str) -> tuple[str, ...]:
    """The principals in NFC, or ConfigError naming the bad one."""
    if not principals:
        raise ConfigError(setting, "is empty", f"list at least one principal, or {PUBLIC!r}")
    out = []
    for p in principals:
        if not p.strip() or (p.startswith("@") and p != PUBLIC):
            raise ConfigError(
                setting, f"invalid principal {p!r}", "names starting with @ are reserved"
            )
        if p.strip() in ("*", "user:*", "group:*"):
            raise ConfigError(
                setting, f"wildcard principal {p!r}", f"there are no wildcards; use {PUBLIC!r}"
            )
        out.append(unicodedata.normalize("NFC", p))
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=4096)
def _read(path: Path, mtime_ns: int) -> tuple[str, ...]:
    """Principals in an ACL file; ``mtime_ns`` is part of the cache key so edits are seen."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines())
    principals = tuple(dict.fromkeys(line for line in lines if line))
    return _validate(principals, f"ACL file {path}")
