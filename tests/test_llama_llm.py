"""Our chat models and answer stage inside LlamaIndex: ChatModelLLM (scripted, over HTTP
with the simulator, behind the egress guard) and AnswerQueryEngine."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.llms import LLM, ChatMessage, ImageBlock, MessageRole
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from rag import (
    PUBLIC,
    AccessError,
    AnswerTruncatedError,
    Bm25Encoder,
    Chunk,
    ConfigError,
    ContentFilterError,
    EgressBlockedError,
    IndexedChunk,
    LlmError,
    Principal,
    RagError,
    Retriever,
    load_settings,
)
from rag._llama_llm import header_file_names
from rag._types import chunk_id_for
from rag.llama_index import (
    AnswerQueryEngine,
    ChatModelLLM,
    ContextPackerPostprocessor,
    SovereignRetriever,
)
from rag.llm import Answerer, open_chat_model
from rag.privacy import EgressGuard, PrivacyKeys, Pseudonymizer, Span, Vault, generate_key
from rag.testing import FakeDetector, FakeEmbedder, MistralSimulator, ScriptedChatModel

NOTICE = "The tenant must give ninety days notice before terminating the lease."
EMAIL = "margaret.thornbury@example.org"


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


# -- ChatModelLLM over a scripted model ----------------------------------------------------
def test_metadata_describes_the_model() -> None:
    llm = ChatModelLLM(ScriptedChatModel("mistral-large-2402"), max_tokens=300)
    assert isinstance(llm, LLM)
    meta = llm.metadata
    assert (meta.context_window, meta.num_output, meta.model_name) == (
        32768,
        300,
        "mistral-large-2402",
    )
    assert meta.is_chat_model and not meta.is_function_calling_model
    assert ChatModelLLM(ScriptedChatModel(), context_window=8000).metadata.context_window == 8000
    with pytest.raises(ConfigError, match=r"llm\.context_window"):
        ChatModelLLM(ScriptedChatModel("my-finetune"))
    with pytest.raises(RagError, match="open_chat_model"):
        ChatModelLLM(object())  # type: ignore[arg-type]


def test_chat_maps_roles_and_request_options() -> None:
    chat = ScriptedChatModel().reply("Ninety days.")
    llm = ChatModelLLM(chat, max_tokens=200, temperature=0.0, random_seed=7)
    response = llm.chat(
        [
            ChatMessage(role=MessageRole.SYSTEM, content="Answer briefly."),
            ChatMessage(role=MessageRole.USER, content="How much notice?"),
            ChatMessage(role=MessageRole.ASSISTANT, content="Let me look."),
            ChatMessage(
                role=MessageRole.TOOL,
                content="90 days",
                additional_kwargs={"tool_call_id": "call1", "name": "lookup"},
            ),
        ],
        max_tokens=64,
        response_format={"type": "json_object"},
        stream_options={"ignored": True},  # not a request option
    )
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "Ninety days."
    assert response.raw["finish_reason"] == "stop" and response.raw["provider"] == "scripted"
    assert response.raw["usage"]["completion_tokens"] == 2
    assert response.additional_kwargs["total_tokens"] == response.raw["usage"]["total_tokens"]
    (request,) = chat.requests
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "tool"]
    assert request.messages[3].tool_call_id == "call1" and request.messages[3].name == "lookup"
    assert (request.max_tokens, request.temperature, request.random_seed) == (64, 0.0, 7)
    assert request.response_format == {"type": "json_object"} and request.tools == ()


def test_complete_sends_one_user_message() -> None:
    chat = ScriptedChatModel().reply("Blue.")
    assert ChatModelLLM(chat).complete("What colour is the sky?").text == "Blue."
    [message] = chat.requests[0].messages
    assert (message.role, message.content) == ("user", "What colour is the sky?")


def test_stream_chat_deltas_join_to_the_answer() -> None:
    answer = "The tenant must give ninety days notice."
    llm = ChatModelLLM(ScriptedChatModel(chunk_chars=4).reply(answer))
    pieces = list(llm.stream_chat(user("How much notice?")))
    assert len(pieces) > 5
    assert "".join(p.delta or "" for p in pieces) == answer
    assert pieces[2].message.content == answer[:12], "each piece holds the text so far"
    assert pieces[-1].message.content == answer
    assert pieces[-1].raw["usage"]["total_tokens"] > 0, "the last piece carries the usage"
    streamed = list(ChatModelLLM(ScriptedChatModel().reply("Yes.")).stream_complete("Ok?"))
    assert streamed[-1].text == "Yes."


def test_async_endpoints() -> None:
    chat = ScriptedChatModel(chunk_chars=2).reply("One.").reply("Two.").reply("Three.")
    llm = ChatModelLLM(chat)

    async def run() -> tuple[str, str, str]:
        first = await llm.achat(user("1"))
        second = await llm.acomplete("2")
        stream = await llm.astream_chat(user("3"))
        third = "".join([p.delta or "" async for p in stream])
        return str(first.message.content), second.text, third

    assert asyncio.run(run()) == ("One.", "Two.", "Three.")
    assert len(chat.requests) == 3


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("length", AnswerTruncatedError),
        ("model_length", AnswerTruncatedError),
        ("content_filter", ContentFilterError),
        ("content_filter_error", ContentFilterError),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
def test_finish_reasons_raise_typed_errors(
    reason: str, error: type[LlmError], streamed: bool
) -> None:
    llm = ChatModelLLM(ScriptedChatModel().reply("The tenant must", finish_reason=reason))
    with pytest.raises(error) as caught:
        if streamed:
            list(llm.stream_chat(user("How much notice?")))
        else:
            llm.chat(user("How much notice?"))
    assert caught.value.provider == "scripted"
    assert "The tenant" not in str(caught.value)
    if error is AnswerTruncatedError:
        assert "max_tokens (1024)" in str(caught.value)


def test_messages_the_port_cannot_carry_are_refused() -> None:
    llm = ChatModelLLM(ScriptedChatModel())
    image = ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="http://127.0.0.1/x.png")])
    with pytest.raises(RagError, match="image block"):
        llm.chat([image])
    with pytest.raises(RagError, match="tool_call_id"):
        llm.chat([ChatMessage(role=MessageRole.TOOL, content="90 days")])


# -- the real HTTP path --------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim() -> Iterator[MistralSimulator]:
    with MistralSimulator(api_key="test-key", chunk_chars=5) as s:
        yield s


def http_settings(tmp_path: Path, sim: MistralSimulator, **sections: Any) -> Any:
    sim.clear()
    llm = {
        "provider": "openai-compatible",
        "endpoint": sim.url + "/v1",
        "api_key": "test-key",
        "timeout_s": 2.0,
        "max_retries": 1,
        "backoff_s": 0.01,
        "answer_tokens": 256,
        "tokens_per_minute": None,
        "requests_per_minute": None,
    }
    return load_settings(home=tmp_path / "home", llm=llm, **sections)


def test_over_http_with_retries(tmp_path: Path, sim: MistralSimulator) -> None:
    settings = http_settings(tmp_path, sim)
    sleeps: list[float] = []
    chat = open_chat_model(settings, sleep=sleeps.append)
    try:
        llm = ChatModelLLM(chat, max_tokens=settings.llm.answer_tokens, temperature=0.0)
        sim.fault("server_error", status=503)
        sim.reply(content="The sky is blue.")
        response = llm.chat(user("What colour is the sky?"))
        assert response.message.content == "The sky is blue."
        assert response.raw["attempts"] == 2 and len(sleeps) == 1
        assert response.raw["usage"]["prompt_tokens"] > 0
        body = sim.requests[-1].json
        assert body["messages"] == [{"role": "user", "content": "What colour is the sky?"}]
        assert (body["max_tokens"], body["temperature"]) == (256, 0.0)

        sim.reply(content="Streamed over SSE.")
        pieces = list(llm.stream_chat(user("Stream it.")))
        assert "".join(p.delta or "" for p in pieces) == "Streamed over SSE."
        assert len(pieces) > 3 and sim.requests[-1].json["stream"] is True

        sim.fault("length")
        with pytest.raises(AnswerTruncatedError):
            llm.complete("What colour is the sky?")
    finally:
        chat.close()


def test_from_settings_opens_the_configured_model(tmp_path: Path, sim: MistralSimulator) -> None:
    llm = ChatModelLLM.from_settings(http_settings(tmp_path, sim))
    try:
        assert llm.guard is None  # privacy is off in this suite unless a test turns it on
        assert (llm.metadata.num_output, llm.chat_model.provider) == (256, "openai-compatible")
        sim.reply(content="ok")
        assert llm.complete("ping").text == "ok"
    finally:
        llm.close()


# -- the egress guard ----------------------------------------------------------------------
def privacy_settings(tmp_path: Path, **privacy: Any) -> Any:
    return load_settings(
        home=tmp_path / "home",
        privacy={"enabled": True, "key": generate_key(), "ner": "none", **privacy},
    )


def pseudonymizer(settings: Any, detector: Any = None) -> Pseudonymizer:
    keys = PrivacyKeys.from_settings(settings)
    detector = detector or FakeDetector(["Margaret Thornbury"])
    return Pseudonymizer(settings.privacy, keys, Vault.open(settings, keys), detector)


def test_the_guard_blocks_a_planted_email(tmp_path: Path) -> None:
    settings = privacy_settings(tmp_path)
    pz = pseudonymizer(settings)
    chat = ScriptedChatModel().reply("Sent.")
    llm = ChatModelLLM(chat, guard=EgressGuard.open(settings, pz))
    planted = user(f"Draft a reply to {EMAIL} about the lease.")
    with pytest.raises(EgressBlockedError) as caught:
        llm.chat(planted)
    assert caught.value.findings == {"EMAIL_ADDRESS": 1}
    assert EMAIL not in str(caught.value)
    with pytest.raises(EgressBlockedError):
        llm.stream_chat(planted)  # refused when called, before anything is read
    assert chat.requests == [], "nothing left the process"
    audit = settings.audit_file.read_text()
    assert "egress_blocked" in audit and EMAIL not in audit

    # A value the vault knows is blocked wherever it appears in clear.
    masked = pz.pseudonymize_text("Margaret Thornbury signed the lease.")
    with pytest.raises(EgressBlockedError, match="VAULT_VALUE"):
        llm.complete("Who is Margaret Thornbury?")
    assert llm.complete(f"Who signed? {masked}").text == "Sent."
    assert chat.requests[0].messages[0].content == f"Who signed? {masked}"


def test_redact_policy_sends_placeholders(tmp_path: Path) -> None:
    settings = privacy_settings(tmp_path, egress="redact")
    chat = ScriptedChatModel().reply("Done.")
    llm = ChatModelLLM(chat, guard=EgressGuard.open(settings, pseudonymizer(settings)))
    assert llm.chat(user(f"Write to {EMAIL}.")).message.content == "Done."
    sent = chat.requests[0].messages[0].content
    assert EMAIL not in sent and re.fullmatch(r"Write to <EMAIL_ADDRESS_[0-9a-f]+>\.", sent)


def test_from_settings_guards_the_http_path(tmp_path: Path, sim: MistralSimulator) -> None:
    settings = http_settings(
        tmp_path, sim, privacy={"enabled": True, "key": generate_key(), "ner": "none"}
    )
    pz = pseudonymizer(settings)
    llm = ChatModelLLM.from_settings(settings, pseudonymizer=pz)
    try:
        assert llm.guard is not None
        with pytest.raises(EgressBlockedError):
            llm.complete(f"Forward this to {EMAIL}.")
        assert sim.requests == []
        sim.reply(content="ok")
        assert llm.complete("Is the lease signed?").text == "ok"
        assert len(sim.requests) == 1
    finally:
        llm.close()
    pz.vault.close()


class FileNameDetector(FakeDetector):
    """Flags ``*.md`` like Presidio's URL recognizer does (``md`` is a top-level domain)."""

    def detect_patterns(self, texts: Sequence[str], language: str = "en") -> list[list[Any]]:
        out = super().detect_patterns(texts, language)
        for spans, text in zip(out, texts, strict=True):
            for m in re.finditer(r"\b\w+\.md\b", text):
                spans.append(Span(m.start(), m.end(), "URL", 0.6, "pattern"))
        return out


