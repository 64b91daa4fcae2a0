"""Field types the scoring API shares: points as JSON numbers with at most two places, bare dates, notes."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer

# Points (分): 0 to 1000 in steps of 0.01, read from a JSON number (or its text), written as a number.
Points = Annotated[
    Decimal,
    Field(ge=0, le=1000, max_digits=6, decimal_places=2, examples=[2]),
    PlainSerializer(float, return_type=float, when_used="json"),
]
# A score as stored and published (two places), written as a JSON number.
Score = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_only(value: Any) -> Any:
    """A bare `2026-11-01` (pydantic alone would also take a number of seconds)."""
    if isinstance(value, date) or (isinstance(value, str) and _DAY.fullmatch(value)):
        return value
    raise ValueError("a date: 2026-11-01")


Day = Annotated[date, BeforeValidator(_date_only)]
# Free text an inspector writes (notes, a deduction's reason): no NUL, bounded.
Note = Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$", examples=["村东头柴草乱堆"])]
