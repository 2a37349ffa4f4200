"""The ``rag`` command line. Settings are built here, once, and passed down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag import _offline  # noqa: F401  (before any third-party import)
from rag._config import Settings, load_settings
from rag._errors import RagError

app = typer.Typer(
    help="sovereign-rag: private RAG over enterprise documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Soft wrap: the terminal wraps; piped output keeps paths and lines whole.
out = Console(soft_wrap=True)
err = Console(stderr=True)

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="State directory (default ./.rag or RAG_HOME).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default ./rag.toml).")
]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", help="Collection name (store.collection).")
]


def _settings(home: Path | None, config: Path | None, collection: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    base = load_settings(config)
    if collection is not None:
        overrides["store"] = base.store.model_copy(update={"collection": collection})
    return base.model_copy(update=overrides) if overrides else base


class _Bar:
    """Rich progress: files done of total, chunks written, chunks per second."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("ingest", total=None, chunks=0, rate=0.0)
        self.chunks = 0
        self.t0 = time.perf_counter()

    def start(self, total_files: int) -> None:
        self.progress.update(self.task, total=total_files)

    def file_done(self, status: str, chunks: int) -> None:
        self.chunks += chunks
        rate = self.chunks / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, advance=1, chunks=self.chunks, rate=rate)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest.")],
    home: HomeOpt = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    workers: Annotated[int | None, typer.Option(help="Parser processes (0: in-process).")] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also delete documents whose files are gone.")
    ] = False,
) -> None:
    """Parse, chunk, embed and index documents. Unchanged files are skipped."""
    from ingest._pipeline import ingest as run

    settings = _settings(home, config, collection)
    if workers is not None:
        settings = settings.model_copy(
            update={"ingest": settings.ingest.model_copy(update={"workers": workers})}
        )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[rate]:.1f} chunks/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        report = run(paths, settings, progress=_Bar(progress), prune=prune)
    out.print(
        f"files: {report.files_seen} seen, {report.files_ingested} ingested, "
        f"{report.files_unchanged} unchanged, {report.files_failed} failed"
        + (f", {report.files_removed} removed" if prune else "")
        + " · "
        f"chunks: {report.chunks_written} written, {report.chunks_deleted} removed · "
        f"{report.wall_seconds:.1f} s"
    )
    # One plain line per file: greppable, and never cut to the terminal's width.
    for e in report.errors:
        hint = f" — {e.hint}" if e.hint else ""
        line = f"failed: {e.path} [{e.stage}/{e.reason}] {e.detail}{hint}"
        out.print(line, markup=False, highlight=False)
    if report.pii_counts:
        replaced = ", ".join(f"{n} {k}" for k, n in sorted(report.pii_counts.items()))
        out.print(f"pseudonymized: {replaced}")
    if report.chunks_rewritten:
        out.print(
            f"rewrote {report.chunks_rewritten} stored chunk(s) holding values first found "
            "in later documents"
        )
    out.print(f"run report: {report.report_path}")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="What to look for.")],
    user: Annotated[str | None, typer.Option("--as", help="User id of the caller.")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="Caller's group.")] = None,
    k: Annotated[int | None, typer.Option("-k", min=1, max=1000, help="Results to show.")] = None,
    mode: Annotated[str | None, typer.Option(help="hybrid, dense or sparse.")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="Filter KEY=VALUE (repeat; values of one key are ORed), e.g. "
            "doc_id=..., source=..., meta.filetype=application/pdf.",
        ),
    ] = None,
    reveal: Annotated[
        bool,
        typer.Option(
            "--reveal",
            help="Show the values behind placeholders (principals in privacy.reidentify only; "
            "audited).",
        ),
    ] = False,
    home: HomeOpt = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Show the chunks that best match a question (public ones plus the caller's)."""
    from rag._retrieve import Principal, Retriever

    if mode not in (None, "hybrid", "dense", "sparse"):
        raise typer.BadParameter("use hybrid, dense or sparse", param_hint="--mode")
    filters = _parse_where(where or [])
    settings = _settings(home, config, collection)
    principal = Principal(user, tuple(group or ())) if (user is not None or group) else None
    show = _revealer(settings, principal) if reveal else (lambda text: text)
    with Retriever.open(settings) as retriever:
        result = retriever.retrieve(question, principal, filters, k, mode=mode)  # type: ignore[arg-type]
    print_hits(result, show)


def print_hits(result: Any, show: Any = None) -> None:
    """Ranked chunks with source, pages, section, score and a snippet (``rag search``)."""
    if not result.hits:
        out.print("no matching chunks (is anything ingested? try `rag status`)")
    for rank, hit in enumerate(result.hits, 1):
        c = hit.chunk
        pages = f" p.{','.join(map(str, c.pages))}" if c.pages else ""
        section = f" § {escape(c.section)}" if c.section else ""
        out.print(f"{rank}. {c.source}{pages}", style="bold", markup=False, end="")
        out.print(f"{section}  [dim]score {hit.score:.3f}[/dim]", highlight=False)
        snippet = " ".join((show(c.text) if show else c.text).split())
        out.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}", markup=False)
    if result.dropped:
        out.print(f"[dim]{len(result.dropped)} near-duplicate chunk(s) left out[/dim]")