def test_file_names_on_passage_headers_pass_the_guard(tmp_path: Path) -> None:
    settings = privacy_settings(tmp_path)
    guard = EgressGuard.open(settings, pseudonymizer(settings, FileNameDetector()))
    llm = ChatModelLLM(ScriptedChatModel(default=lambda r: "ok"), guard=guard)
    packed = "Context passages:\n [1] minutes.md, p. 2\n The board met.\n Question: When?"
    assert llm.complete(packed).text == "ok"
    # LlamaIndex's layout of ContextPackerPostprocessor nodes: the header above the text.
    assert llm.complete("Context:\n[1] minutes.md\n\nThe board met.\nQuery: When?").text == "ok"
    with pytest.raises(EgressBlockedError, match="URL"):
        llm.complete("Open notes.md and summarise it.")
    assert header_file_names(
        [" [1] a b.pdf, pp. 2-3, section: X\n [2] x@y.com\n[3] notes.md\n [4] doc-17"]
    ) == {"a b.pdf", "notes.md"}


# -- the answer stage as a query engine ------------------------------------------------------
#: (doc, index, text, acl, pages), as in tests/rag/llm/conftest.py.
CORPUS = [
    ("lease", 0, NOTICE + " Rent is due on the first day of each month.", (PUBLIC,), (3,)),
    ("lease", 1, "The landlord repairs the heating system within ten days of a written "
     "request.", (PUBLIC,), (4,)),
    ("policy", 0, "Employees may work from home two days per week with their manager's "
     "approval.", (PUBLIC,), (1,)),
    ("hr", 0, "The salary review for the engineering team happens every March.",
     ("group:hr",), (2,)),
    ("travel", 0, "Travel expenses are reimbursed within thirty days of the claim.",
     (PUBLIC,), (7,)),
]  # fmt: skip


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[tuple[Any, Retriever]]:
    from rag.stores._qdrant import QdrantServerStore

    settings = load_settings(
        home=tmp_path / "home",
        retrieval={"k": 3},
        llm={"max_retries": 0, "tokens_per_minute": None, "requests_per_minute": None},
    )
    embedder = FakeEmbedder(dimension=32, max_tokens=512)
    store = QdrantServerStore(":memory:", "documents", 32)
    bm25 = Bm25Encoder(settings.sparse)
    chunks = [
        Chunk(chunk_id_for(d, i, t), d, i, t, f"/docs/{d}.pdf", p, None, ("NarrativeText",),
              acl, len(t.split()))
        for d, i, t, acl, p in CORPUS
    ]  # fmt: skip
    store.upsert(
        [
            IndexedChunk(
                c, embedder.embed_passages([c.text])[0], bm25.encode_document(c.text), "h", 1
            )
            for c in chunks
        ]
    )
    try:
        yield settings, Retriever(settings, embedder=embedder, store=store, query_steps=())
    finally:
        store.close()


