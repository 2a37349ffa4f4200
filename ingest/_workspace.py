"""One object for notebooks and scripts: ingest, search and answer over one home directory.

The embedded index admits one opener per process, so the workspace opens the embedding
model and the index once and shares them between ingestion, search and answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag._config import Settings, load_settings
from rag._retrieve import Mode, Principal, Retrieval, Retriever

if TYPE_CHECKING:
    from ingest._manage import Status
    from ingest._pipeline import Progress
    from ingest._report import RunReport
    from rag._embedding import Embedder
    from rag.llm import Answer, Answerer, AnswerEvent, ChatModel, Tool
    from rag.stores import VectorStore


class Workspace:
    """Ingest, search and answer with one set of settings (one home directory).

    >>> ws = Workspace.open(home="/data/rag")            # doctest: +SKIP
    >>> ws.ingest(["/data/contracts"])                    # doctest: +SKIP
    >>> ws.answer("What is the notice period?", Principal("alice"))  # doctest: +SKIP

    Parts are loaded on first use: the embedding model and index by the first ingest or
    search, the chat model by the first answer. Pass ``embedder``, ``store`` or ``chat``
    to use your own (tests, other providers). Close it (or use ``with``) to release the
    index for other processes.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        chat: ChatModel | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store = store
        self._owns_store = store is None
        self._chat = chat
        self._owns_chat = chat is None
        self._tools = tuple(tools)
        self._retriever: Retriever | None = None
        self._answerer: Answerer | None = None

    @classmethod
    def open(cls, config_file: Path | str | None = None, **overrides: Any) -> Workspace:
        """Settings from the TOML file, ``RAG_*`` variables and ``overrides``
        (as :func:`rag.load_settings`)."""
        return cls(load_settings(config_file, **overrides))

    # -- parts, loaded on first use --------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from rag._embedding import SentenceTransformerEmbedder

            self._embedder = SentenceTransformerEmbedder(self.settings.embedding)
        return self._embedder

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            from rag.stores import open_store

            self._store = open_store(self.settings, self.embedder.dimension)
        return self._store

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever(self.settings, embedder=self.embedder, store=self.store)
        return self._retriever

    @property
    def answerer(self) -> Answerer:
        if self._answerer is None:
            from rag.llm import Answerer
            from rag.llm._factory import open_chat_model

            if self._chat is None:
                self._chat = open_chat_model(self.settings)
            self._answerer = Answerer(
                self.settings, retriever=self.retriever, chat=self._chat, tools=self._tools
            )
        return self._answerer

    # -- the three jobs --------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path | str],
        *,
        prune: bool = False,
        progress: Progress | None = None,
    ) -> RunReport:
        """``rag ingest``: parse, pseudonymize, chunk, embed and index; the run report."""
        from ingest._pipeline import ingest

        return ingest(
            paths, self.settings, embedder=self.embedder, store=self.store,
            progress=progress, prune=prune,
        )  # fmt: skip

    def search(
        self,
        question: str,
        principal: Principal | None = None,
        filters: Any = None,
        k: int | None = None,
        *,
        mode: Mode | None = None,
    ) -> Retrieval:
        """``rag search``: the best chunks ``principal`` may read (question pseudonymized)."""
        return self.retriever.retrieve(question, principal, filters, k, mode=mode)

    def answer(
        self,
        question: str,
        principal: Principal | None = None,
        *,
        filters: Any = None,
        k: int | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        reidentify: bool = True,
    ) -> Answer:
        """``rag ask``: a validated JSON answer with checked citations (see
        :meth:`rag.llm.Answerer.answer`); raises ``ProviderNotConfiguredError`` without
        ``llm.provider``."""
        return self.answerer.answer(
            question, principal, filters=filters, k=k, tools=tools, reidentify=reidentify
        )

    def stream(
        self,
        question: str,
        principal: Principal | None = None,
        *,
        filters: Any = None,
        k: int | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        reidentify: bool = True,
    ) -> Iterator[AnswerEvent]:
        """:meth:`answer`, streamed (see :meth:`rag.llm.Answerer.stream`)."""
        return self.answerer.stream(
            question, principal, filters=filters, k=k, tools=tools, reidentify=reidentify
        )

    def status(self) -> Status:
        """``rag status``: collection counts and the last run."""
        from ingest._manage import collection_status

        return collection_status(self.settings, self.store)

    def close(self) -> None:
        """Release the index (and the chat model's connections) if the workspace opened them."""
        if self._owns_chat and self._chat is not None:
            self._chat.close()
            self._chat = None
            self._answerer = None
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None
            self._retriever = None
            self._answerer = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
