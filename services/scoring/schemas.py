"""Field types the scoring API shares: points as JSON numbers with at most two places, bare dates, notes."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema


def _number(value: Any) -> Any:
    """A JSON number only: pydantic alone would also take its text (`"2"`, `""`) or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("a number")
    return value


# Points (分): 0 to 1000 in steps of 0.01, a JSON number read exactly (0.1 is 0.1), written as a number.
Points = Annotated[
    Decimal,
    Field(ge=0, le=1000, max_digits=6, decimal_places=2, examples=[2]),
    BeforeValidator(_number),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1000, "multipleOf": 0.01, "examples": [2]}),
    PlainSerializer(float, return_type=float, when_used="json"),
]
# A score as stored and published (two places), written as a JSON number.
Score = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


Number = BeforeValidator(_number)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_only(value: Any) -> Any:
    """A bare `2026-11-01` (pydantic alone would also take a number of seconds)."""
    if isinstance(value, date) or (isinstance(value, str) and _DAY.fullmatch(value)):
        return value
    raise ValueError("a date: 2026-11-01")


Day = Annotated[date, BeforeValidator(_date_only)]
# Free text an inspector writes (notes, a deduction's reason): no NUL, bounded.
Note = Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$", examples=["村东头柴草乱堆"])]
