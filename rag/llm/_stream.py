"""Streaming helpers: the answer text out of a streamed JSON answer, placeholders kept
whole (and optionally re-identified) across pieces, and Server-Sent Events.

The model streams the JSON object ``{"answer": "...", "citations": [...], ...}``; users
should see the answer text as it arrives, not JSON. Pieces may split anything: a key, an
escape, a surrogate pair, a placeholder. Each helper keeps just enough state to emit only
what is certain, so the concatenated output never depends on where the pieces were cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pydantic_core

from rag.privacy import PLACEHOLDER

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_STRING_STOP = re.compile(r'["\\]')
_REPLACEMENT = "\ufffd"  # for a lone surrogate, which could not be encoded as UTF-8 later
# How far a Markdown fence's first line (```json) may run before the content is taken
# as plain text.
_FENCE_LINE = 40
#: What may still grow into a placeholder: every prefix of ``rag.privacy.PLACEHOLDER``.
_PLACEHOLDER_PREFIX = re.compile(r"<(?:[A-Z][A-Z_]*(?:_[0-9a-f]{1,64})?)?\Z")

Mode = Literal["pending", "json", "text"]
_Role = Literal["key", "answer", "other"]


class AnswerTextExtractor:
    """Feeds on the streamed content of a JSON answer and returns, piece by piece, the
    decoded characters of the top-level ``"answer"`` string.

    Whitespace and a Markdown fence (```json) before the object are skipped; ``answer``
    need not be the first key; nested keys (in citations) and anything after the answer
    string ends are ignored. Content that does not start as a JSON object is plain text
    and is passed through as is; ``json=False`` passes everything through.
    """

    def __init__(self, *, json: bool = True, key: str = "answer") -> None:
        self.key = key
        self.mode: Mode = "pending" if json else "text"
        #: True once the answer string (or the whole object) has ended.
        self.done = False
        self._head = ""  # content held while deciding between JSON and plain text
        self._depth = 0
        self._expect_key = False
        self._last_key: str | None = None
        self._in_string = False
        self._role: _Role = "other"
        self._key: list[str] = []
        self._escape: str | None = None  # "" after a backslash, hex digits after \u
        self._high: int | None = None  # a high surrogate waiting for its low half

    def feed(self, piece: str) -> str:
        """The answer characters that ``piece`` made available (often "")."""
        if self.mode == "text":
            return piece
        if self.mode == "pending":
            self._head += piece
            start = self._json_start()
            if start is None:
                return ""
            head, self._head = self._head, ""
            if start < 0:
                self.mode = "text"
                return head
            self.mode = "json"
            piece = head[start:]
        return "" if self.done else self._parse(piece)

    def flush(self) -> str:
        """At the end of the stream: content still held while undecided (plain text)."""
        head, self._head = self._head, ""
        if self.mode == "pending":
            self.mode = "text"
            return head
        return ""

    def _json_start(self) -> int | None:
        """Where the JSON object starts in the held content, -1 if it is plain text,
        None while that cannot be known yet."""
        head = self._head
        i = len(head) - len(head.lstrip())
        if i == len(head):
            return None
        if head[i] == "{":
            return i
        if head[i] != "`":
            return -1
        fence = head[i : i + 3]
        if fence != "```":
            return None if "```".startswith(fence) else -1
        line = head[i + 3 : i + 3 + _FENCE_LINE]
        if "\n" not in line:
            return None if len(line) < _FENCE_LINE else -1
        j = i + 3 + line.index("\n") + 1
        rest = head[j:]
        k = len(rest) - len(rest.lstrip())
        if k == len(rest):
            return None
        return j + k if rest[k] == "{" else -1

    def _parse(self, text: str) -> str:
        out: list[str] = []
        i, n = 0, len(text)
        while i < n and not self.done:
            if self._in_string:
                i = self._string(text, i, out)
                continue
            c = text[i]
            i += 1
            if c == '"':
                self._open_string()
            elif c in "{[":
                self._depth += 1
                if self._depth == 1:
                    self._expect_key = True
            elif c in "}]":
                self._depth -= 1
                self.done = self._depth <= 0
            elif self._depth == 1 and c == ",":
                self._expect_key, self._last_key = True, None
            elif self._depth == 1 and c == ":":
                self._expect_key = False
        return "".join(out)

    def _open_string(self) -> None:
        self._in_string = True
        if self._depth != 1:
            self._role = "other"
        elif self._expect_key:
            self._role = "key"
            self._key = []
        else:
            self._role = "answer" if self._last_key == self.key else "other"

    def _string(self, text: str, i: int, out: list[str]) -> int:
        """Consume string content from ``text[i]``; return the next index."""
        sink = out if self._role == "answer" else self._key if self._role == "key" else None
        if self._escape is not None:
            self._escaped(text[i], sink)
            return i + 1
        m = _STRING_STOP.search(text, i)
        end = m.start() if m else len(text)
        if end > i:
            self._put(text[i:end], sink)
        if m is None:
            return end
        if text[end] == "\\":
            self._escape = ""
            return end + 1
        self._put("", sink)  # the string ended: a waiting high surrogate is lone
        self._in_string = False
        if self._role == "key":
            self._last_key = "".join(self._key)
        elif self._role == "answer":
            self.done = True
        return end + 1

    def _escaped(self, c: str, sink: list[str] | None) -> None:
        if self._escape == "":
            if c == "u":
                self._escape = "u"
                return
            self._escape = None
            self._put(_ESCAPES.get(c, c), sink)
            return
        assert self._escape is not None
        digits = self._escape[1:] + c
        if len(digits) < 4:
            self._escape = "u" + digits
            return
        self._escape = None
        try:
            code = int(digits, 16)
        except ValueError:
            code = -1
        if 0xD800 <= code <= 0xDBFF:
            self._put("", sink)
            self._high = code
        elif 0xDC00 <= code <= 0xDFFF and self._high is not None:
            pair = 0x10000 + ((self._high - 0xD800) << 10) + (code - 0xDC00)
            self._high = None
            self._put(chr(pair), sink)
        else:
            self._put(chr(code) if 0 <= code < 0xD800 or code > 0xDFFF else _REPLACEMENT, sink)

    def _put(self, s: str, sink: list[str] | None) -> None:
        if self._high is not None:
            self._high = None
            if sink is not None:
                sink.append(_REPLACEMENT)
        if sink is not None and s:
            sink.append(s)


class PlaceholderSafeBuffer:
    """Holds back the end of streamed text while it could still be the start of a
    placeholder (``<PERSON_3f9a1c2b>``), so emitted pieces never split one.

    A ``<`` that cannot start a placeholder ("a < b", "<br>") goes out as soon as that is
    certain; a candidate longer than ``max_len`` goes out too (real placeholders are
    shorter).
    """

    def __init__(self, max_len: int = 80) -> None:
        if max_len < 2:
            raise ValueError("max_len must be at least 2 (the shortest placeholder prefix)")
        self.max_len = max_len
        self._held = ""

    def feed(self, text: str) -> str:
        """What of ``self``'s held text plus ``text`` is safe to emit now."""
        buf = self._held + text
        cut = buf.rfind("<")  # a placeholder holds no "<" after its first character
        if cut >= 0 and len(buf) - cut <= self.max_len and _PLACEHOLDER_PREFIX.match(buf, cut):
            self._held = buf[cut:]
            return buf[:cut]
        self._held = ""
        return buf

    def flush(self) -> str:
        """At the end of the stream: everything still held."""
        held, self._held = self._held, ""
        return held


class ReidentifyingStream:
    """A :class:`PlaceholderSafeBuffer` that also replaces every complete placeholder by
    its value, looked up once per placeholder with ``reveal`` (for example
    ``Vault.reveal``). Placeholders ``reveal`` does not know stay as they are.

    ``placeholders`` and ``revealed`` count distinct placeholders looked up and revealed,
    so the caller can write one audit record at the end of the stream.
    """

    def __init__(
        self, reveal: Callable[[list[str]], Mapping[str, str]], *, max_len: int = 80
    ) -> None:
        self._reveal = reveal
        self._buffer = PlaceholderSafeBuffer(max_len)
        self._values: dict[str, str | None] = {}

    @property
    def placeholders(self) -> int:
        return len(self._values)

    @property
    def revealed(self) -> int:
        return sum(v is not None for v in self._values.values())

    def feed(self, text: str) -> str:
        return self._swap(self._buffer.feed(text))

    def flush(self) -> str:
        return self._swap(self._buffer.flush())

    def _swap(self, text: str) -> str:
        if "<" not in text:
            return text
        found = dict.fromkeys(m.group() for m in PLACEHOLDER.finditer(text))
        new = [p for p in found if p not in self._values]
        if new:
            values = self._reveal(new)
            for p in new:
                self._values[p] = values.get(p)
        return PLACEHOLDER.sub(lambda m: self._value(m.group()), text)

    def _value(self, placeholder: str) -> str:
        value = self._values.get(placeholder)
        return placeholder if value is None else value


def sse_event(event: str, data: Any) -> str:
    """One Server-Sent Event: ``event: <name>``, ``data: <json>``, a blank line.

    ``data`` is JSON-encoded on one line (pydantic models, dataclasses, dates included),
    so a browser's ``EventSource`` gets it back with ``JSON.parse``.
    """
    if not event or "\n" in event or "\r" in event:
        raise ValueError("an SSE event name must be non-empty and on one line")
    payload = pydantic_core.to_json(data, fallback=str).decode()
    return f"event: {event}\ndata: {payload}\n\n"
