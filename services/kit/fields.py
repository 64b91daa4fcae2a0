"""Request fields whose OpenAPI says exactly what the code takes: omittable-but-not-null, strict booleans."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, StrictBool, WithJsonSchema

__all__ = [
    "JSON_INT",
    "TRUE_FALSE",
    "Moment",
    "OptionalQueryBool",
    "QueryBool",
    "StrictBool",
    "not_nullable",
]


def not_nullable(schema: dict[str, Any]) -> None:
    """`Field(json_schema_extra=not_nullable)` on `X | None = None`: the document shows X alone.

    For Update shapes whose fields may be left out (Python sees None) but never sent as null; the model
    refuses an explicit null with a validator, so the OpenAPI and the code say the same thing.
    """
    branches = [branch for branch in schema.pop("anyOf", []) if branch != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches


_QUERY_BOOLS = {"true": True, "false": False}
TRUE_FALSE = "Exactly `true` or `false`; other spellings (`1`, `yes`, `True`) are refused (422)."


def _query_bool(value: Any) -> Any:
    if isinstance(value, bool):  # a default, or a caller in Python
        return value
    if isinstance(value, str) and value in _QUERY_BOOLS:
        return _QUERY_BOOLS[value]
    raise ValueError("must be `true` or `false`")


# A boolean query parameter: exactly `true` or `false` (lower case), as OpenAPI clients write a boolean;
# the other spellings pydantic would coerce (`1`, `on`, `yes`, `True`) answer 422. Describe it with TRUE_FALSE.
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]
# The same, for a filter that may be left out (never null: a query parameter has no null).
OptionalQueryBool = Annotated[bool | None, BeforeValidator(_query_bool), WithJsonSchema({"type": "boolean"})]


# RFC 3339 date-times only: pydantic would also take a number (seconds since 1970) or "0.5" as a moment,
# which the spec (`format: date-time`) does not allow and no client means.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339_only(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value.strip()):
        raise ValueError("an RFC 3339 date-time with an offset, e.g. 2026-11-03T09:12:00+08:00")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]


def _json_int(value: Any) -> Any:
    # JSON has numbers, not integers: `3.0` is the integer 3 (JSON Schema says so too). A boolean or a
    # string of digits is not, though pydantic's lax mode would take both.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number that is a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


# An integer field of a JSON body: `3` or `3.0`, never `true` or `"3"`. After the field's constraints, so the
# document shows them as `minimum`/`maximum`: `Annotated[int, Field(ge=1, le=5), JSON_INT]`.
JSON_INT = BeforeValidator(_json_int)
