"""Query-side search over an index: embed the question, search dense/BM25/hybrid.

Access control is enforced inside the store query: a caller sees public chunks plus the
chunks whose ACL names one of the caller's principals, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rag._config import Settings
from rag._embedding import Embedder
from rag._errors import ConfigError
from rag._sparse import Bm25Encoder
from rag._types import PUBLIC, Hit
from rag.stores import Filter, Match, SearchRequest, VectorStore

Mode = Literal["dense", "sparse", "hybrid"]


def principals_for(user: str | None, groups: Sequence[str] = ()) -> tuple[str, ...]:
    """ACL principals of a caller: ``user:<id>``, ``group:<name>``, plus public."""
    out = [PUBLIC]
    if user is not None:
        if not user.strip():
            raise ConfigError("--as", "the user id is empty", "give a user id or leave it out")
        out.append(f"user:{user}")
    for g in groups:
        if not g.strip():
            raise ConfigError("--group", "a group name is empty", "remove it")
        out.append(f"group:{g}")
    return tuple(dict.fromkeys(out))


def search(
    question: str,
    *,
    settings: Settings,
    embedder: Embedder,
    store: VectorStore,
    principals: Sequence[str] = (PUBLIC,),
    k: int = 5,
    mode: Mode = "hybrid",
    where: Filter | None = None,
) -> list[Hit]:
    acl = Match("acl", tuple(principals))
    query_filter = Filter(
        must=(acl, *(where.must if where else ())), must_not=where.must_not if where else ()
    )
    dense = embedder.embed_query(question).tolist() if mode != "sparse" else None
    sparse = Bm25Encoder(settings.sparse).encode_query(question) if mode != "dense" else None
    if sparse is not None and not sparse.indices:
        # Only stopwords (or nothing) left after BM25 analysis: no lexical signal.
        if mode == "sparse":
            return []
        mode, sparse = "dense", None
    request = SearchRequest(
        mode=mode,
        limit=k,
        dense=dense,
        sparse=sparse,
        filter=query_filter,
        prefetch_limit=max(50, 4 * k),
    )
    return store.search(request)
