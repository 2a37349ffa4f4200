"""Done-when of generation, end to end: fixture documents with planted PII are ingested
(real parsers, real detector), then answered through every provider route against the
Mistral API simulator (real SDK, real HTTP). Answers are valid JSON with verified
citations; nothing the simulator received holds a planted value; answers are re-identified
for an allowed principal and not for another; tools get values only when allowed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from planted import THORNBURY, build_planted_corpus, encodings_of

from ingest import Workspace
from rag import Principal, load_settings
from rag.llm import AnswerDelta, AnswerDone, tool
from rag.privacy import PLACEHOLDER, PrivacyKeys, Vault, write_key_file
from rag.privacy._text import normalize
from rag.testing import FakeEmbedder, MistralSimulator

pytestmark = pytest.mark.slow

KEY = "sim-key-not-a-secret"
DPO = Principal("dana", ("dpo",))
CLERK = Principal("colin", ("clerks",))
#: provider route -> llm settings (endpoint filled in with the simulator's URL)
ROUTES: dict[str, dict[str, Any]] = {
    "mistral": {"provider": "mistral"},
    "azure-mistral": {"provider": "azure", "azure_route": "mistral"},
    "azure-inference": {"provider": "azure", "azure_route": "inference"},
    "openai-compatible": {"provider": "openai-compatible"},
}
QUESTIONS = (
    "Who signed the supplier agreement with Kestrel Precision Castings, and when?",
    "What is Margaret Thornbury's e-mail address for questions about the agreement?",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("answer-e2e")
    corpus = build_planted_corpus(base / "docs")
    key_file = base / "secrets" / "vault.key"
    write_key_file(key_file)  # mode 600, outside the home directory
    settings = load_settings(
        home=base / "home",
        ingest={"workers": 1, "embed_group": 16},
        retrieval={"k": 4},
        privacy={
            "enabled": True,
            "key_file": str(key_file),
            "languages": ["en", "fr", "de"],
            "reidentify": ["group:dpo"],
        },
        llm={"api_key": KEY, "max_retries": 0},
    )
    embedder = FakeEmbedder(dimension=32, max_tokens=512)
    with Workspace(settings, embedder=embedder) as ws:
        report = ws.ingest([corpus.root])
        assert report.ok, report.errors
    with MistralSimulator(api_key=KEY, chunk_chars=5) as sim:
        yield corpus, settings, embedder, sim


@pytest.fixture(params=sorted(ROUTES))
def route(request, world) -> Iterator[tuple[str, Workspace, MistralSimulator]]:  # type: ignore[no-untyped-def]
    _, settings, embedder, sim = world
    llm = dict(ROUTES[request.param])
    llm["endpoint"] = sim.url + ("/v1" if llm["provider"] == "openai-compatible" else "")
    routed = settings.model_copy(update={"llm": settings.llm.model_copy(update=llm)})
    sim.clear()
    with Workspace(routed, embedder=embedder) as ws:
        yield request.param, ws, sim


def _leaks(corpus, sim: MistralSimulator) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    found = []
    for i, rec in enumerate(sim.requests):
        wire = rec.body + rec.path.encode() + json.dumps(rec.query).encode()
        for value in corpus.searchable():
            if any(needle in wire for needle in encodings_of(value)):
                found.append((i, value))
    return found


def test_answers_through_every_route_leak_nothing(world, route) -> None:
    corpus = world[0]
    name, ws, sim = route
    for question in QUESTIONS:
        for principal in (DPO, CLERK):
            answer = ws.answer(question, principal)
            assert not answer.insufficient_context and answer.citations
            for c in answer.citations:
                assert c.source and c.chunk_ids
                passage = next(p for p in answer.passages if p.label == c.label)
                assert c.chunk_ids[0] in {ch.chunk_id for ch in passage.chunks}
            assert answer.provider == ROUTES[name]["provider"]
            assert answer.usage.prompt_tokens > 0 and answer.latency_s > 0
            assert PLACEHOLDER.search(answer.question), "the question was pseudonymized"
            if principal is DPO:
                assert answer.reidentified and not PLACEHOLDER.search(answer.text)
                assert "Thornbury" in answer.text + answer.citations[0].quote
            else:
                assert not answer.reidentified and PLACEHOLDER.search(answer.text)
                assert not [v for v in corpus.searchable() if v in answer.text]
    assert len(sim.requests) == len(QUESTIONS) * 2
    assert not _leaks(corpus, sim)
    for rec in sim.requests:
        assert rec.header("authorization") == f"Bearer {KEY}"
        body = rec.json
        assert body["messages"][0]["role"] == "system" and body["tools"]
        expected = "json_object" if name.startswith("azure") else "json_schema"
        assert body["response_format"]["type"] == expected
    paths = {r.path for r in sim.requests}
    if name == "azure-inference":
        assert paths == {"/chat/completions"}
        assert all(r.query.get("api-version") for r in sim.requests)
    else:
        assert paths == {"/v1/chat/completions"}
    if name == "mistral":  # the official SDK made these calls
        assert all("mistral" in (r.header("user-agent") or "").lower() for r in sim.requests)


def test_streamed_answers_never_split_a_placeholder(world, route) -> None:
    corpus = world[0]
    _, ws, sim = route
    for principal in (DPO, CLERK):
        events = list(ws.stream(QUESTIONS[0], principal))
        done = events[-1]
        assert isinstance(done, AnswerDone)
        deltas = [e.text for e in events if isinstance(e, AnswerDelta)]
        assert len(deltas) > 3 and "".join(deltas) == done.answer.text
        for piece in deltas:  # a piece holds whole placeholders or none of one
            assert piece.count("<") == len(PLACEHOLDER.findall(piece))
        if principal is DPO:
            assert THORNBURY in done.answer.text
    assert all(r.json.get("stream") is True for r in sim.requests)
    assert not _leaks(corpus, sim)


def test_tools_get_values_only_for_allowed_principals(world, route) -> None:
    corpus, settings, _, _ = world
    _, ws, sim = route
    keys = PrivacyKeys.from_settings(settings)
    with Vault.open(settings, keys) as vault:
        value_id = keys.value_digest(normalize(THORNBURY))[:16]
        placeholder = vault.get([value_id])[value_id].placeholder
    received: list[str] = []

    @tool(reidentify=True)
    def crm_lookup(person: str) -> str:
        """Looks a person up in the CRM.

        Args:
            person: the person's name
        """
        received.append(person)
        return f"{person} is the key account manager, phone +44 20 7946 0321."

    for principal in (DPO, CLERK):
        sim.reply(tool_calls=[{"name": "crm_lookup", "arguments": {"person": placeholder}}])
        answer = ws.answer(QUESTIONS[0], principal, tools=[crm_lookup])
        assert answer.tool_runs[0].name == "crm_lookup" and answer.tool_runs[0].ok
    assert received == [THORNBURY, placeholder]
    tool_results = [
        m["content"] for r in sim.requests for m in r.json["messages"] if m["role"] == "tool"
    ]
    assert tool_results and all(placeholder in t for t in tool_results)
    assert not _leaks(corpus, sim)


def test_every_request_was_audited(world) -> None:
    settings = world[1]
    events = [json.loads(x) for x in settings.audit_file.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("llm_request") >= 4 * (len(QUESTIONS) * 2 + 2 + 2)
    assert "reidentify" in kinds and "egress_blocked" not in kinds
