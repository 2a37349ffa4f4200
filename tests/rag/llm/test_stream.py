"""Streaming helpers: answer text out of streamed JSON, placeholder-safe re-identification."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.llm._stream import (
    AnswerTextExtractor,
    PlaceholderSafeBuffer,
    ReidentifyingStream,
    sse_event,
)
from rag.privacy import PLACEHOLDER

# Text with what makes streaming hard: quotes, backslashes, newlines, non-BMP characters
# (a surrogate pair with ensure_ascii), and JSON-ish characters.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('"\\\n\t/{}[]:,`<> aé😀\u2028'),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=40,
)
PLACEHOLDERS = st.from_regex(r"<[A-Z][A-Z_]{0,8}_[0-9a-f]{4,12}>", fullmatch=True)


def split(text: str, cuts: list[int]) -> list[str]:
    """``text`` cut at the given positions (any order, duplicates allowed)."""
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def run(feed: Callable[[str], str], pieces: list[str]) -> list[str]:
    return [feed(p) for p in pieces]


@st.composite
def json_answers(draw: st.DrawFn) -> tuple[str, str]:
    """(streamed content, the answer it holds)."""
    answer = draw(TEXT)
    citations = draw(
        st.lists(
            st.fixed_dictionaries(
                {"label": st.integers(1, 20), "quote": TEXT},
                optional={"answer": TEXT, "nested": st.just({"answer": "NOPE"})},
            ),
            max_size=3,
        )
    )
    fields = [
        ("citations", citations),
        ("answer", answer),
        ("insufficient_context", draw(st.booleans())),
        ("note", draw(TEXT)),
    ]
    order = draw(st.permutations(fields))
    body = json.dumps(
        dict(order),
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 0, 2])),
    )
    lead = draw(st.sampled_from(["", " ", "\n  ", "```json\n", "  ```\n", "```JSON \n\n "]))
    tail = "\n```" if "```" in lead else draw(st.sampled_from(["", "\n", " trailing"]))
    return lead + body + tail, answer


@settings(max_examples=300, deadline=None)
@given(json_answers(), st.lists(st.integers(0, 10_000), max_size=30))
def test_extractor_output_is_the_answer_for_any_split(
    case: tuple[str, str], cuts: list[int]
) -> None:
    content, answer = case
    extractor = AnswerTextExtractor()
    out = run(extractor.feed, split(content, cuts))
    assert "".join(out) + extractor.flush() == answer
    assert extractor.done and extractor.mode == "json"


@settings(max_examples=200, deadline=None)
@given(TEXT, st.lists(st.integers(0, 10_000), max_size=10))
def test_plain_text_passes_through(text: str, cuts: list[int]) -> None:
    content = "Plain " + text
    extractor = AnswerTextExtractor()
    assert "".join(run(extractor.feed, split(content, cuts))) + extractor.flush() == content
    assert extractor.mode == "text"
    raw = AnswerTextExtractor(json=False)
    json_text = '{"answer": "x"}' + text
    assert "".join(run(raw.feed, split(json_text, cuts))) + raw.flush() == json_text


@pytest.mark.parametrize(
    ("content", "expected", "mode"),
    [
        ("`code` first", "`code` first", "text"),
        ("``", "``", "text"),  # undecided until the end: flush gives it back
        ("   ", "   ", "text"),
        ("```python\nprint(1)\n```", "```python\nprint(1)\n```", "text"),
        ("```" + "x" * 60, "```" + "x" * 60, "text"),
        ('{"answer": null, "x": "y"}', "", "json"),
        ('{"answer": 3}', "", "json"),
        ('{"\\u0061nswer": "escaped key"}', "escaped key", "json"),
        ('{"answers": "no", "answer": "yes"}', "yes", "json"),
        ('{"x": {"answer": "no"}, "answer": "yes"}', "yes", "json"),
        ('{"answer": "first", "answer": "second"}', "first", "json"),
        ('{"answer": "a\\ud83dX"}', "a\ufffdX", "json"),  # a lone high surrogate
        ('{"answer": "\\udc00"}', "\ufffd", "json"),  # a lone low surrogate
        ('{"answer": "\\ud83d\\ude00 \\u00e9\\/\\b\\f\\r"}', "😀 é/\b\f\r", "json"),
    ],
)
def test_extractor_cases(content: str, expected: str, mode: str) -> None:
    for size in (1, 2, 3, len(content) or 1):
        extractor = AnswerTextExtractor()
        pieces = [content[i : i + size] for i in range(0, len(content), size)]
        assert "".join(run(extractor.feed, pieces)) + extractor.flush() == expected
        assert extractor.mode == mode


def test_extractor_emits_incrementally_and_stops_after_the_answer() -> None:
    extractor = AnswerTextExtractor()
    assert extractor.feed('{"citations": [{"quote": "q"}], "answer": "Hel') == "Hel"
    assert extractor.feed("lo \\") == "lo "
    assert extractor.feed("u00") == ""
    assert extractor.feed('e9!", "insufficient_context": false, "x": "after"}') == "é!"
    assert extractor.done
    assert extractor.feed(' "answer": "more"') == ""


def test_surrogate_pair_split_across_pieces() -> None:
    extractor = AnswerTextExtractor()
    assert extractor.feed('{"answer": "\\ud83d') == ""
    assert extractor.feed("\\ude") == ""
    assert extractor.feed('00"}') == "😀"


# --- placeholders -------------------------------------------------------------------

FRAGMENTS = st.one_of(
    PLACEHOLDERS,
    st.sampled_from(["<", "a < b", "<br>", "<A", "<A_", "<PERSON_3f9a1c2b", "_1f>", ">", "x"]),
    st.text(alphabet="<>_Aa1f ", max_size=6),
    TEXT,
)


def inside_placeholder(text: str, cut: int) -> bool:
    return any(m.start() < cut < m.end() for m in PLACEHOLDER.finditer(text))


def boundaries(pieces: list[str]) -> list[int]:
    ends, total = [], 0
    for p in pieces:
        total += len(p)
        ends.append(total)
    return ends


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12).map("".join), st.lists(st.integers(0, 10_000)))
def test_buffer_never_splits_a_placeholder(text: str, cuts: list[int]) -> None:
    buffer = PlaceholderSafeBuffer()
    out = [*run(buffer.feed, split(text, cuts)), buffer.flush()]
    assert "".join(out) == text
    assert not any(inside_placeholder(text, b) for b in boundaries(out))


@settings(max_examples=200, deadline=None)
@given(PLACEHOLDERS, st.data())
def test_every_placeholder_prefix_is_held(placeholder: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(placeholder) - 1))
    buffer = PlaceholderSafeBuffer()
    assert buffer.feed("x " + placeholder[:cut]) == "x "
    assert buffer.feed(placeholder[cut:] + " y") == placeholder + " y"


def test_buffer_releases_what_cannot_be_a_placeholder() -> None:
    buffer = PlaceholderSafeBuffer()
    assert buffer.feed("a <") == "a "
    assert buffer.feed(" b") == "< b"
    assert buffer.feed("<br>") == "<br>"
    assert buffer.feed("<PERSON_3F") == "<PERSON_3F"  # upper-case hex: not a placeholder
    assert buffer.feed("<A__") == ""  # could still be <A___1234>
    assert buffer.flush() == "<A__"
    short = PlaceholderSafeBuffer(max_len=10)
    assert short.feed("<PERSON_3f9a") == "<PERSON_3f9a"  # longer than max_len
    with pytest.raises(ValueError, match="max_len"):
        PlaceholderSafeBuffer(max_len=1)


class Vault:
    """A fake ``reveal`` that records its calls."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.calls: list[list[str]] = []

    def reveal(self, placeholders: list[str]) -> Mapping[str, str]:
        self.calls.append(list(placeholders))
        return {p: self.values[p] for p in placeholders if p in self.values}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(FRAGMENTS, st.sampled_from(["<PERSON_3f9a1c2b>", "<ORG_abcd>"]))).map(
        "".join
    ),
    st.dictionaries(PLACEHOLDERS, TEXT, max_size=4),
    st.lists(st.integers(0, 10_000), max_size=30),
)
def test_reidentifying_stream_equals_whole_text_reidentification(
    text: str, extra: dict[str, str], cuts: list[int]
) -> None:
    values = {"<PERSON_3f9a1c2b>": "Jane <Doe>", **extra}
    found = {m.group() for m in PLACEHOLDER.finditer(text)}
    vault = Vault(values)
    stream = ReidentifyingStream(vault.reveal)
    out = [*run(stream.feed, split(text, cuts)), stream.flush()]
    assert "".join(out) == PLACEHOLDER.sub(lambda m: values.get(m.group(), m.group()), text)
    looked_up = [p for call in vault.calls for p in call]
    assert sorted(looked_up) == sorted(found)  # each placeholder looked up exactly once
    assert stream.placeholders == len(found)
    assert stream.revealed == len(found & set(values))


