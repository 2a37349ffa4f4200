"""Who has an embedded shard open: a small JSON file written beside the shard.

Qdrant Edge locks a shard's WAL so only one process can open it; the second opener only
learns ``WouldBlock``. The holder file lets that error name the process to wait for. It
is advisory: the WAL lock is the real guard, so a missing, stale or unreadable file only
makes the message less specific, never changes who gets the shard.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

_SUBCOMMAND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def holder_path(shard_dir: Path) -> Path:
    # Beside, not inside, the shard: the shard directory belongs to Qdrant Edge.
    return shard_dir.with_name(shard_dir.name + ".holder.json")


def _command() -> str:
    """Program name plus a subcommand such as ``rag ingest``, and nothing more.

    The full command line can hold a user's question (``rag ask "..."``) or a path
    naming a person, and this file is readable by other users of the index, so free-text
    arguments are left out.
    """
    argv = sys.argv or [""]
    program = Path(argv[0]).name
    words = ["python -c" if program == "-c" else (program or "python")]
    if len(argv) > 1 and _SUBCOMMAND.match(argv[1]):
        words.append(argv[1])
    return " ".join(words)


def write_holder(shard_dir: Path) -> None:
    """Record this process as the holder; called only while holding the WAL lock."""
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    target = holder_path(shard_dir)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    # Written atomically so a reader never sees half a file.
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, target)


def remove_holder(shard_dir: Path) -> None:
    """Remove the holder file if it names this process (never another opener's record)."""
    target = holder_path(shard_dir)
    info = _read(target)
    if info is not None and info.get("pid") == os.getpid():
        target.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def describe_holder(shard_dir: Path) -> str:
    """One sentence about the process holding ``shard_dir``, for a lock error message."""
    info = _read(holder_path(shard_dir))
    if info is None or not isinstance(info.get("pid"), int):
        return "the holding process is unknown (it did not record itself)"
    pid: int = info["pid"]
    who = f"pid {pid} ({info.get('command', '?')}, started {info.get('started', '?')}"
    host = info.get("host")
    if host and host != socket.gethostname():
        return f"{who} on host {host})"
    if pid == os.getpid():
        return f"{who}): this process already has it open; close that store first"
    if not _alive(pid):
        return (
            f"the holder file names {who}), which is no longer running, so that record is "
            "stale and an unrecorded process holds the lock"
        )
    return f"it is held by {who})"
