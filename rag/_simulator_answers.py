"""What the API simulator answers: request checks, grounded default answers, wire bodies.

Pure functions, no I/O: :mod:`rag._simulator` serves them over HTTP. The default answer
is extractive and deterministic, so end-to-end tests can assert the exact citation: it
picks the passage sentence sharing the most content words with the question.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rag._sparse import PLACEHOLDER

Dialect = Literal["mistral", "azure"]

ROLES = frozenset({"system", "user", "assistant", "tool"})
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
# Mistral says "any", OpenAI-dialect servers (Azure AI Model Inference) "required".
TOOL_CHOICES = frozenset({"auto", "none", "any", "required"})
INSUFFICIENT = "The documents do not contain the answer."

_HEADER = re.compile(r"^ ?\[(\d+)\] ")
_QUESTION = re.compile(r"^ ?Question: ")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[^\W\d_]{3,}")
_REPAIR = re.compile(r"invalid|repair", re.IGNORECASE)
_STOPWORD_TEXT = """
    the and for are but not you all any can had has have her his him its our out was
    were what which who whom whose when where why how does did doing done this that
    these those with from into onto about than then there their they them she will would
    should could been being also only other some such more most very just over under
    upon per each both between after before during while because said say says tell give
    list please here your yours mine ours theirs itself yes nor too own same few
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Problem:
    """Why a request is refused: HTTP status, a message naming the field, and the field."""

    status: int
    message: str
    param: str | None = None


@dataclass(frozen=True)
class Answer:
    """One reply before it is put on the wire (whole or as stream chunks)."""

    content: str
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    finish_reason: str = "stop"


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message; Mistral also accepts content as a list of typed chunks."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(c.get("text") or "") for c in content if isinstance(c, Mapping) and "text" in c
        )
    return ""


def count_tokens(text: str) -> int:
    """Whitespace-separated words × 4/3, rounded up: a stable stand-in for a tokenizer
    (about what Mistral's tokenizers give for English prose), not an exact count."""
    return math.ceil(len(text.split()) * 4 / 3)


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """:func:`count_tokens` of the request's text: every message's text and tool calls."""
    parts = []
    for m in messages:
        parts.append(message_text(m))
        for call in m.get("tool_calls") or ():
            function = (call.get("function") or {}) if isinstance(call, Mapping) else {}
            parts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return count_tokens(" ".join(parts))


def check_request(body: Any, *, supports_json_schema: bool) -> Problem | None:
    """The request checks the real APIs make before generating (422 like Mistral's)."""
    if not isinstance(body, dict):
        return Problem(422, "the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return Problem(422, "messages must be a non-empty list", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return Problem(
                422, f"messages[{i}].role must be one of {sorted(ROLES)}", f"messages[{i}]"
            )
    if "model" in body and not isinstance(body["model"], str | None):
        return Problem(422, "model must be a string", "model")
    if "stream" in body and not isinstance(body["stream"], bool | None):
        return Problem(422, "stream must be true or false", "stream")
    problem = _check_response_format(body.get("response_format"), supports_json_schema)
    if problem is not None:
        return problem
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, dict) and choice not in TOOL_CHOICES:
        return Problem(
            422, f"tool_choice must be one of {sorted(TOOL_CHOICES)} or an object", "tool_choice"
        )
    if "tools" in body and not isinstance(body["tools"], list | None):
        return Problem(422, "tools must be a list", "tools")
    return None


def _check_response_format(fmt: Any, supports_json_schema: bool) -> Problem | None:
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in RESPONSE_FORMATS:
        return Problem(
            422,
            f"response_format.type must be one of {sorted(RESPONSE_FORMATS)}",
            "response_format",
        )
    if fmt["type"] != "json_schema":
        return None
    if not supports_json_schema:
        # The message names the field so clients can fall back to {"type": "json_object"}.
        return Problem(
            422,
            'response_format of type "json_schema" is not supported by this model; '
            'use {"type": "json_object"}',
            "response_format",
        )
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        return Problem(422, "response_format.json_schema needs a schema object", "response_format")
    return None


def json_mode(body: Mapping[str, Any]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, Mapping) and fmt.get("type") in {"json_object", "json_schema"}


