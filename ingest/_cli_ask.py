"""``rag ask``: an answer with checked citations, streamed to the terminal."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ingest._cli import (
    CollectionOpt,
    ConfigOpt,
    HomeOpt,
    _parse_where,
    _settings,
    app,
    err,
    out,
    print_hits,
)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    user: Annotated[str | None, typer.Option("--as", help="User id of the caller.")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="Caller's group.")] = None,
    k: Annotated[int | None, typer.Option("-k", min=1, max=1000, help="Chunks retrieved.")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="Filter KEY=VALUE, as for rag search (repeat)."),
    ] = None,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Print the answer as it is written.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole answer as one JSON object.")
    ] = False,
    placeholders: Annotated[
        bool,
        typer.Option(
            "--placeholders",
            help="Keep placeholders even for principals allowed to re-identify.",
        ),
    ] = False,
    home: HomeOpt = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Answer a question from the documents the caller may read, citing its sources.

    The model sees pseudonymized text only; the answer is re-identified for principals
    listed in privacy.reidentify (audited). Without llm.provider, shows the passages that
    would be sent and how to configure a provider (exit code 2).
    """
    from ingest._workspace import Workspace
    from rag._retrieve import Principal
    from rag.llm import AnswerDelta, AnswerDone, AnswerRestart, ToolStep

    settings = _settings(home, config, collection)
    filters = _parse_where(where or [])
    principal = Principal(user, tuple(group or ())) if (user is not None or group) else None
    with Workspace(settings) as ws:
        if settings.llm.provider is None:
            err.print(
                "[yellow]no LLM provider is configured[/yellow], so here are the passages a "
                'model would get. To answer, set llm.provider ("mistral", "azure" or '
                '"openai-compatible"), llm.endpoint and llm.api_key (or RAG_LLM__PROVIDER, '
                "RAG_LLM__ENDPOINT, RAG_LLM__API_KEY); see README, Generation."
            )
            print_hits(ws.search(question, principal, filters, k))
            raise typer.Exit(2)
        options: dict[str, Any] = {"filters": filters, "k": k, "reidentify": not placeholders}
        if as_json or not stream:
            answer = ws.answer(question, principal, **options)
            if as_json:
                print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
                return
            out.print(answer.text, markup=False, highlight=False)
        else:
            answer = None
            for event in ws.stream(question, principal, **options):
                if isinstance(event, AnswerDelta):
                    out.print(event.text, end="", markup=False, highlight=False)
                elif isinstance(event, ToolStep):
                    err.print(f"[dim](tools: {', '.join(event.names)})[/dim]")
                elif isinstance(event, AnswerRestart):
                    out.print()
                    err.print(f"[yellow]({event.reason})[/yellow]")
                elif isinstance(event, AnswerDone):
                    answer = event.answer
            out.print()
            assert answer is not None
        _print_sources(answer)


def _print_sources(answer: Any) -> None:
    if answer.insufficient_context:
        out.print("[dim](the documents do not contain the answer)[/dim]")
    for c in answer.citations:
        pages = f", p. {', '.join(map(str, c.pages))}" if c.pages else ""
        out.print(f"[{c.label}] {c.source}{pages}: “{c.quote}”", markup=False, highlight=False)
    u = answer.usage
    note = "re-identified" if answer.reidentified else "pseudonymized"
    out.print(
        f"[dim]{answer.provider} {answer.model} · {u.prompt_tokens} prompt + "
        f"{u.completion_tokens} answer tokens · {answer.latency_s:.1f} s · {note}"
        + (" · repaired" if answer.repaired else "")
        + "[/dim]",
        highlight=False,
    )
