"""Who may open an embedded shard, and who has it open.

Qdrant Edge locks a shard's WAL so only one process can use it, but a second opener
only meets that lock part-way through ``EdgeShard.load``, after it has already opened
(and can disturb) segment files the first process is writing: measured here, the first
process then failed to flush its sparse-vector storage on close. So the real guard is
ours: an exclusive ``flock`` on ``<shard>.lock`` taken *before* Edge touches anything.
The kernel releases it when the process exits, even on kill -9, so it never goes stale.

The holder file beside it (pid, command, start time) only lets the error name the
process to wait for; a missing or stale holder file makes the message less specific,
never changes who gets the shard.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

_SUBCOMMAND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ShardLock:
    """Exclusive, non-blocking lock on a shard, held until :meth:`release`."""

    def __init__(self, shard_dir: Path) -> None:
        self.path = shard_dir.with_name(shard_dir.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


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