def grounded(request: Any) -> str:
    """Cites the passage holding NOTICE, by the label the packer gave it."""
    label = re.search(r"\[(\d+)\] lease\.pdf", request.messages[1].content)
    assert label is not None
    n = int(label.group(1))
    citations = [{"label": n, "quote": NOTICE}]
    return json.dumps({"answer": f"Ninety days [{n}].", "citations": citations,
                       "insufficient_context": False})  # fmt: skip


def test_answer_query_engine_returns_cited_source_nodes(corpus: Any) -> None:
    settings, retriever = corpus
    chat = ScriptedChatModel(default=grounded)
    engine = AnswerQueryEngine(
        Answerer(settings, retriever=retriever, chat=chat), Principal("alice")
    )
    assert isinstance(engine, BaseQueryEngine)
    response = engine.query("How many days notice must the tenant give?")
    label = int(re.findall(r"\[(\d+)\]", str(response))[0])
    assert str(response) == f"Ninety days [{label}]."
    [source] = response.source_nodes
    meta = source.node.metadata
    assert (meta["label"], meta["quote"], meta["source"]) == (label, NOTICE, "/docs/lease.pdf")
    assert meta["pages"] == [3] and meta["doc_id"] == "lease" and meta["origin"] == "packed"
    assert meta["chunk_ids"] == [chunk_id_for("lease", 0, CORPUS[0][2])]
    assert NOTICE in source.node.get_content()
    assert response.metadata is not None
    assert response.metadata["provider"] == "scripted"
    assert response.metadata["usage"]["total_tokens"] > 0
    assert response.metadata["insufficient_context"] is False
    assert response.metadata["reidentified"] is False and response.metadata["latency_s"] > 0
    assert engine.last_answer is not None and engine.last_answer.text == str(response)

    again = asyncio.run(engine.aquery("How many days notice must the tenant give?"))
    assert str(again) == str(response) and len(again.source_nodes) == 1