def _revealer(settings: Settings, principal: Any) -> Any:
    """Re-identification for ``--reveal``: refused (exit 2) unless privacy.reidentify allows."""
    from rag._errors import AccessError
    from rag.privacy._audit import AuditLog
    from rag.privacy._keys import PrivacyKeys
    from rag.privacy._reidentify import Reidentifier, may_reidentify
    from rag.privacy._vault import Vault

    if not settings.privacy.enabled:
        return lambda text: text
    if principal is None or not may_reidentify(settings.privacy, principal):
        raise AccessError(
            "--reveal needs --as/--group naming a principal listed in privacy.reidentify"
        )
    keys = PrivacyKeys.from_settings(settings)
    reid = Reidentifier(settings.privacy, Vault.open(settings, keys), AuditLog.open(settings, keys))
    return lambda text: reid.reidentify(text, principal)


def _parse_where(items: list[str]) -> dict[str, list[str | int]]:
    """``KEY=VALUE`` options as filter values; integer payload keys get integers."""
    from rag.stores._base import PAYLOAD_KEYS

    filters: dict[str, list[str | int]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--where")
        typed: str | int = value
        if PAYLOAD_KEYS.get(key) == "integer":
            try:
                typed = int(value)
            except ValueError:
                raise typer.BadParameter(f"{key} takes an integer", param_hint="--where") from None
        filters.setdefault(key, []).append(typed)
    return filters


@app.command()
def delete(
    targets: Annotated[list[str], typer.Argument(help="Document ids or paths (files or folders).")],
    home: HomeOpt = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Remove documents' chunks from the index."""
    from ingest._manage import delete as run

    removed = run(targets, _settings(home, config, collection))
    total = sum(removed.values())
    out.print(f"removed {total} chunks of {sum(1 for n in removed.values() if n)} document(s)")
    if total == 0:
        out.print("nothing matched: give a doc id (see the run report) or the ingested path")
        raise typer.Exit(1)


@app.command()
def status(
    home: HomeOpt = None, config: ConfigOpt = None, collection: CollectionOpt = None
) -> None:
    """Counts of the collection and a summary of the last run."""
    from ingest._manage import status as run

    settings = _settings(home, config, collection)
    st = run(settings)
    info = st.collection
    out.print(f"collection {settings.store.collection!r} ({info.backend}, {info.location})")
    out.print(f"  documents: {info.documents}  chunks: {info.points}  dimension: {info.dimension}")
    if st.last_run:
        r = st.last_run
        out.print(
            f"last run {r['run_id']}: {r['files_ingested']} ingested, {r['files_unchanged']} "
            f"unchanged, {r['files_failed']} failed, {r['chunks_written']} chunks written"
        )


@app.command()
def doctor(home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Which formats and features work on this machine, and what to install for the rest."""
    from ingest._doctor import run_checks

    settings = _settings(home, config, None)
    table = Table("check", "status", "detail")
    checks = run_checks(settings)
    for c in checks:
        table.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]missing[/red]", c.detail)
    out.print(table)


# Registers ``rag privacy``, ``rag forget``, ``rag audit`` and ``rag ask`` on ``app``.
from ingest import _cli_ask, _cli_privacy  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except RagError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise SystemExit(2) from None
