"""LlamaIndex adapters: the privacy step as a transform, the chunker as a node parser.

    pipeline = IngestionPipeline(transformations=[
        PseudonymizeTransform.from_settings(settings),
        MistralTokenChunker.from_settings(settings, embedder),
        LlamaIndexEmbedding(embedder),
    ])

Nodes are sized in Mistral tokens of the configured model and capped at what the
embedding model reads, so nothing is truncated when they are embedded. Plain LlamaIndex
documents carry no layout, so Markdown headings start sections and blank lines separate
paragraphs; a document parsed by our pipeline keeps its full structure instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.node_parser.node_utils import build_nodes_from_splits
from llama_index.core.schema import BaseNode, MetadataMode, TransformComponent
from pydantic import PrivateAttr

from ingest._chunk import Chunker
from ingest._privacy import COUNTS_KEY, PLACEHOLDERS_KEY
from rag._config import Settings
from rag._embedding import Embedder
from rag._types import PUBLIC, Element, ParsedDocument
from rag.privacy._pseudonymize import Pseudonymizer

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")


class MistralTokenChunker(NodeParser):
    """Split LlamaIndex documents with :class:`ingest.Chunker`."""

    _chunker: Chunker = PrivateAttr()

    def __init__(self, chunker: Chunker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._chunker = chunker

    @classmethod
    def from_settings(
        cls, settings: Settings, embedder: Embedder, **kwargs: Any
    ) -> MistralTokenChunker:
        chunker = Chunker.for_settings(settings, embedder)
        return cls(chunker, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "MistralTokenChunker"

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        out: list[BaseNode] = []
        for node in nodes:
            # LlamaIndex embeds "metadata\n\ntext": keep room for the metadata it inherits,
            # or the embedding model would cut off the end of the chunk.
            header = node.get_metadata_str(MetadataMode.EMBED)
            reserve = self._chunker.embed_tokens(header) + 4 if header else 0
            chunker = self._chunker.reserving(reserve)
            doc = ParsedDocument(Path(node.node_id), tuple(_elements(node.get_content())))
            chunks = chunker.chunk(doc, node.node_id, (PUBLIC,), node.node_id)
            built = build_nodes_from_splits([c.text for c in chunks], node, id_func=self.id_func)
            for text_node, chunk in zip(built, chunks, strict=True):
                text_node.metadata.update(
                    {"section": chunk.section or "", "mistral_tokens": chunk.token_count}
                )
                # Ours are for filtering and display, not for the embedding or the LLM.
                for keys in (
                    text_node.excluded_embed_metadata_keys,
                    text_node.excluded_llm_metadata_keys,
                ):
                    keys.extend(k for k in ("section", "mistral_tokens") if k not in keys)
            out.extend(built)
        return out


def _elements(text: str) -> list[Element]:
    elements = []
    for block in re.split(r"\n\s*\n", text):
        if not block.strip():
            continue
        if _HEADING.match(block) and "\n" not in block.strip():
            elements.append(Element(_HEADING.sub("", block).strip(), "Title"))
        else:
            elements.append(Element(block.strip(), "NarrativeText"))
    return elements


class PseudonymizeTransform(TransformComponent):
    """The privacy step as a LlamaIndex transform: node text and string metadata are
    pseudonymized with the corpus vault (same key, same placeholders as ``rag ingest``).

    Put it first in an ``IngestionPipeline``, before any splitter, embedding or vector
    store, so no raw personal data is embedded or stored. Each node's metadata gains
    ``pii_placeholders`` and ``pii_counts`` (excluded from embedding and LLM text).
    """

    _pseudonymizer: Pseudonymizer = PrivateAttr()

    def __init__(self, pseudonymizer: Pseudonymizer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pseudonymizer = pseudonymizer

    @classmethod
    def from_settings(cls, settings: Settings) -> PseudonymizeTransform:
        return cls(Pseudonymizer.open(settings))

    @classmethod
    def class_name(cls) -> str:
        return "PseudonymizeTransform"

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for node in nodes:
            keys = [k for k, v in node.metadata.items() if isinstance(v, str)]
            texts = [node.get_content(MetadataMode.NONE), *(node.metadata[k] for k in keys)]
            results = self._pseudonymizer.pseudonymize(texts)
            node = node.model_copy(deep=True)
            node.set_content(results[0].text)
            for key, result in zip(keys, results[1:], strict=True):
                node.metadata[key] = result.text
            placeholders = list(dict.fromkeys(p for r in results for p in r.placeholders))
            counts: dict[str, int] = {}
            for r in results:
                for entity, n in r.counts.items():
                    counts[entity] = counts.get(entity, 0) + n
            node.metadata[PLACEHOLDERS_KEY] = placeholders
            node.metadata[COUNTS_KEY] = counts
            for excluded in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
                excluded.extend(k for k in (PLACEHOLDERS_KEY, COUNTS_KEY) if k not in excluded)
            out.append(node)
        return out
