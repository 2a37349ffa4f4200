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
import typing
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin, overload

import pydantic
from pydantic.fields import FieldInfo

from rag._errors import ToolError

#: Mistral's rule for function names (OpenAI's is the same).
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: The built-in retrieval tool's name; user tools may not take it.
SEARCH_DOCUMENTS = "search_documents"

# Errors name only the keys the schema declares: any other key the model wrote (an
# unexpected argument, a key of a dict argument) may itself be a value.
_UNNAMED = "<unnamed>"
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:?\s*$")
_OTHER_SECTION = re.compile(
    r"^(Returns?|Yields?|Raises?|Examples?|Notes?|See Also|Attributes|References|Warnings?)"
    r"\s*:?\s*$"
)
_GOOGLE_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^(\w+)\s*(?::.*)?$")
_LITERAL_KEYWORDS = frozenset({"default", "const", "enum", "examples"})


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
            model, packed = _model_for(self.fn, self.name)
        else:
            model, packed = self.model, _packed_param(self.fn, self.model)
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
            if key not in _LITERAL_KEYWORDS:
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
        summary, arg_docs = _parse_docstring(inspect.getdoc(f) or "")
        text = description if description is not None else summary
        if not text.strip():
            raise ToolError(
                f"tool {tool_name!r} has no description: give the function a docstring "
                "(its first paragraph tells the model what the tool does) or pass "
                "description=..."
            )
        model, _ = _model_for(f, tool_name, arg_docs)
        return Tool(tool_name, text.strip(), _schema(model), f, reidentify, model)

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


def _model_for(
    fn: Callable[..., Any], tool_name: str, arg_docs: Mapping[str, str] | None = None
) -> tuple[type[pydantic.BaseModel], str | None]:
    """The pydantic model of ``fn``'s arguments, and the parameter that takes the whole
    model when ``fn`` has a single pydantic-model parameter."""
    if inspect.iscoroutinefunction(fn):
        raise ToolError(f"tool {tool_name!r}: async functions are not supported; wrap it")
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ToolError(
            f"tool {tool_name!r}: cannot read the function's signature or type hints "
            f"({type(exc).__name__}); use a plain function with annotated parameters"
        ) from None
    params = list(sig.parameters.values())
    for p in params:
        _check_param(p, hints, tool_name)
    if len(params) == 1:
        ann = _strip_annotated(hints[params[0].name])
        if isinstance(ann, type) and issubclass(ann, pydantic.BaseModel):
            return ann, params[0].name
    fields: dict[str, Any] = {}
    for p in params:
        ann = hints[p.name]
        default = ... if p.default is inspect.Parameter.empty else p.default
        doc = (arg_docs or {}).get(p.name)
        if isinstance(default, FieldInfo):
            fields[p.name] = (ann, default)
        elif doc and not _has_description(ann):
            fields[p.name] = (ann, pydantic.Field(default, description=doc))
        else:
            fields[p.name] = (ann, default)
    with warnings.catch_warnings():
        # A parameter named ``json`` or ``schema`` shadows a BaseModel method; harmless,
        # since values are read from the instance's fields, not as attributes.
        warnings.filterwarnings("ignore", message=".*shadows an attribute", category=UserWarning)
        model = pydantic.create_model(
            f"{tool_name}_arguments",
            __config__=pydantic.ConfigDict(extra="forbid"),
            **fields,
        )
    return model, None


def _packed_param(fn: Callable[..., Any], model: type[pydantic.BaseModel]) -> str | None:
    try:
        params = list(inspect.signature(fn).parameters.values())
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError):
        return None
    if len(params) == 1 and _strip_annotated(hints.get(params[0].name)) is model:
        return params[0].name
    return None


def _check_param(p: inspect.Parameter, hints: Mapping[str, Any], tool_name: str) -> None:
    where = f"tool {tool_name!r}, parameter {p.name!r}"
    if p.kind is inspect.Parameter.VAR_POSITIONAL:
        raise ToolError(f"{where}: *args is not supported; list the parameters explicitly")
    if p.kind is inspect.Parameter.VAR_KEYWORD:
        raise ToolError(f"{where}: **kwargs is not supported; list the parameters explicitly")
    if p.kind is inspect.Parameter.POSITIONAL_ONLY:
        raise ToolError(f"{where}: positional-only parameters are not supported; remove the '/'")
    if p.name not in hints:
        raise ToolError(f"{where}: has no type annotation; annotate it (e.g. 'city: str')")
    if p.name.startswith("_"):
        raise ToolError(f"{where}: names starting with '_' cannot be arguments; rename it")


def _strip_annotated(ann: Any) -> Any:
    return get_args(ann)[0] if get_origin(ann) is typing.Annotated else ann


def _has_description(ann: Any) -> bool:
    if get_origin(ann) is not typing.Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in get_args(ann)[1:])


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and parameter descriptions from an ``Args:`` (Google) or
    ``Parameters`` + dashes (NumPy) section."""
    lines = doc.splitlines()
    paragraph: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()) or _OTHER_SECTION.match(line.strip()):
            break
        paragraph.append(line.strip())
    args: dict[str, str] = {}
    i = 0
    while i < len(lines):
        head = lines[i].strip()
        numpy = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if _SECTION.match(head) and (head.endswith(":") or numpy):
            i = _parse_args(lines, i + (2 if numpy else 1), numpy, args)
        else:
            i += 1
    return " ".join(paragraph), args


def _parse_args(lines: list[str], i: int, numpy: bool, out: dict[str, str]) -> int:
    base: int | None = None
    current: str | None = None
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1  # blank lines may separate entries; a dedent ends the section
            continue
        indent = len(line) - len(line.lstrip())
        if base is None:
            base = indent
        if indent < base or (numpy and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}):
            return i
        if indent == base:
            m = (_NUMPY_ARG if numpy else _GOOGLE_ARG).match(line.strip())
            if m is None:
                return i
            current = m.group(1)
            first = "" if numpy else m.group(2).strip()
            out[current] = first
        elif current is not None:
            out[current] = (out[current] + " " + line.strip()).strip()
        i += 1
    return i


def _schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with non-recursive ``$ref``s inlined and titles dropped
    (they cost prompt tokens and say nothing the property names do not)."""
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})
    kept: dict[str, Any] = {}

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(n, seen) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            key = ref.removeprefix("#/$defs/")
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if key in seen:  # a recursive model: keep the reference
                kept.setdefault(key, None)
                return {"$ref": ref, **resolve(rest, seen)}
            return {**resolve(defs[key], (*seen, key)), **resolve(rest, seen)}
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "title" and isinstance(v, str):
                continue
            if k in _LITERAL_KEYWORDS:
                out[k] = v  # data, not schema: a default may well hold a "title" key
            elif k == "properties" and isinstance(v, dict):
                out[k] = {name: resolve(p, seen) for name, p in v.items()}
            else:
                out[k] = resolve(v, seen)
        return out

    result: dict[str, Any] = resolve(schema, ())
    resolved: dict[str, Any] = {}
    while pending := [k for k in kept if k not in resolved]:
        for key in pending:
            resolved[key] = resolve(defs[key], (key,))
    if resolved:
        result["$defs"] = resolved
    return result