def passages(messages: Sequence[Mapping[str, Any]]) -> dict[int, tuple[str, ...]]:
    """Label → sentences, from the packed layout in user and tool messages.

    A header line ``[n] ...`` starts a passage; its body runs to the next header or the
    question line. The first passage with a label wins (repeats carry the same text).
    """
    found: dict[int, list[str]] = {}
    for m in messages:
        if m.get("role") not in {"user", "tool"}:
            continue
        current: list[str] | None = None
        for line in message_text(m).split("\n"):
            header = _HEADER.match(line)
            if header:
                label = int(header.group(1))
                current = None if label in found else found.setdefault(label, [])
            elif _QUESTION.match(line):
                current = None
            elif current is not None:
                # Segments start with one space (rag._pack); the chunk text follows it.
                body = line[1:] if line.startswith(" ") else line
                current.extend(s.strip() for s in _SENTENCE_END.split(body) if s.strip())
    return {label: tuple(found[label]) for label in sorted(found)}


def _is_repair(message: Mapping[str, Any]) -> bool:
    return message.get("role") == "user" and bool(_REPAIR.search(message_text(message)))


def question(messages: Sequence[Mapping[str, Any]]) -> str:
    """The last ``Question:`` line of the first user message with one; else the last user
    message that is not a repair request."""
    users = [m for m in messages if m.get("role") == "user"]
    for m in users:
        lines = [ln for ln in message_text(m).split("\n") if _QUESTION.match(ln)]
        if lines:
            return _QUESTION.sub("", lines[-1], count=1).strip()
    plain = [m for m in users if not _is_repair(m)] or users
    return message_text(plain[-1]).strip() if plain else ""


def _terms(text: str) -> set[str]:
    """Content words; a placeholder counts as one word, matched only by itself."""
    terms = {m.group().lower() for m in PLACEHOLDER.finditer(text)}
    words = _WORD.findall(PLACEHOLDER.sub(" ", text).lower())
    return terms | {w for w in words if w not in _STOPWORDS}


def best_sentence(messages: Sequence[Mapping[str, Any]]) -> tuple[int, str] | None:
    """(label, sentence) with the most question words; ties: lower label, earlier sentence."""
    wanted = _terms(question(messages))
    best: tuple[int, int, str] | None = None
    for label, sentences in passages(messages).items():
        for sentence in sentences:
            score = len(wanted & _terms(sentence))
            # Strictly greater: labels ascend and sentences keep their order, so the
            # first of equals stays.
            if score > 0 and (best is None or score > best[0]):
                best = (score, label, sentence)
    return None if best is None else (best[1], best[2])


def default_answer(body: Mapping[str, Any]) -> str:
    """The grounded answer: JSON when a JSON response_format was asked for, else text."""
    found = best_sentence(body.get("messages") or ())
    if not json_mode(body):
        return INSUFFICIENT if found is None else f"{found[1]} [{found[0]}]"
    if found is None:
        data: dict[str, Any] = {
            "answer": INSUFFICIENT,
            "citations": [],
            "insufficient_context": True,
        }
    else:
        label, sentence = found
        data = {
            "answer": f"{sentence} [{label}]",
            "citations": [{"label": label, "quote": sentence}],
            "insufficient_context": False,
        }
    return json.dumps(data, ensure_ascii=False)


