"""The county office's changes to the working-day calendar: one row per year it has set, nothing else.

The library's defaults are computed on demand (`calendar/defaults.py`), never stored: a newer library
release takes effect for every year the office has left alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Integer, String
from sqlmodel import Field

from services.issues.db import IssuesTable
from services.kit.db import UTCDateTime, utcnow


class CalendarYear(IssuesTable, table=True):
    """A year's holidays and make-up working days as the office set them, replacing the library's."""

    __tablename__ = "calendar_years"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    # [{"date": "2027-01-01", "name": "元旦"}, …], in date order.
    holidays: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    makeup_days: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_by: str = Field(sa_column=Column(String(128), nullable=False))
