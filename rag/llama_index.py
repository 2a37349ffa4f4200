"""LlamaIndex adapters: our embedder, retriever and context packer as LlamaIndex parts.

    from llama_index.core.query_engine import RetrieverQueryEngine
    from rag.llama_index import ContextPackerPostprocessor, SovereignRetriever

    retriever = SovereignRetriever(
        Retriever(settings, embedder=embedder, store=store), Principal("alice", ("hr",))
    )
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=llm,
        node_postprocessors=[ContextPackerPostprocessor.from_settings(settings)],
    )

``LlamaIndexEmbedding`` refuses a passage longer than the model reads instead of silently
embedding only its beginning; pair it with ``ingest.llama_index.MistralTokenChunker``.

``SovereignRetriever`` keeps our access control, hybrid search and near-duplicate removal.
The keys of the nodes' metadata are the keys its filters take (``doc_id``, ``source``,
``pages``, ``chunk_index``, ``meta.<field>``...), and a filter LlamaIndex can express but our
stores cannot (OR, text match) is an error, never dropped.

``ContextPackerPostprocessor`` turns any retriever's nodes into one node per cited passage,
sized with Mistral's tokenizer so the passages fit the window; ``last_packed`` shows the
token accounting and what was dropped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    MetadataFilters,
)
from pydantic import PrivateAttr

from rag._config import EmbeddingSettings, Settings
from rag._embedding import Embedder, SentenceTransformerEmbedder
from rag._errors import AccessError, RagError
from rag._llama_answer import AnswerQueryEngine, answer_response, citation_node
from rag._llama_filters import translate_filters
from rag._llama_llm import ChatModelLLM
from rag._pack import ContextBlock, ContextPacker, PackedContext
from rag._retrieve import Mode, Principal, Retrieval, Retriever, as_filter
from rag._types import Chunk, Hit
from rag.stores import Filter
from rag.stores._base import META_PREFIX

#: Metadata an LLM sees next to a retrieved chunk (when nodes skip the packer): enough
#: to cite it. Ids, token counts and document metadata (e-mail headers...) stay out.
_LLM_KEYS = ("source", "pages", "section")
_BLOCK_NAMESPACE = uuid.UUID("0c8d7f43-3a2e-4e0b-9d55-6f3b8a1e2c71")

__all__ = [
    "AnswerQueryEngine",
    "ChatModelLLM",
    "ContextPackerPostprocessor",
    "LlamaIndexEmbedding",
    "SovereignRetriever",
    "answer_response",
    "block_node",
    "chunk_node",
    "citation_node",
    "hits_from_nodes",
    "translate_filters",
]


class LlamaIndexEmbedding(BaseEmbedding):
    """A LlamaIndex ``BaseEmbedding`` over any :class:`rag.Embedder`."""

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings, **kwargs: Any) -> LlamaIndexEmbedding:
        return cls(SentenceTransformerEmbedder(settings), **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "SovereignRagEmbedding"

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _get_query_embedding(self, query: str) -> Embedding:
        return [float(x) for x in self._embedder.embed_query(query)]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return [[float(x) for x in row] for row in self._embedder.embed_passages(texts)]


# -- retrieval -----------------------------------------------------------------------------
class SovereignRetriever(BaseRetriever):
    """A LlamaIndex retriever over :class:`rag.Retriever`, always as one principal.

    ``principal`` is required; None works only while every chunk of the collection is
    public. ``filters`` (LlamaIndex ``MetadataFilters``, a :class:`rag.stores.Filter` or a
    ``{key: value}`` mapping) restrict every query and are checked here, so a bad key fails
    at construction. The query bundle's embedding is ignored: the question is embedded by
    our embedder, the one the index was built with. ``last_retrieval`` is the last
    :class:`rag.Retrieval` (scores, dropped duplicates, timings) of this instance.
    """

    def __init__(
        self,
        retriever: Retriever,
        principal: Principal | None,
        *,
        k: int | None = None,
        mode: Mode | None = None,
        filters: MetadataFilters | Filter | Mapping[str, object] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if principal is not None and not isinstance(principal, Principal):
            raise AccessError(f"principal must be a rag.Principal, not {type(principal).__name__}")
        if k is not None and k < 1:
            raise RagError(f"k must be at least 1, got {k}")
        if mode is not None and mode not in get_args(Mode):
            raise RagError(f"unknown search mode {mode!r}: use dense, sparse or hybrid")
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self._retriever = retriever
        self._principal = principal
        self._k = k
        self._mode: Mode | None = mode
        self._filter = (
            translate_filters(filters)
            if isinstance(filters, MetadataFilters)
            else as_filter(filters)
        )
        self.last_retrieval: Retrieval | None = None

    @property
    def principal(self) -> Principal | None:
        return self._principal

    @property
    def filter(self) -> Filter | None:
        """The base filter, translated to our store's terms."""
        return self._filter

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self._retriever.retrieve(
            query_bundle.query_str, self._principal, self._filter, self._k, mode=self._mode
        )
        self.last_retrieval = result
        return [chunk_node(hit) for hit in result.hits]


