"""Tool schemas from Python signatures: a pydantic model per function (type hints,
defaults, ``Annotated`` descriptions) and parameter descriptions from its docstring."""

from __future__ import annotations

import inspect
import re
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Any, get_args, get_origin

import pydantic
from pydantic.fields import FieldInfo

from rag._errors import ToolError

#: JSON-schema keywords whose values are data, not schema (never rewritten or walked).
LITERAL_KEYWORDS = frozenset({"default", "const", "enum", "examples"})
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:?\s*$")
_OTHER_SECTION = re.compile(
    r"^(Returns?|Yields?|Raises?|Examples?|Notes?|See Also|Attributes|References|Warnings?)"
    r"\s*:?\s*$"
)
_GOOGLE_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^(\w+)\s*(?::.*)?$")


def model_for(
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


def packed_param(fn: Callable[..., Any], model: type[pydantic.BaseModel]) -> str | None:
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


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
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


def tool_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
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
            if k in LITERAL_KEYWORDS:
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
