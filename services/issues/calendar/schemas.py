"""Calendar requests and answers: a year's holidays and make-up working days, and where they come from."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, StringConstraints

from services.issues.calendar.rules import MAX_DAYS_PER_LIST, CalendarSource
from services.kit.text import PLAIN_TEXT

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _iso_date_text(value: Any) -> Any:
    # A JSON date is a `YYYY-MM-DD` string; numbers (read as timestamps) and date-times are refused.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


CalendarDate = Annotated[date, BeforeValidator(_iso_date_text)]
DayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    PLAIN_TEXT,
    Field(description="1 to 50 characters, e.g. `国庆节` or `国庆节调休上班`.", examples=["国庆节"]),
]


class CalendarDay(BaseModel):
    """A day of the calendar and what it is."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"date": "2027-10-01", "name": "国庆节"}}
    )

    date: CalendarDate
    name: DayName


_HOLIDAYS_2027: list[JsonValue] = [
    {"date": "2027-01-01", "name": "元旦"},
    {"date": "2027-02-06", "name": "春节"},
    {"date": "2027-02-07", "name": "春节"},
    {"date": "2027-02-08", "name": "春节"},
    {"date": "2027-02-09", "name": "春节"},
]
_MAKEUP_2027: list[JsonValue] = [{"date": "2027-02-20", "name": "春节调休上班"}]


class CalendarYearUpdate(BaseModel):
    """A year's whole schedule, replacing what was there (the library's or the office's before)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"holidays": _HOLIDAYS_2027, "makeup_days": _MAKEUP_2027}},
    )

    holidays: list[CalendarDay] = Field(
        max_length=MAX_DAYS_PER_LIST,
        description="Public holidays: days off, with their names (weekend days within a holiday may be listed "
        "too). At most 60, each in the year, none twice.",
    )
    makeup_days: list[CalendarDay] = Field(
        max_length=MAX_DAYS_PER_LIST,
        description="Make-up working days (调休): Saturdays or Sundays that are worked. At most 60, each in "
        "the year, none twice, none also a holiday.",
    )


class CalendarYearPublic(BaseModel):
    """A year of the working-day calendar: weekends off, the holidays off, the make-up days worked."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "year": 2026,
                "source": "library",
                "library": "chinesecalendar 1.11.0",
                "holidays": [
                    {"date": "2026-10-01", "name": "国庆节"},
                    {"date": "2026-10-02", "name": "国庆节"},
                ],
                "makeup_days": [{"date": "2026-10-10", "name": "国庆节调休上班"}],
                "working_days": 248,
                "updated_at": None,
                "updated_by": None,
            }
        }
    )

    year: int
    source: CalendarSource = Field(
        description="`library`: the State Council's schedule as the kept library knows it; `office`: set by "
        "the county office; `weekends`: no schedule known yet (not published, or not in the library's "
        "release), so only weekends are off until the office puts the year in."
    )
    library: str = Field(description="The library release the defaults come from.")
    holidays: list[CalendarDay] = Field(description="Days off for public holidays, in date order.")
    makeup_days: list[CalendarDay] = Field(description="Weekend days worked (调休), in date order.")
    working_days: int = Field(description="How many working days the year has.")
    updated_at: datetime | None = Field(
        description="When the office last set the year; null unless `office`."
    )
    updated_by: str | None = Field(description="Who did (`user:12`); null unless `office`.")
