"""Our chunker and embedder plugged into a plain LlamaIndex IngestionPipeline."""

from __future__ import annotations

import pytest
from llama_index.core import Document
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import MetadataMode

from ingest.llama_index import MistralTokenChunker
from rag import EmbeddingError, MistralTokens, load_settings
from rag.llama_index import LlamaIndexEmbedding
from rag.testing import FakeEmbedder


def test_pipeline_nodes_fit_and_are_embedded() -> None:
    settings = load_settings(chunking={"max_tokens": 64, "overlap_tokens": 8})
    embedder = FakeEmbedder(max_tokens=40)
    text = "# Payment\n\n" + " ".join(f"Invoices are due in {i} days." for i in range(80))
    pipeline = IngestionPipeline(
        transformations=[
            MistralTokenChunker.from_settings(settings, embedder),
            LlamaIndexEmbedding(embedder),
        ]
    )
    document = Document(text=text, id_="contract-1", metadata={"client": "Example Corp Ltd"})
    nodes = pipeline.run(documents=[document])
    tok = MistralTokens(settings.tokenizer_version())
    assert len(nodes) > 3
    for node in nodes:
        assert tok.count(node.get_content()) <= 64
        # what LlamaIndex actually embeds: inherited metadata + text
        assert embedder.count_tokens(node.get_content(MetadataMode.EMBED)) <= 40
        assert node.embedding is not None and len(node.embedding) == embedder.dimension
        assert node.ref_doc_id == "contract-1"
    assert nodes[0].metadata["section"] == "Payment"


def test_embedding_refuses_to_truncate() -> None:
    embed = LlamaIndexEmbedding(FakeEmbedder(max_tokens=5))
    with pytest.raises(EmbeddingError):
        embed.get_text_embedding("one two three four five six seven")
    assert len(embed.get_query_embedding("a long query " * 20)) == 64
