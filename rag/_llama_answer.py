"""LlamaIndex query engine over the answer stage: validated answers, cited source nodes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager
from llama_index.core.prompts.mixin import PromptMixinType
from llama_index.core.schema import (
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import MetadataFilters

from rag._errors import (
    AccessError,
    RagError,
)
from rag._llama_filters import translate_filters
from rag._retrieve import Principal, as_filter
from rag.llm._answer import Answer, Citation, Passage

if TYPE_CHECKING:
    from rag.llm._generate import Answerer
    from rag.llm._tools import Tool


_CITATION_NAMESPACE = uuid.UUID("5b0e2c8a-7d41-4f5e-a0c3-91d6e2f4b8a7")
#: Citation metadata an LLM sees when these nodes are fed to one (a chat engine...).
_LLM_KEYS = ("source", "pages", "section")


class AnswerQueryEngine(BaseQueryEngine):
    """A LlamaIndex query engine over :class:`rag.llm.Answerer`, as one principal.

    ``query(question)`` returns a LlamaIndex ``Response``: ``response`` is the validated
    answer text (re-identified when the principal may see values and ``reidentify``),
    ``source_nodes`` one node per checked citation (the passage text as the model saw it;
    metadata ``label``, ``quote``, ``source``, ``doc_id``, ``pages``, ``section``,
    ``chunk_ids``, ``origin``), and ``metadata`` the usage, provider, model, latency,
    ``reidentified`` and ``insufficient_context``. ``last_answer`` is the last
    :class:`rag.llm.Answer` of this instance. Failures raise the Answerer's typed errors.
    """

    def __init__(
        self,
        answerer: Answerer,
        principal: Principal | None,
        *,
        filters: MetadataFilters | Mapping[str, object] | Any = None,
        k: int | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        reidentify: bool = True,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        if principal is not None and not isinstance(principal, Principal):
            raise AccessError(f"principal must be a rag.Principal, not {type(principal).__name__}")
        if k is not None and k < 1:
            raise RagError(f"k must be at least 1, got {k}")
        super().__init__(callback_manager=callback_manager)
        self._answerer = answerer
        self._principal = principal
        self._filter = (
            translate_filters(filters)
            if isinstance(filters, MetadataFilters)
            else as_filter(filters)
        )
        self._k = k
        self._tools = tuple(tools)
        self._reidentify = reidentify
        self.last_answer: Answer | None = None

    @property
    def principal(self) -> Principal | None:
        return self._principal

    @property
    def answerer(self) -> Answerer:
        return self._answerer

    def _get_prompt_modules(self) -> PromptMixinType:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Response:
        answer = self._answerer.answer(
            query_bundle.query_str,
            self._principal,
            filters=self._filter,
            k=self._k,
            tools=self._tools,
            reidentify=self._reidentify,
        )
        self.last_answer = answer
        return answer_response(answer)

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return await asyncio.to_thread(self._query, query_bundle)


def answer_response(answer: Answer) -> Response:
    """An :class:`rag.llm.Answer` as a LlamaIndex ``Response`` (see AnswerQueryEngine)."""
    passages = {p.label: p for p in answer.passages}
    metadata: dict[str, Any] = {
        "usage": asdict(answer.usage),
        "provider": answer.provider,
        "model": answer.model,
        "latency_s": answer.latency_s,
        "reidentified": answer.reidentified,
        "insufficient_context": answer.insufficient_context,
        "request_id": answer.request_id,
        "repaired": answer.repaired,
        "calls": answer.calls,
        "tool_runs": [asdict(run) for run in answer.tool_runs],
        "timings_ms": dict(answer.timings_ms),
    }
    return Response(
        response=answer.text,
        source_nodes=[citation_node(c, passages.get(c.label)) for c in answer.citations],
        metadata=metadata,
    )


def citation_node(citation: Citation, passage: Passage | None = None) -> NodeWithScore:
    """A checked citation as a LlamaIndex node: the cited passage's text (the quote alone
    when the passage is not given), with the citation as metadata."""
    metadata: dict[str, Any] = {
        "label": citation.label,
        "quote": citation.quote,
        "source": citation.source,
        "doc_id": citation.doc_id,
        "pages": list(citation.pages),
        "section": citation.section,
        "chunk_ids": list(citation.chunk_ids),
        "origin": passage.origin if passage is not None else "packed",
    }
    key = "\n".join([str(citation.label), citation.quote, *citation.chunk_ids])
    node = TextNode(
        id_=str(uuid.uuid5(_CITATION_NAMESPACE, key)),
        text=passage.text if passage is not None else citation.quote,
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=[k for k in metadata if k not in _LLM_KEYS or not metadata[k]],
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=citation.doc_id)},
    )
    return NodeWithScore(node=node, score=None)