def chunk_node(hit: Hit) -> NodeWithScore:
    """A retrieved chunk as a LlamaIndex node; :func:`hits_from_nodes` turns it back."""
    chunk = hit.chunk
    metadata: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "chunk_index": chunk.index,
        "source": chunk.source,
        "pages": list(chunk.pages),
        "section": chunk.section,
        "element_types": list(chunk.element_types),
        "token_count": chunk.token_count,
        "tokenizer": chunk.tokenizer,
    }
    for key, value in chunk.metadata.items():
        metadata[META_PREFIX + key] = _json_safe(value)
    node = TextNode(
        id_=chunk.chunk_id,
        text=chunk.text,
        metadata=metadata,
        # The index embedded the chunk text alone; a re-embedding must see the same.
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=[k for k in metadata if k not in _LLM_KEYS or not metadata[k]],
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=chunk.doc_id)},
    )
    return NodeWithScore(node=node, score=hit.score)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# -- filters -------------------------------------------------------------------------------
class ContextPackerPostprocessor(BaseNodePostprocessor):
    """Packs nodes into the Mistral window: one node per cited passage, in prompt order.

    Nodes are taken best first in the order given (so a reranker before this one counts).
    Adjacent chunks of one document become one passage. Each output node's text is the
    passage body; the LLM sees its header line (``[1] contract.pdf, p. 4``) as metadata,
    so it can cite the label. Token counts are exact for our prompt layout
    (``last_packed.messages``); LlamaIndex's own prompt template differs slightly, so keep
    some slack in ``answer_tokens``. ``last_packed`` is the :class:`rag.PackedContext` of
    this instance's last call (with concurrent queries, give each its own postprocessor).
    """

    _packer: ContextPacker = PrivateAttr()
    _system_prompt: str | None = PrivateAttr(default=None)
    _tools: tuple[Mapping[str, Any], ...] = PrivateAttr(default=())
    _response_schema: Mapping[str, Any] | None = PrivateAttr(default=None)
    _answer_tokens: int | None = PrivateAttr(default=None)
    _last_packed: PackedContext | None = PrivateAttr(default=None)

    def __init__(
        self,
        packer: ContextPacker | None = None,
        *,
        model: str | None = None,
        window: int | None = None,
        system_prompt: str | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
        response_schema: Mapping[str, Any] | None = None,
        answer_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if packer is not None and (model is not None or window is not None):
            raise RagError("give either a ContextPacker or model/window, not both")
        if packer is None:
            packer = (
                ContextPacker(window=window)
                if model is None
                else ContextPacker(model, window=window)
            )
        self._packer = packer
        self._system_prompt = system_prompt
        self._tools = tuple(tools)
        self._response_schema = response_schema
        self._answer_tokens = answer_tokens

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ContextPackerPostprocessor:
        """Model, window, tokenizer and answer reserve from ``settings.llm``."""
        return cls(ContextPacker.from_settings(settings), **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "ContextPackerPostprocessor"

    @property
    def packer(self) -> ContextPacker:
        return self._packer

    @property
    def last_packed(self) -> PackedContext | None:
        return self._last_packed

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise RagError(
                "ContextPackerPostprocessor needs the question: pass query_bundle= or "
                "query_str= to postprocess_nodes"
            )
        packed = self._packer.pack(
            hits_from_nodes(nodes),
            query_bundle.query_str,
            tools=self._tools,
            response_schema=self._response_schema,
            system_prompt=self._system_prompt,
            answer_tokens=self._answer_tokens,
        )
        self._last_packed = packed
        return [block_node(block) for block in packed.blocks]


def block_node(block: ContextBlock) -> NodeWithScore:
    """A packed passage as a LlamaIndex node."""
    metadata: dict[str, Any] = {
        "header": block.header,
        "citation": block.citation,
        "chunk_ids": list(block.chunk_ids),
        "doc_id": block.doc_id,
        "source": block.source,
        "pages": list(block.pages),
        "section": block.section,
        "truncated": block.truncated,
        "tokens": block.tokens,
        "rank": block.rank,
    }
    node = TextNode(
        id_=str(uuid.uuid5(_BLOCK_NAMESPACE, "\n".join(block.chunk_ids))),
        text=block.text,
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=[k for k in metadata if k != "header"],
        # The LLM reads "[1] file, p. 4" above the passage, as in our own prompt.
        metadata_template="{value}",
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=block.doc_id)},
    )
    return NodeWithScore(node=node, score=block.score)