def test_answer_query_engine_filters_and_principal(corpus: Any) -> None:
    settings, retriever = corpus
    none = {"answer": "The passages do not say.", "citations": [], "insufficient_context": True}
    chat = ScriptedChatModel(default=lambda r: json.dumps(none))
    answerer = Answerer(settings, retriever=retriever, chat=chat)
    only_travel = MetadataFilters(filters=[MetadataFilter(key="doc_id", value="travel")])
    engine = AnswerQueryEngine(answerer, Principal("alice"), filters=only_travel)
    response = engine.query("How many days notice must the tenant give?")
    assert response.source_nodes == [] and response.metadata is not None
    assert response.metadata["insufficient_context"] is True
    prompt = chat.requests[0].messages[1].content
    assert "travel.pdf" in prompt and "lease.pdf" not in prompt
    with pytest.raises(AccessError):
        AnswerQueryEngine(answerer, "alice")  # type: ignore[arg-type]


def test_chat_model_llm_in_a_llama_index_query_engine(corpus: Any) -> None:
    settings, retriever = corpus
    chat = ScriptedChatModel(default=lambda r: "Ninety days [1].")
    engine = RetrieverQueryEngine.from_args(
        SovereignRetriever(retriever, Principal("alice")),
        llm=ChatModelLLM(chat, max_tokens=200),
        node_postprocessors=[ContextPackerPostprocessor.from_settings(settings)],
    )
    response = engine.query("How many days notice must the tenant give?")
    assert str(response) == "Ninety days [1]."
    sent = "\n".join(m.content for m in chat.requests[0].messages)
    assert "[1] lease.pdf, pp. 3-4" in sent and NOTICE in sent
    assert chat.requests[0].max_tokens == 200