@settings(max_examples=200, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12).map("".join), st.lists(st.integers(0, 10_000)))
def test_unknown_placeholders_stay_whole(text: str, cuts: list[int]) -> None:
    stream = ReidentifyingStream(Vault({}).reveal)
    out = [*run(stream.feed, split(text, cuts)), stream.flush()]
    assert "".join(out) == text
    assert not any(inside_placeholder(text, b) for b in boundaries(out))
    assert stream.revealed == 0


def test_extractor_into_reidentifying_stream() -> None:
    content = json.dumps({"answer": "Ask <PERSON_3f9a1c2b> or <PERSON_00ff>.", "citations": []})
    vault = Vault({"<PERSON_3f9a1c2b>": "Jane"})
    extractor, stream = AnswerTextExtractor(), ReidentifyingStream(vault.reveal)
    out = [stream.feed(extractor.feed(c)) for c in content] + [stream.flush()]
    assert "".join(out) == "Ask Jane or <PERSON_00ff>."
    assert (stream.placeholders, stream.revealed) == (2, 1)


def test_sse_event() -> None:
    event = sse_event("delta", {"text": "a\nb\r\u2028é", "n": 1})
    assert event.endswith("\n\n") and event.count("\n") == 3
    name, data = event.rstrip("\n").split("\n")
    assert name == "event: delta"
    assert json.loads(data.removeprefix("data: ")) == {"text": "a\nb\r\u2028é", "n": 1}
    assert sse_event("done", "x") == 'event: done\ndata: "x"\n\n'
    for bad in ("", "a\nb", "a\rb"):
        with pytest.raises(ValueError, match="event name"):
            sse_event(bad, 1)


def test_no_placeholder_regex_drift() -> None:
    # The buffer's prefix pattern is written by hand from rag.privacy.PLACEHOLDER.
    assert PLACEHOLDER.pattern == r"<([A-Z][A-Z_]*?)_([0-9a-f]{4,64})>"
    assert re.fullmatch(PLACEHOLDER, "<A_B_0123>")
