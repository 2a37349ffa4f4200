"""User tools: Python functions the model may call (function calling).

A tool's JSON schema is derived from its function's type hints by pydantic, and the same
pydantic model validates the model's arguments before the function runs, so what the
model is told and what is checked cannot drift apart. Errors about arguments name fields
and error types only: the values may hold placeholders or personal data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import pydantic

from rag._errors import ToolError
from rag.llm._toolschema import (
    LITERAL_KEYWORDS,
    model_for,
    packed_param,
    parse_docstring,
    tool_schema,
)

#: Mistral's rule for function names (OpenAI's is the same).
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: The built-in retrieval tool's name; user tools may not take it.
SEARCH_DOCUMENTS = "search_documents"

# Errors name only the keys the schema declares: any other key the model wrote (an
# unexpected argument, a key of a dict argument) may itself be a value.
_UNNAMED = "<unnamed>"


class ToolArgumentError(ToolError):
    """The model called a tool with arguments that do not fit its parameters.

    The message is meant to go back to the model as the tool result, so it can correct
    the call: it lists field names and error types (``problems``), never values.
    """

    def __init__(self, tool: str, problems: list[str], expected: Iterable[str] = ()) -> None:
        self.tool = tool
        self.problems = list(problems)
        names = ", ".join(expected)
        super().__init__(
            f"tool {tool!r} was called with invalid arguments: {'; '.join(self.problems)}. "
            "Call it again with a JSON object matching its parameters schema"
            + (f" (parameters: {names})." if names else ".")
        )


@dataclass(frozen=True)
class Tool:
    """A function the model may call.

    ``parameters`` is the JSON schema (type object) the model sees; ``model`` validates
    the arguments before ``fn`` runs (built from ``fn``'s signature when not given). A
    function taking ``**kwargs`` gets arguments checked against ``parameters`` instead.
    ``reidentify``: whether ``fn`` may receive re-identified values; the answer stage only
    re-identifies arguments for principals allowed to see them.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    fn: Callable[..., Any]
    reidentify: bool = False
    model: type[pydantic.BaseModel] | None = field(default=None, repr=False, compare=False)
    # Set when ``fn`` takes one pydantic-model parameter: it gets the validated model.
    _packed: str | None = field(default=None, init=False, repr=False, compare=False)
    # Every property name in ``parameters``: the names errors may mention.
    _names: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.description.strip():
            raise ToolError(f"tool {self.name!r} has no description: pass one (the model reads it)")
        if self.parameters.get("type") != "object":
            raise ToolError(
                f"tool {self.name!r}: parameters must be a JSON schema of type 'object'"
            )
        if self.model is None and _takes_kwargs(self.fn):
            model, packed = None, None  # a hand-written schema is the only contract
        elif self.model is None:
            model, packed = model_for(self.fn, self.name)
        else:
            model, packed = self.model, packed_param(self.fn, self.model)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "_packed", packed)
        object.__setattr__(self, "_names", frozenset(_property_names(self.parameters)))

    def definition(self) -> dict[str, Any]:
        """The tool in the chat-completions format (Mistral and OpenAI agree)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }

    def invoke(self, arguments: str | Mapping[str, Any]) -> str:
        """Validate ``arguments`` (the model's JSON text, or a mapping), call ``fn``, and
        return its result as text. Raises :class:`ToolArgumentError` for bad arguments;
        whatever ``fn`` raises propagates unchanged."""
        data = self._parse(arguments)
        if self.model is None:
            problems = _schema_problems(self.parameters, data, self._names)
            if problems:
                raise ToolArgumentError(self.name, problems, self.parameters.get("properties", ()))
            return result_text(self.fn(**data))
        try:
            validated = self.model.model_validate(data)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            problems = [_problem(e["loc"], e["type"], self._names) for e in errors]
            raise ToolArgumentError(self.name, problems, self.model.model_fields) from None
        if self._packed is not None:
            return result_text(self.fn(validated))
        return result_text(self.fn(**dict(validated)))  # shallow: nested models stay models

    def _parse(self, arguments: str | Mapping[str, Any]) -> Mapping[str, Any]:
        if isinstance(arguments, Mapping):
            return arguments
        if not arguments.strip():
            return {}  # some models send "" for a call without arguments
        try:
            data = json.loads(arguments)
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON ({exc.msg} at position {exc.pos})"
            raise ToolArgumentError(self.name, [problem]) from None
        if not isinstance(data, dict):
            problem = f"expected a JSON object, got a JSON {type(data).__name__}"
            raise ToolArgumentError(self.name, [problem])
        return data


def result_text(result: Any) -> str:
    """A tool's return value as the text sent back to the model."""
    if isinstance(result, str):
        return result
    if isinstance(result, pydantic.BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=_jsonable, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _schema_problems(
    schema: Mapping[str, Any], data: Mapping[str, Any], names: frozenset[str]
) -> list[str]:
    """What is wrong with ``data`` for the JSON schema, as ``field: check`` (no values)."""
    import jsonschema  # a dependency of mistral-common; only tools with **kwargs need it

    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = []
    for error in validator.iter_errors(data):
        where, inst, kind = list(error.absolute_path), error.instance, str(error.validator)
        if kind == "required" and isinstance(inst, dict):
            missing = [r for r in error.validator_value if r not in inst]
            problems += [_problem([*where, r], "missing", names) for r in missing]
        elif kind == "additionalProperties" and isinstance(inst, dict):
            known = set(error.schema.get("properties", ()))
            extra = [k for k in inst if k not in known]
            problems += [_problem([*where, k], "extra_forbidden", names) for k in extra]
        else:
            problems.append(_problem(where, kind, names))
    return problems


def _property_names(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _property_names(item)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if key == "properties" and isinstance(value, Mapping):
                yield from (str(k) for k in value)
            if key not in LITERAL_KEYWORDS:
                yield from _property_names(value)


def _takes_kwargs(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _problem(loc: Iterable[Any], kind: str, names: frozenset[str]) -> str:
    parts = [str(p) if isinstance(p, int) or p in names else _UNNAMED for p in loc]
    return f"{'.'.join(parts) or '(arguments)'}: {kind}"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, reidentify: bool = False
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    reidentify: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a typed function: ``@tool``, ``@tool(reidentify=True)``
    or ``tool(fn)``.

    The schema comes from the type hints (``Annotated[..., Field(description=...)]``
    and defaults included) or, when the function takes a single pydantic model, from that
    model. The description is the docstring's first paragraph; parameter descriptions
    come from its ``Args:`` (Google) or ``Parameters`` (NumPy) section.
    """

    def make(f: Callable[..., Any]) -> Tool:
        tool_name = name if name is not None else getattr(f, "__name__", "")
        _check_name(tool_name)
        summary, arg_docs = parse_docstring(inspect.getdoc(f) or "")
        text = description if description is not None else summary
        if not text.strip():
            raise ToolError(
                f"tool {tool_name!r} has no description: give the function a docstring "
                "(its first paragraph tells the model what the tool does) or pass "
                "description=..."
            )
        model, _ = model_for(f, tool_name, arg_docs)
        return Tool(tool_name, text.strip(), tool_schema(model), f, reidentify, model)

    return make if fn is None else make(fn)


class ToolSet:
    """Tools offered to the model: ordered, one per name.

    ``search_documents`` is reserved for the built-in retrieval tool
    (``add(..., builtin=True)``).
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, item: Tool | Callable[..., Any], *, builtin: bool = False) -> Tool:
        """Add a tool (a plain function goes through :func:`tool` first) and return it."""
        t = item if isinstance(item, Tool) else tool(item)
        if t.name == SEARCH_DOCUMENTS and not builtin:
            raise ToolError(
                f"the tool name {SEARCH_DOCUMENTS!r} is reserved for the built-in retrieval "
                "tool: give your tool another name (tool(fn, name=...))"
            )
        if t.name in self._tools:
            raise ToolError(f"a tool named {t.name!r} is already registered: rename one of them")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def definitions(self) -> tuple[dict[str, Any], ...]:
        """What goes into ``ChatRequest.tools``."""
        return tuple(t.definition() for t in self._tools.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolSet({list(self._tools)!r})"


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise ToolError(
            f"tool name {name!r} is not allowed: use 1 to 64 letters, digits, '_' or '-' "
            "(pass name=... to tool())"
        )
