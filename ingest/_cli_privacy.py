"""``rag privacy …``, ``rag forget`` and ``rag audit verify`` (registered on the main app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest._cli import CollectionOpt, ConfigOpt, HomeOpt, _settings, app, out

privacy_app = typer.Typer(help="Keys and checks of the privacy layer.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")
app.add_typer(audit_app, name="audit")


@privacy_app.command()
def keygen(
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the key to this new file (mode 600) instead of stdout."),
    ] = None,
) -> None:
    """Make a new 32-byte master key (for RAG_PRIVACY__KEY or privacy.key_file).

    Keep it outside the rag home (never beside the vault) and back it up: without it the
    vault cannot be read and placeholders cannot be re-identified.
    """
    from rag.privacy._keys import generate_key, write_key_file

    if out_file is None:
        print(generate_key())
        return
    write_key_file(out_file)
    out.print(f"key written to {out_file} (mode 600); set privacy.key_file to it")


@privacy_app.command()
def scan(
    text: Annotated[str, typer.Argument(help="Text to check, or - for standard input.")],
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show what the egress guard would find in a text (types and counts only)."""
    import sys

    from rag.privacy._guard import EgressGuard

    settings = _settings(home, config, None)
    body = sys.stdin.read() if text == "-" else text
    found = EgressGuard.open(settings).scan_text(body)
    if not found:
        out.print("clean: no personal data found")
        return
    for entity, n in sorted(found.items()):
        out.print(f"{entity}: {n}")
    raise typer.Exit(1)


@app.command()
def forget(
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            help="The value to erase; - reads it from standard input "
            "(keeps it out of the shell history and the process list).",
        ),
    ] = None,
    placeholder: Annotated[
        str | None, typer.Option("--placeholder", help="Or its placeholder, e.g. <PERSON_…>.")
    ] = None,
    delete: Annotated[
        bool, typer.Option("--delete", help="Also delete the chunks that mention it.")
    ] = False,
    home: HomeOpt = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Erase a value (right to be forgotten): crypto-shred it in the vault, report (and
    with --delete remove) the chunks that mention it, and write a receipt."""
    from ingest._forget import forget as run
    from ingest._manage import _open

    settings = _settings(home, config, collection)
    if value == "-":
        import sys

        value = sys.stdin.readline().strip()
    store = _open(settings)
    try:
        done = run(settings, store, value=value, placeholder=placeholder, delete=delete)
    finally:
        store.close()
    state = "was already erased" if done.already_forgotten else "erased from the vault"
    out.print(f"{done.placeholder} ({done.entity}) {state}: it can no longer be re-identified")
    verb = "deleted" if done.deleted and done.chunks else "mention it"
    out.print(f"{done.chunks} chunk(s) in {len(done.documents)} document(s) {verb}")
    for doc_id, source in sorted(done.documents.items()):
        out.print(f"  {doc_id}  {source}", markup=False, highlight=False)
    if done.documents and not done.deleted:
        out.print("run again with --delete to remove those chunks")
    if done.documents:
        out.print(
            "the source files still hold the value: remove or redact them, or the next "
            "ingestion indexes them again (pseudonymized, and not re-identifiable)"
        )
    out.print(f"receipt: {done.receipt}")


@audit_app.command()
def verify(home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Check the audit log's hash chain; exit 1 at the first altered or missing record."""
    from rag.privacy._audit import AuditLog
    from rag.privacy._keys import PrivacyKeys

    settings = _settings(home, config, None)
    keys = PrivacyKeys.from_settings(settings) if settings.privacy.enabled else None
    report = AuditLog.open(settings, keys).verify()
    if report.ok:
        out.print(f"audit log ok: {report.records} record(s), chain intact")
        return
    out.print(f"audit log FAILED at line {report.first_bad_line}: {report.problem}")
    raise typer.Exit(1)
