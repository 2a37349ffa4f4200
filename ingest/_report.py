"""The JSON run report of a batch job: counts, per-stage seconds, and every failed file.

It holds paths, ids, counts and reason codes; never document text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

Stage = Literal["discover", "read", "parse", "transform", "chunk", "embed", "index"]


class FileError(BaseModel):
    """A file that did not make it into the index. ``reason`` is a parse reason
    (:data:`rag.PARSE_REASONS`) or one of the job's own: ``not_found``, ``unreadable``,
    ``timeout``, ``crash``, ``error``, ``internal``."""

    path: str
    doc_id: str | None = None
    stage: Stage
    reason: str
    detail: str
    hint: str = ""
    #: Chunks of an earlier version of the file still in the index (kept, not lost).
    kept_chunks: int = 0


class RunReport(BaseModel):
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    collection: str
    backend: str
    embedding_model: str
    paths: list[str]
    files_seen: int = 0
    files_ingested: int = 0
    files_unchanged: int = 0
    files_failed: int = 0
    #: Documents deleted by ``prune`` because their files are gone.
    files_removed: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    #: Values replaced by the privacy step, by entity type (counts only, never values).
    pii_counts: dict[str, int] = Field(default_factory=dict)
    #: Stored chunks rewritten because the vault learned a value they hold (second pass).
    chunks_rewritten: int = 0
    #: CPU seconds per stage (parse and chunk run in worker processes, in parallel with
    #: embedding, so they can add up to more than the wall time).
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    wall_seconds: float = 0.0
    errors: list[FileError] = Field(default_factory=list)
    report_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.files_failed == 0

    def fail(
        self,
        path: str,
        doc_id: str | None,
        stage: Stage,
        reason: str,
        detail: str,
        hint: str = "",
        kept_chunks: int = 0,
    ) -> None:
        """Record a file that failed (details hold no document text)."""
        self.errors.append(
            FileError(
                path=path,
                doc_id=doc_id,
                stage=stage,
                reason=reason,
                detail=detail,
                hint=hint,
                kept_chunks=kept_chunks,
            )
        )
        self.files_failed += 1

    def add_time(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def failures_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.errors:
            counts[e.reason] = counts.get(e.reason, 0) + 1
        return dict(sorted(counts.items()))

    def write(self, runs_dir: Path) -> Path:
        runs_dir.mkdir(parents=True, exist_ok=True)
        path = runs_dir / f"{self.run_id}.json"
        self.report_path = str(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=2), "utf-8")
        tmp.replace(path)
        return path


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
