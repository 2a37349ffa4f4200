"""Structure-aware chunking, sized in Mistral tokens and capped at what the embedder reads.

Sections start at title elements; tables are chunks of their own; inside a section the
text is cut at sentence boundaries with an overlap of whole sentences. Every chunk is
checked with both tokenizers on its exact final text: at most ``chunking.max_tokens``
Mistral tokens and at most the embedding model's window, so nothing is truncated silently
when it is embedded (a typical 512-token setup loses the tail of most chunks that way).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rag._config import ChunkingSettings, Settings
from rag._embedding import Embedder
from rag._tokens import MistralTokens, TokenCounter
from rag._types import Chunk, Element, ParsedDocument, chunk_id_for

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_TITLE = "Title"
_TABLE = "Table"


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one) with what it belongs to."""

    text: str
    sep: str  # joins it to the previous unit: "\n" between elements, " " inside one
    category: str
    page: int | None
    mistral: int
    embed: int


class Chunker:
    """Cuts a parsed document into :class:`Chunk` objects (see the module docstring)."""

    def __init__(
        self,
        settings: ChunkingSettings,
        mistral: TokenCounter,
        embed_tokens: Callable[[str], int] | None = None,
        embed_limit: int | None = None,
    ) -> None:
        self.max_mistral = settings.max_tokens
        self.overlap = settings.overlap_tokens
        self.mistral = mistral
        self.embed_tokens = embed_tokens or (lambda _text: 0)
        self.embed_limit = embed_limit if embed_tokens is not None else None
        # Sections shorter than this are merged with the next one instead of standing
        # alone (PDF parsers tag many short lines as titles).
        self.min_section = max(1, settings.max_tokens // 4)

    @classmethod
    def for_settings(cls, settings: Settings, embedder: Embedder) -> Chunker:
        """The pipeline's chunker: Mistral tokens of ``llm.model``, the embedder's window."""
        return cls(
            settings.chunking,
            MistralTokens(settings.tokenizer_version()),
            embedder.count_tokens,
            embedder.max_tokens,
        )

    def reserving(self, embed_tokens: int) -> Chunker:
        """A copy whose chunks leave ``embed_tokens`` of the embedder's window free (for
        text a framework puts in front of the chunk when embedding it, e.g. metadata)."""
        if self.embed_limit is None or embed_tokens <= 0:
            return self
        other = copy.copy(self)
        other.embed_limit = max(1, self.embed_limit - embed_tokens)
        return other

    def chunk(
        self, doc: ParsedDocument, doc_id: str, acl: Sequence[str], source: str
    ) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section, units, html in self._groups(doc.elements):
            pieces = list(self._pack(units))
            # A table that fits one chunk keeps its HTML (rows and cells) for display and
            # for the LLM; a split table keeps its text only, not the whole HTML per piece.
            meta = {**doc.metadata, "table_html": html} if html and len(pieces) == 1 else None
            for piece in pieces:
                text = _join(piece)
                index = len(chunks)
                chunks.append(
                    Chunk(
                        chunk_id=chunk_id_for(doc_id, index, text),
                        doc_id=doc_id,
                        index=index,
                        text=text,
                        source=source,
                        pages=tuple(sorted({u.page for u in piece if u.page is not None})),
                        section=section,
                        element_types=tuple(dict.fromkeys(u.category for u in piece)),
                        acl=tuple(acl),
                        token_count=self.mistral.count(text),
                        metadata=meta or dict(doc.metadata),
                        tokenizer=self.mistral.name,
                    )
                )
        return chunks

    # -- structure: which units are packed together --
    def _groups(
        self, elements: Sequence[Element]
    ) -> Iterator[tuple[str | None, list[_Unit], str | None]]:
        """(section title, units to pack together, the table's HTML for a table group)."""
        section: str | None = None
        current: list[_Unit] = []
        body_tokens = 0
        for el in elements:
            text = el.text.strip()
            if not text:
                continue
            if el.category == _TABLE:
                if current:
                    yield section, current, None
                    current, body_tokens = [], 0
                html = el.extra.get("text_as_html")
                units = list(self._units(text, el, first_sep="\n"))
                yield section, units, html if isinstance(html, str) else None
                continue
            if el.category == _TITLE and body_tokens >= self.min_section:
                yield section, current, None
                current, body_tokens = [], 0
            if el.category == _TITLE and body_tokens == 0:
                section = text[:200]
            units = list(self._units(text, el, first_sep="\n"))
            current.extend(units)
            if el.category != _TITLE:
                body_tokens += sum(u.mistral for u in units)
        if current:
            yield section, current, None

    def _units(self, text: str, el: Element, first_sep: str) -> Iterator[_Unit]:
        sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
        for i, sentence in enumerate(sentences):
            pieces = [p for p in self._fit(sentence.strip()) if p.strip()]
            for j, piece in enumerate(pieces):
                sep = first_sep if i == 0 and j == 0 else " "
                yield _Unit(
                    piece,
                    sep,
                    el.category,
                    el.page,
                    self.mistral.count(piece),
                    self.embed_tokens(piece),
                )

    def _fits(self, text: str) -> bool:
        if self.mistral.count(text) > self.max_mistral:
            return False
        return self.embed_limit is None or self.embed_tokens(text) <= self.embed_limit

    def _fit(self, text: str) -> list[str]:
        """Split a sentence that alone exceeds a limit: at spaces, else at characters."""
        if self._fits(text):
            return [text]
        words = text.split()  # runs of spaces inside an over-long sentence become one
        if len(words) == 1:
            return _bisect_pieces(list(text), "", self._fits)
        return _bisect_pieces(words, " ", self._fits)

    # -- size: greedy packing with sentence overlap, verified exactly --
    def _pack(self, units: list[_Unit]) -> Iterator[list[_Unit]]:
        start = 0
        while start < len(units):
            end = start
            mistral = embed = 0
            while end < len(units):
                u = units[end]
                if end > start and (
                    mistral + u.mistral > self.max_mistral
                    or (self.embed_limit is not None and embed + u.embed > self.embed_limit)
                ):
                    break
                mistral += u.mistral
                embed += u.embed
                end += 1
            # Sums of per-unit counts can differ from the joined text's count by a token
            # at the seams: verify the real text and give back units until it fits.
            while end - start > 1 and not self._fits(_join(units[start:end])):
                end -= 1
            yield units[start:end]
            if end >= len(units):
                return
            start = self._overlap_start(units, start, end)

    def _overlap_start(self, units: list[_Unit], start: int, end: int) -> int:
        back, budget = end, self.overlap
        while back - 1 > start and units[back - 1].mistral <= budget:
            budget -= units[back - 1].mistral
            back -= 1
        return back


def _join(units: Sequence[_Unit]) -> str:
    return "".join((u.sep if i else "") + u.text for i, u in enumerate(units))


def _bisect_pieces(parts: list[str], sep: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy: the longest prefix of ``parts`` that fits, found by binary search."""
    pieces: list[str] = []
    i = 0
    while i < len(parts):
        lo, hi = i + 1, len(parts)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(sep.join(parts[i:mid])):
                lo = mid
            else:
                hi = mid - 1
        if lo == i + 1 and not fits(parts[i]):
            # A single word over the limit: fall back to its characters.
            pieces.extend(_bisect_pieces(list(parts[i]), "", fits) if sep else [parts[i]])
        else:
            pieces.append(sep.join(parts[i:lo]))
        i = lo
    return pieces