def hits_from_nodes(nodes: Sequence[NodeWithScore]) -> list[Hit]:
    """:class:`rag.Hit` s for the packer from our nodes or any LlamaIndex retriever's.

    The document is the node's source document (``ref_doc_id``), else metadata ``doc_id``,
    else the node itself. Nodes without ``chunk_index`` are numbered along their
    previous/next links, so LlamaIndex neighbours merge like ours and others never do.
    """
    docs = [_doc_id(n.node) for n in nodes]
    indices = _indices(nodes, docs)
    return [
        Hit(_chunk(n.node, doc, index), float(n.score or 0.0))
        for n, doc, index in zip(nodes, docs, indices, strict=True)
    ]


def _indices(nodes: Sequence[NodeWithScore], docs: Sequence[str]) -> list[int]:
    indices = [_int(n.node.metadata.get("chunk_index")) for n in nodes]
    by_doc: dict[str, list[int]] = {}
    for i, index in enumerate(indices):
        if index is None:
            by_doc.setdefault(docs[i], []).append(i)
    for doc, members in by_doc.items():
        known = [x for x, d in zip(indices, docs, strict=True) if d == doc and x is not None]
        # Past the document's indexed chunks, so a guessed number never looks adjacent.
        start = max(known) + 2 if known else 0
        ids = {nodes[i].node.node_id: i for i in members}
        after: dict[int, int] = {}
        for i in members:
            following = ids.get(_related(nodes[i].node, NodeRelationship.NEXT) or "")
            if following is not None and following != i:
                after.setdefault(i, following)
            previous = ids.get(_related(nodes[i].node, NodeRelationship.PREVIOUS) or "")
            if previous is not None and previous != i:
                after.setdefault(previous, i)
        followers = set(after.values())
        # Chain heads first; members left over sit on a cycle and start one themselves.
        for head in [i for i in members if i not in followers] + members:
            node: int | None = head
            while node is not None and indices[node] is None:
                indices[node] = start
                start += 1
                node = after.get(node)
            start += 1  # a gap: separate runs must not merge
    return [0 if i is None else i for i in indices]  # every None was numbered above


def _related(node: BaseNode, relation: NodeRelationship) -> str | None:
    info = node.relationships.get(relation)
    return info.node_id if isinstance(info, RelatedNodeInfo) else None


def _doc_id(node: BaseNode) -> str:
    source = _related(node, NodeRelationship.SOURCE)
    if source:
        return source
    value = node.metadata.get("doc_id")
    return value if isinstance(value, str) and value else node.node_id


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _chunk(node: BaseNode, doc_id: str, index: int) -> Chunk:
    meta = node.metadata
    source = next(
        (
            v
            for k in ("source", "file_path", "file_name")
            if isinstance(v := meta.get(k), str) and v
        ),
        doc_id,
    )
    section = meta.get("section")
    return Chunk(
        chunk_id=node.node_id,
        doc_id=doc_id,
        index=index,
        text=node.get_content(metadata_mode=MetadataMode.NONE),
        source=source,
        pages=_pages(meta),
        section=section if isinstance(section, str) and section else None,
        element_types=tuple(str(t) for t in meta.get("element_types") or ()),
        acl=(),
        # No stored count: a postprocessor may have changed the text since it was counted,
        # and the packer cannot tell, so it counts afresh (milliseconds per query).
        token_count=0,
        tokenizer="",
        metadata={k[len(META_PREFIX) :]: v for k, v in meta.items() if k.startswith(META_PREFIX)},
    )


def _pages(meta: Mapping[str, Any]) -> tuple[int, ...]:
    pages = meta.get("pages")
    if isinstance(pages, (list, tuple)):
        return tuple(p for p in pages if _int(p) is not None)
    if (page := _int(pages)) is not None:
        return (page,)
    label = meta.get("page_label")  # LlamaIndex's PDF readers
    return (int(label),) if isinstance(label, str) and label.isdigit() else ()