def cut(content: str) -> str:
    """The first half of ``content``; half a JSON object never parses (no closing brace)."""
    half = content[: len(content) // 2]
    try:
        json.loads(half)
    except ValueError:
        return half
    return half + "{"  # e.g. "" or a bare number: make sure it is not JSON


@dataclass(frozen=True)
class Shape:
    """What every body of one completion shares."""

    id: str
    model: str
    created: int
    prompt_tokens: int


def completion(answer: Answer, shape: Shape) -> dict[str, Any]:
    """A whole ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = [dict(c) for c in answer.tool_calls]
    return {
        "id": shape.id,
        "object": "chat.completion",
        "created": shape.created,
        "model": shape.model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
        "usage": usage(shape.prompt_tokens, answer),
    }


def usage(prompt: int, answer: Answer) -> dict[str, int]:
    completion_text = answer.content + " ".join(
        str(c["function"]["arguments"]) for c in answer.tool_calls
    )
    completion_tokens = count_tokens(completion_text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def chunks(answer: Answer, shape: Shape, chunk_chars: int) -> list[dict[str, Any]]:
    """``chat.completion.chunk`` bodies: role first, content in ``chunk_chars`` pieces (so
    placeholders get split), tool calls in one delta, finish reason and usage last."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": shape.id,
            "object": "chat.completion.chunk",
            "created": shape.created,
            "model": shape.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    text = answer.content
    out += [chunk({"content": text[i : i + chunk_chars]}) for i in range(0, len(text), chunk_chars)]
    if answer.tool_calls:
        calls = [{**c, "index": i} for i, c in enumerate(answer.tool_calls)]
        out.append(chunk({"tool_calls": calls}))
    last = chunk({"content": ""}, answer.finish_reason)
    last["usage"] = usage(shape.prompt_tokens, answer)
    out.append(last)
    return out


#: Fault kinds and the options each takes (see :meth:`MistralSimulator.fault`).
FAULTS: Mapping[str, frozenset[str]] = {
    "rate_limit": frozenset({"retry_after"}),
    "server_error": frozenset({"status"}),
    "malformed": frozenset(),
    "malformed_body": frozenset({"body", "content_type"}),
    "content_filter": frozenset(),
    "content_filter_prompt": frozenset(),
    "length": frozenset(),
    "slow": frozenset({"delay_s"}),
    "disconnect": frozenset(),
    "unauthorized": frozenset(),
}
# Faults that answer instead of the model; the others shape the model's answer.
EARLY_FAULTS = frozenset(
    {"rate_limit", "server_error", "malformed_body", "content_filter_prompt", "unauthorized"}
)


@dataclass(frozen=True)
class Response:
    """A whole HTTP response (errors and faults)."""

    status: int
    payload: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    payload = json.dumps(data, ensure_ascii=False).encode()
    return Response(status, payload, headers=dict(headers or {}))


def error(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error as Mistral (``{"object": "error", ...}``) or Azure/OpenAI (``{"error": ...}``)
    write it; the code is the status, as text."""
    code = str(status)
    if dialect == "azure":
        body: dict[str, Any] = {
            "error": {"code": code, "message": message, "type": type_, "param": param}
        }
    else:
        body = {"object": "error", "message": message, "type": type_, "param": param, "code": code}
        if status == 422 and param is not None:
            # Mistral's 422s carry FastAPI-style details, which the mistralai SDK parses.
            body["detail"] = [{"loc": ["body", param], "msg": message, "type": "value_error"}]
    return json_response(status, body, headers)


UNAUTHORIZED = "unauthorized: send 'Authorization: Bearer <key>' or 'api-key: <key>'"


def fault_response(kind: str, options: Mapping[str, Any], dialect: Dialect) -> Response:
    """The response of a fault that answers instead of the model."""
    if kind == "rate_limit":
        wait = options.get("retry_after", 1)
        headers = {}
        if wait is not None:
            headers = {
                "Retry-After": str(math.ceil(wait)),
                "retry-after-ms": str(round(wait * 1000)),
            }
        message = "Requests rate limit exceeded (simulated)"
        return error(dialect, 429, message, type_="rate_limited", headers=headers)
    if kind == "server_error":
        status = int(options.get("status", 500))
        return error(dialect, status, f"simulated server error {status}", type_="server_error")
    if kind == "unauthorized":
        return error(dialect, 401, UNAUTHORIZED, type_="authentication_error")
    if kind == "content_filter_prompt":
        # Azure's prompt filter, whatever the route: 400 with code "content_filter".
        filtered = {
            "code": "content_filter",
            "message": "The prompt was filtered by the content management policy (simulated).",
            "param": "prompt",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        }
        return json_response(400, {"error": filtered})
    if kind == "malformed_body":
        body = options.get("body", "<html>oops")
        payload = body.encode() if isinstance(body, str) else bytes(body)
        return Response(200, payload, options.get("content_type", "application/json"))
    raise ValueError(f"fault {kind!r} does not replace the response")
