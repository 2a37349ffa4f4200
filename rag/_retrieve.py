"""Retrieval: who is asking, what they may read, and the best distinct chunks for a question.

Access control fails closed. Every query carries a :class:`Principal`; the store query
itself is restricted to chunks whose ACL names ``@public``, the user or one of the groups
(a payload filter inside each prefetch branch, never a post-filter). A query without a
principal is refused unless every chunk of the collection is public.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag._config import Settings
from rag._embedding import Embedder
from rag._errors import AccessError, RagError
from rag._sparse import Bm25Encoder
from rag._types import PUBLIC, Hit
from rag.stores import Filter, Match, SearchRequest, VectorStore

Mode = Literal["dense", "sparse", "hybrid"]
#: Rewrites a question before it is embedded or searched (the pseudonymizer plugs in here,
#: so a name in a question becomes the same placeholder as in the indexed text).
QueryStep = Callable[[str], str]

MAX_NAME_CHARS = 256
_SHINGLE = 3
_WORD = re.compile(r"\w+")

#: BM25 analysis languages (``sparse.language``) and their ISO 639-1 codes.
_ISO = {
    "arabic": "ar", "danish": "da", "dutch": "nl", "english": "en", "finnish": "fi",
    "french": "fr", "german": "de", "greek": "el", "hungarian": "hu", "italian": "it",
    "norwegian": "no", "portuguese": "pt", "romanian": "ro", "russian": "ru",
    "spanish": "es", "swedish": "sv", "tamil": "ta", "turkish": "tr",
}  # fmt: skip


def _clean_name(value: str, what: str) -> str:
    """NFC-normalised name; empty, control characters and over-long names are refused.

    Messages never repeat the name: user ids are often e-mail addresses.
    """
    if not isinstance(value, str):
        raise AccessError(f"{what} must be a string, not {type(value).__name__}")
    name = unicodedata.normalize("NFC", value)
    if not name.strip():
        raise AccessError(f"{what} is empty; give a name or leave it out")
    if name != name.strip():
        raise AccessError(f"a {what} has leading or trailing spaces")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise AccessError(f"a {what} contains control or unassigned characters")
    if len(name) > MAX_NAME_CHARS:
        raise AccessError(f"{what} is longer than {MAX_NAME_CHARS} characters")
    return name


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user id and the groups they belong to.

    Names are matched literally (no wildcards: ``*`` is a group named ``*``) after Unicode
    NFC normalisation, against ACL entries ``user:<id>`` and ``group:<name>``.
    """

    user: str | None = None
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.groups, str):
            raise AccessError("groups must be a list of names, not one string")
        user = None if self.user is None else _clean_name(self.user, "user id")
        groups = tuple(dict.fromkeys(_clean_name(g, "group name") for g in self.groups))
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "groups", groups)

    @property
    def is_anonymous(self) -> bool:
        return self.user is None and not self.groups

    def acl_values(self) -> tuple[str, ...]:
        """ACL entries this principal may read: public, the user, its groups."""
        out = [PUBLIC]
        if self.user is not None:
            out.append(f"user:{self.user}")
        out.extend(f"group:{g}" for g in self.groups)
        return tuple(out)


@dataclass(frozen=True)
class DroppedHit:
    chunk_id: str
    reason: Literal["duplicate"]
    #: The better-ranked chunk it duplicates.
    duplicate_of: str


@dataclass(frozen=True)
class Retrieval:
    """Ranked hits for one question, and what was left out."""

    #: The question as searched (after query steps such as pseudonymization).
    question: str
    hits: tuple[Hit, ...]
    mode: Mode
    #: Dense and BM25 weights of the fusion; None in one-branch modes.
    fusion_weights: tuple[float, float] | None
    principal: Principal | None
    dropped: tuple[DroppedHit, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)


#: Dense weight factor that makes exact RRF ties go to BM25. Qdrant's fusion does not break
#: ties (an unstable sort), and with equal weights ties are common (dense rank i + BM25 rank
#: j against j + i), so the same query could return a different order on every call.
TIE_BREAK = 0.999


def fusion_weights_for(settings: Settings) -> tuple[float, float]:
    """Hybrid (dense, BM25) weights: configured ones, else near-equal with BM25 winning ties,
    and the dense weight lowered when the embedding model does not read the corpus language.
    """
    configured = settings.retrieval.fusion_weights
    if configured is not None:
        return configured
    corpus = _ISO.get(settings.sparse.language.lower(), settings.sparse.language.lower())
    if corpus in {lang.lower() for lang in settings.embedding.languages}:
        return (TIE_BREAK, 1.0)
    return (settings.retrieval.foreign_dense_weight * TIE_BREAK, 1.0)


def as_filter(filters: Filter | Mapping[str, object] | None) -> Filter | None:
    """A :class:`Filter` from a Filter or a ``{key: value or list of values}`` mapping."""
    if filters is None or isinstance(filters, Filter):
        return filters
    if isinstance(filters, Mapping):
        return Filter.of(**filters)  # type: ignore[arg-type]  # Match checks each value
    raise RagError(f"filters must be a Filter or a mapping, not {type(filters).__name__}")


def _default_query_steps(settings: Settings) -> tuple[QueryStep, ...]:
    if not settings.privacy.enabled:
        return ()
    from rag.privacy._pseudonymize import Pseudonymizer

    return (Pseudonymizer.open(settings).query_step(),)


