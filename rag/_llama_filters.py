"""LlamaIndex ``MetadataFilters`` in our filter language (AND only; anything else is an error)."""

from __future__ import annotations

from datetime import datetime

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from rag._errors import FilterError
from rag.stores import Filter, Match, Range
from rag.stores._base import META_PREFIX, Bound, Condition

_RANGE_OPS = {
    FilterOperator.GT: "gt",
    FilterOperator.GTE: "gte",
    FilterOperator.LT: "lt",
    FilterOperator.LTE: "lte",
}


def translate_filters(filters: MetadataFilters) -> Filter:
    """Our store :class:`Filter` for LlamaIndex ``MetadataFilters``.

    AND (nested ANDs too) and NOT (none of the filters holds) translate; OR and the text
    operators have no equivalent in our filter model and raise :class:`rag.FilterError`.
    Keys are payload keys or ``meta.<field>``, exactly as in :func:`chunk_node` metadata.
    """
    condition = filters.condition or FilterCondition.AND
    if condition not in (FilterCondition.AND, FilterCondition.NOT):
        raise FilterError(
            f"{condition.value.upper()} filters are not supported: combine filters with AND, "
            "use the 'in' operator for alternatives on one key, or run one query per alternative"
        )
    must: list[Condition] = []
    must_not: list[Condition] = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            if condition == FilterCondition.NOT:
                raise FilterError("nested filters under NOT are not supported; list the filters")
            nested = translate_filters(item)
            must.extend(nested.must)
            must_not.extend(nested.must_not)
            continue
        positive, negative = _conditions(item)
        if condition == FilterCondition.AND:
            must.extend(positive)
            must_not.extend(negative)
        elif negative or len(positive) != 1:
            raise FilterError(
                f"NOT over the {item.operator.value!r} filter on {item.key!r} is not supported; "
                "use ==, in, contains, any or a range under NOT"
            )
        else:
            must_not.extend(positive)
    return Filter(tuple(must), tuple(must_not))


def _conditions(item: MetadataFilter) -> tuple[list[Condition], list[Condition]]:
    """Conditions that must hold and conditions that must not, for one LlamaIndex filter."""
    op, key = item.operator, item.key
    if op in _RANGE_OPS:
        return [Range(key, **{_RANGE_OPS[op]: _bound(key, item.value)})], []
    if op in (FilterOperator.EQ, FilterOperator.CONTAINS):
        return [Match(key, _values(item, single=True))], []
    if op == FilterOperator.NE:
        return [], [Match(key, _values(item, single=True))]
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return [Match(key, _values(item))], []
    if op == FilterOperator.NIN:
        return [], [Match(key, _values(item))]
    if op == FilterOperator.ALL:
        return [Match(key, (v,)) for v in _values(item)], []
    raise FilterError(
        f"operator {op.value!r} (filter on {key!r}) is not supported: use ==, !=, in, nin, "
        "any, all, contains, >, >=, < or <="
    )


def _values(item: MetadataFilter, single: bool = False) -> tuple[str | int, ...]:
    value = item.value
    if single and isinstance(value, list):
        raise FilterError(
            f"{item.operator.value!r} on {item.key!r} takes one value; use 'in' for several"
        )
    values = value if isinstance(value, list) else [value]
    if not values:
        raise FilterError(f"filter on {item.key!r} has no values; give at least one")
    out: list[str | int] = []
    for v in values:
        if v is None:
            raise FilterError(f"filter on {item.key!r} has no value")
        if isinstance(v, float):
            # Qdrant matches keywords and integers only; an exact float is a range.
            raise FilterError(
                f"filter on {item.key!r} matches a float exactly; use >= and <= instead"
            )
        out.append(v)
    return tuple(out)


def _bound(key: str, value: object) -> Bound:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    dated = key.startswith(META_PREFIX) and key.endswith("_at")
    if isinstance(value, str) and dated:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise FilterError(
                f"range on {key!r} needs an ISO 8601 date or datetime (2024-05-31 or "
                "2024-05-31T12:00:00Z)"
            ) from None
    if dated:
        raise FilterError(f"range on {key!r} needs a number or an ISO 8601 date")
    raise FilterError(
        f"range on {key!r} needs a number; dates compare only on meta.*_at keys such as "
        "meta.modified_at"
    )


# -- packing -------------------------------------------------------------------------------
