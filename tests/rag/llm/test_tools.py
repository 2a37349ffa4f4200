"""User tools: schemas from signatures, argument validation, results, the tool set."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Annotated, Any, Literal

import pydantic
import pytest
from mistral_common.protocol.instruct.messages import UserMessage
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.tool_calls import Tool as MistralTool
from mistral_common.protocol.instruct.validator import MistralRequestValidator

from rag._errors import ToolError
from rag.llm._tools import SEARCH_DOCUMENTS, Tool, ToolArgumentError, ToolSet, tool


def assert_mistral_accepts(t: Tool) -> None:
    """mistral-common parses the definition and checks its schema (Draft 7) and name."""
    parsed = MistralTool.model_validate(t.definition())
    request = ChatCompletionRequest(messages=[UserMessage(content="hi")], tools=[parsed])
    MistralRequestValidator().validate_request(request)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(pydantic.BaseModel):
    street: str
    city: str = pydantic.Field(description="City name")


class Node(pydantic.BaseModel):
    name: str
    children: list[Node] = []


class Query(pydantic.BaseModel):
    """A lookup."""

    term: str
    limit: int = 5


@tool
def weather(
    city: str,
    days: Annotated[int, pydantic.Field(description="Forecast length", ge=1)] = 3,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    ratio: float = 0.5,
    detailed: bool = False,
    tags: list[str] | None = None,
    extra: dict[str, int] | None = None,
    scale: Unit | None = None,
    address: Address | None = None,
) -> dict[str, Any]:
    """Get the weather forecast for a city.

    Longer explanation that is not part of the description.

    Args:
        city: The city, for example
            "Paris" or "Lyon".
        days: Ignored here: the Annotated description wins.
        unit (str): Temperature unit.

    Returns:
        The forecast.
    """
    return {"city": city, "days": days, "unit": unit, "address": address}


def props(t: Tool) -> dict[str, Any]:
    return dict(t.parameters["properties"])


def test_schema_from_typed_signature() -> None:
    p = props(weather)
    assert weather.name == "weather"
    assert weather.description == "Get the weather forecast for a city."
    assert weather.parameters["type"] == "object"
    assert weather.parameters["required"] == ["city"]
    assert weather.parameters["additionalProperties"] is False
    assert p["city"] == {
        "type": "string",
        "description": 'The city, for example "Paris" or "Lyon".',
    }
    assert p["days"] == {
        "type": "integer",
        "minimum": 1,
        "default": 3,
        "description": "Forecast length",
    }
    assert p["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert p["unit"]["description"] == "Temperature unit."
    assert p["ratio"] == {"type": "number", "default": 0.5}
    assert p["detailed"] == {"type": "boolean", "default": False}
    assert {"type": "array", "items": {"type": "string"}} in p["tags"]["anyOf"]
    assert {"type": "object", "additionalProperties": {"type": "integer"}} in p["extra"]["anyOf"]
    assert p["scale"]["anyOf"][0]["enum"] == ["celsius", "fahrenheit"]
    # Nested models are inlined (no $ref left), with their field descriptions.
    nested = p["address"]["anyOf"][0]
    assert nested["properties"]["city"]["description"] == "City name"
    assert nested["required"] == ["street", "city"]
    assert "$ref" not in json.dumps(weather.parameters)
    assert "title" not in json.dumps(weather.parameters)
    assert_mistral_accepts(weather)


def test_recursive_model_keeps_defs() -> None:
    @tool
    def tree(root: Node) -> int:
        """Count nodes."""
        return 1 + len(root.children)

    assert "$defs" in tree.parameters
    assert_mistral_accepts(tree)
    assert tree.invoke({"name": "a", "children": [{"name": "b"}]}) == "2"


def test_property_called_title_is_kept() -> None:
    @tool
    def rename(title: str, meta: dict[str, str] | None = None) -> str:
        """Rename a document."""
        return title

    assert "title" in props(rename)
    assert rename.parameters["required"] == ["title"]


def test_numpy_docstring_descriptions() -> None:
    def lookup(term: str, limit: int = 5) -> str:
        """Look a term up.

        Parameters
        ----------
        term : str
            What to look up,
            verbatim.
        limit : int
            At most this many.

        Returns
        -------
        str
        """
        return term

    p = props(tool(lookup))
    assert p["term"]["description"] == "What to look up, verbatim."
    assert p["limit"]["description"] == "At most this many."


def test_single_model_parameter_uses_that_model() -> None:
    seen: list[Query] = []

    @tool(name="find-things", reidentify=True)
    def find(query: Query) -> str:
        """Find things."""
        seen.append(query)
        return "ok"

    assert find.name == "find-things" and find.reidentify
    assert find.parameters["required"] == ["term"]
    assert set(props(find)) == {"term", "limit"}
    assert find.invoke('{"term": "x"}') == "ok"
    assert seen == [Query(term="x", limit=5)]
    assert_mistral_accepts(find)


def test_field_default_and_shadowing_names() -> None:
    @tool(description="Explicit description.")
    def f(json: str, schema: int = pydantic.Field(2, description="Which schema")) -> str:
        return f"{json}:{schema}"

    assert f.description == "Explicit description."
    assert props(f)["schema"]["description"] == "Which schema"
    assert f.invoke({"json": "a"}) == "a:2"


def _no_doc(x: int) -> int:
    return x


def _star_args(*xs: int) -> int:
    """Doc."""
    return 0


def _star_kwargs(**kw: int) -> int:
    """Doc."""
    return 0


def _pos_only(x: int, /) -> int:
    """Doc."""
    return x


def _unannotated(x) -> int:  # type: ignore[no-untyped-def]
    """Doc."""
    return 0


def _private(_x: int) -> int:
    """Doc."""
    return 0


async def _coroutine(x: int) -> int:
    """Doc."""
    return x


@pytest.mark.parametrize(
    ("fn", "kwargs", "needle"),
    [
        (_no_doc, {}, "docstring"),
        (_star_args, {}, "*args"),
        (_star_kwargs, {}, "**kwargs"),
        (_pos_only, {}, "positional-only"),
        (_unannotated, {}, "annotation"),
        (_private, {}, "'_'"),
        (_coroutine, {}, "async"),
        (_pos_only, {"name": "has space"}, "1 to 64"),
        (_no_doc, {"name": "x" * 65, "description": "d"}, "1 to 64"),
        (_no_doc, {"name": "ünïcode", "description": "d"}, "1 to 64"),
    ],
)
def test_refusals(fn: Any, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ToolError) as info:
        tool(fn, **kwargs) if kwargs else tool(fn)
    assert needle in str(info.value)


def test_docstring_with_only_args_section_is_no_description() -> None:
    def f(x: int) -> int:
        """Args:
        x: a number.
        """
        return x

    with pytest.raises(ToolError, match="no description"):
        tool(f)


def test_invoke_good_arguments() -> None:
    out = json.loads(
        weather.invoke('{"city": "Paris", "days": 2, "address": {"street": "s", "city": "c"}}')
    )
    assert out == {
        "city": "Paris",
        "days": 2,
        "unit": "celsius",
        "address": {"street": "s", "city": "c"},
    }
    assert json.loads(weather.invoke({"city": "Lyon"}))["days"] == 3


@pytest.mark.parametrize(
    ("arguments", "problems"),
    [
        ('{"days": 2}', ["city: missing"]),
        ('{"city": "<PERSON_3f9a1c2b>", "days": "Jane Doe"}', ["days: int_parsing"]),
        ('{"city": 12345}', ["city: string_type"]),
        ('{"city": "x", "unit": "kelvin"}', ["unit: literal_error"]),
        (
            '{"city": "x", "address": {"street": 9}}',
            ["address.street: string_type", "address.city: missing"],
        ),
        ('{"city": "x", "colour": "red"}', ["<unnamed>: extra_forbidden"]),
        ('{"city": "x", "Jane Doe lives at 1 Main St": 1}', ["<unnamed>: extra_forbidden"]),
        ('{"city": "x", "extra": {"jane_doe": "x"}}', ["extra.<unnamed>: int_parsing"]),
        ('{"city": "x", "tags": ["a", 12345]}', ["tags.1: string_type"]),
        ("{'city': 'Jane Doe'}", None),
        ('["Jane Doe"]', ["expected a JSON object, got a JSON list"]),
    ],
)
def test_invoke_bad_arguments_never_echo_values(arguments: str, problems: list[str] | None) -> None:
    with pytest.raises(ToolArgumentError) as info:
        weather.invoke(arguments)
    message = str(info.value)
    assert isinstance(info.value, ToolError)
    for secret in ("Jane", "jane", "PERSON_3f9a1c2b", "12345", "kelvin", "red", "colour"):
        assert secret not in message
    if problems is not None:
        assert info.value.problems == problems
    else:
        assert "not valid JSON" in message


def test_invoke_empty_arguments_for_a_tool_without_parameters() -> None:
    @tool
    def now() -> str:
        """The time."""
        return "noon"

    assert now.parameters["properties"] == {}
    assert now.invoke("") == "noon" == now.invoke("{}")
    assert_mistral_accepts(now)


@dataclasses.dataclass
class Point:
    x: int
    when: dt.date


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ("plain ünï", "plain ünï"),
        (Query(term="é"), '{"term":"é","limit":5}'),
        (Point(1, dt.date(2024, 1, 2)), '{"x": 1, "when": "2024-01-02"}'),
        ({"a": [1, 2.5, None]}, '{"a": [1, 2.5, null]}'),
        ([Query(term="t")], '[{"term": "t", "limit": 5}]'),
        (None, "null"),
        (42, "42"),
        ({"d": dt.datetime(2024, 1, 2, 3, 4)}, '{"d": "2024-01-02T03:04:00"}'),
    ],
)
def test_result_serialisation(result: Any, text: str) -> None:
    @tool
    def f() -> Any:
        """Return something."""
        return result

    assert f.invoke("{}") == text


def test_function_errors_propagate() -> None:
    @tool
    def boom(x: int) -> int:
        """Fail."""
        raise RuntimeError("inner")

    with pytest.raises(RuntimeError, match="inner"):
        boom.invoke({"x": 1})


def test_tool_built_directly_validates_from_the_function() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    t = Tool("add", "Add two numbers.", schema, add)
    assert t.invoke('{"a": 1, "b": 2}') == "3"
    with pytest.raises(ToolArgumentError):
        t.invoke('{"a": 1}')
    with pytest.raises(ToolError, match="type 'object'"):
        Tool("add", "Add.", {"type": "array"}, add)
    with pytest.raises(ToolError, match="description"):
        Tool("add", " ", schema, add)


def test_toolset_rules() -> None:
    def other() -> str:
        """Another tool."""
        return ""

    tools = ToolSet([weather])
    added = tools.add(other)
    assert isinstance(added, Tool) and added.name == "other"
    assert [t.name for t in tools] == ["weather", "other"] and len(tools) == 2
    assert tools.get("other") is added and tools.get("nope") is None
    assert "weather" in tools and tools.names() == ("weather", "other")
    assert tools.definitions() == (weather.definition(), added.definition())
    with pytest.raises(ToolError, match="already registered"):
        tools.add(tool(other))
    with pytest.raises(ToolError, match="reserved"):
        tools.add(tool(other, name=SEARCH_DOCUMENTS))
    builtin = tools.add(tool(other, name=SEARCH_DOCUMENTS), builtin=True)
    assert tools.get(SEARCH_DOCUMENTS) is builtin
    for t in tools:
        assert_mistral_accepts(t)


def test_kwargs_function_is_checked_against_its_handwritten_schema() -> None:
    calls: list[dict[str, Any]] = []

    def search(**kwargs: Any) -> str:
        calls.append(kwargs)
        return "found"

    schema = {
        "type": "object",
        "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
        "required": ["query"],
        "additionalProperties": False,
    }
    t = Tool("search", "Search.", schema, search)
    assert t.model is None
    assert t.invoke('{"query": "q", "k": 2}') == "found" and calls == [{"query": "q", "k": 2}]
    with pytest.raises(ToolArgumentError) as info:
        t.invoke('{"k": "Jane Doe", "Jane Doe": 1, "colour": 2}')
    assert sorted(info.value.problems) == [
        "<unnamed>: extra_forbidden",
        "<unnamed>: extra_forbidden",
        "k: type",
        "query: missing",
    ]
    assert "Jane" not in str(info.value)
    assert_mistral_accepts(t)