class Retriever:
    """Dense, BM25 or hybrid search over a store, access-controlled and de-duplicated."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder,
        store: VectorStore,
        query_steps: Sequence[QueryStep] | None = None,
    ) -> None:
        """``query_steps`` rewrite the question before it is embedded or searched. None
        (the default) means: pseudonymize it with the corpus vault when
        ``privacy.enabled``, else nothing; ``()`` turns every step off."""
        self.settings = settings
        self.embedder = embedder
        self.store = store
        if query_steps is None:
            query_steps = _default_query_steps(settings)
        self.query_steps = tuple(query_steps)
        # A pseudonymizing step also gives BM25 the keyed words behind placeholders.
        expand = next(
            (s.pseudonymizer.search_terms for s in self.query_steps if hasattr(s, "pseudonymizer")),
            None,
        )
        self._bm25 = Bm25Encoder(settings.sparse, expand=expand)
        self._owns_store = False

    @classmethod
    def open(
        cls, settings: Settings, *, query_steps: Sequence[QueryStep] | None = None
    ) -> Retriever:
        """A retriever on the configured embedding model and index; close it when done.

        The embedded index admits one process at a time, so use it as a context manager
        (``with Retriever.open(settings) as r: ...``) to release the index promptly.
        """
        from rag._embedding import SentenceTransformerEmbedder
        from rag.stores import open_store

        if query_steps is None:  # before the index is opened: a missing key stops here
            query_steps = _default_query_steps(settings)
        embedder = SentenceTransformerEmbedder(settings.embedding)
        store = open_store(settings, embedder.dimension)
        retriever = cls(settings, embedder=embedder, store=store, query_steps=query_steps)
        retriever._owns_store = True
        return retriever

    def close(self) -> None:
        """Close the store if :meth:`open` opened it (a given store stays the caller's)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def retrieve(
        self,
        question: str,
        principal: Principal | None,
        filters: Filter | Mapping[str, object] | None = None,
        k: int | None = None,
        *,
        mode: Mode | None = None,
    ) -> Retrieval:
        """The ``k`` best distinct chunks ``principal`` may read, best first."""
        cfg = self.settings.retrieval
        k = cfg.k if k is None else k
        mode = mode or cfg.mode
        if k < 1:
            raise RagError(f"k must be at least 1, got {k}")
        if mode not in ("dense", "sparse", "hybrid"):
            raise RagError(f"unknown search mode {mode!r}: use dense, sparse or hybrid")
        if not isinstance(question, str) or not question.strip():
            raise RagError("the question is empty")
        where = as_filter(filters)
        acl = self._acl_filter(principal)
        timings: dict[str, float] = {}
        for step in self.query_steps:
            question = step(question)
            if not isinstance(question, str) or not question.strip():
                raise RagError(f"query step {step!r} returned an empty question")

        started = time.perf_counter()
        sparse = self._bm25.encode_query(question) if mode != "dense" else None
        if sparse is not None and not sparse.indices:
            # Only stopwords (or nothing) left after BM25 analysis: no lexical signal.
            if mode == "sparse":
                return Retrieval(question, (), mode, None, principal, timings_ms=timings)
            mode, sparse = "dense", None
        dense = self.embedder.embed_query(question).tolist() if mode != "sparse" else None
        timings["encode"] = (time.perf_counter() - started) * 1000

        weights = fusion_weights_for(self.settings) if mode == "hybrid" else None
        # Over-fetch so that removing near-duplicates still leaves k hits.
        limit = min(k * 2 + 10, max(k, cfg.prefetch))
        request = SearchRequest(
            mode=mode,
            limit=limit,
            dense=dense,
            sparse=sparse,
            filter=acl & where,
            prefetch_limit=max(cfg.prefetch, limit),
            fusion_weights=weights,
        )
        started = time.perf_counter()
        found = self.store.search(request)
        timings["search"] = (time.perf_counter() - started) * 1000
        hits, dropped = remove_near_duplicates(found, cfg.duplicate_similarity, k)
        return Retrieval(question, hits, mode, weights, principal, dropped, timings)

    def _acl_filter(self, principal: Principal | None) -> Filter:
        if principal is not None and not isinstance(principal, Principal):
            raise AccessError(f"principal must be a rag.Principal, not {type(principal).__name__}")
        if principal is None or principal.is_anonymous:
            restricted = self.store.count(Filter(must_not=(Match("acl", (PUBLIC,)),)))
            if restricted:
                raise AccessError(
                    "this collection holds access-controlled documents, so a query must say "
                    "who is asking: give a user and/or groups (rag search --as USER "
                    "--group GROUP; Principal(user=..., groups=...) in Python)"
                )
            principal = Principal()
        return Filter(must=(Match("acl", principal.acl_values()),))


def _shingles(text: str) -> frozenset[str] | frozenset[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < _SHINGLE:
        return frozenset(words)
    return frozenset(tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1))


def remove_near_duplicates(
    hits: Sequence[Hit], threshold: float, k: int
) -> tuple[tuple[Hit, ...], tuple[DroppedHit, ...]]:
    """Keep the best ``k`` hits whose text is not a near-copy of a better one.

    Similarity is the Jaccard overlap of word 3-shingles (case-insensitive), so the same
    boilerplate paragraph in five documents yields one hit, while adjacent chunks that share
    only an overlap sentence both stay.
    """
    kept: list[tuple[Hit, frozenset[object]]] = []
    dropped: list[DroppedHit] = []
    for hit in hits:
        if len(kept) == k:
            break
        shingles: frozenset[object] = _shingles(hit.chunk.text)
        twin = next((h for h, s in kept if _jaccard(shingles, s) >= threshold), None)
        if twin is not None:
            dropped.append(DroppedHit(hit.chunk.chunk_id, "duplicate", twin.chunk.chunk_id))
        else:
            kept.append((hit, shingles))
    return tuple(h for h, _ in kept), tuple(dropped)


def _jaccard(a: frozenset[object], b: frozenset[object]) -> float:
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
