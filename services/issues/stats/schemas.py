"""The rectification statistics as the API answers them: one row per group, a total row, cursor pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.issues.stats.rules import GroupBy

_TOWN_ROW: dict[str, Any] = {
    "key": "370282103",
    "name": "蓝村街道",
    "found": 1104,
    "fixed": 1017,
    "rejected": 23,
    "open": 87,
    "overdue": 12,
    "closed_on_time": 958,
    "reworked": 41,
    "extended": 30,
    "rectification_rate": 0.9211956521739131,
    "on_time_rate": 0.9419862340216323,
    "rework_rate": 0.04031465093411996,
    "extension_rate": 0.02717391304347826,
    "mean_days_to_close": 4.62,
    "median_days_to_close": 3.9,
}


class RectificationFigures(BaseModel):
    """What one group's issues (or all of them) add up to; every rate is null when its denominator is 0."""

    model_config = ConfigDict(
        json_schema_extra={"example": {k: v for k, v in _TOWN_ROW.items() if k not in ("key", "name")}}
    )

    found: int = Field(description="Reported in the window and not rejected.")
    fixed: int = Field(description="Closed (销号) among the found.")
    rejected: int = Field(description="Reported in the window and rejected (not counted as found).")
    open: int = Field(description="Found and neither closed nor rejected: `found = fixed + open`.")
    overdue: int = Field(description="Open and past the deadline now (逾期).")
    closed_on_time: int = Field(description="Fixed no later than the deadline (no deadline: on time).")
    reworked: int = Field(description="Fixed after being returned (退回重整) at least once.")
    extended: int = Field(description="Found with at least one approved extension (延期).")
    rectification_rate: float | None = Field(description="整改率 = fixed / found.")
    on_time_rate: float | None = Field(description="closed_on_time / fixed.")
    rework_rate: float | None = Field(description="reworked / fixed: the share of fixes that needed rework.")
    extension_rate: float | None = Field(description="extended / found.")
    mean_days_to_close: float | None = Field(
        description="Mean of closed_at − reported_at, in days, of the fixed."
    )
    median_days_to_close: float | None = Field(description="Median of the same (exact).")


class _Group(BaseModel):
    key: str = Field(
        description="The region's code, the category's code, the source, or the month (`2026-03`, Asia/Shanghai)."
    )
    name: str | None = Field(description="The region's or category's name, the source's or month's label.")


class RectificationRow(RectificationFigures, _Group):
    """One group: a region (`child`), a category, a source or a month; its key and name come first."""

    model_config = ConfigDict(json_schema_extra={"example": _TOWN_ROW})


class RectificationStats(BaseModel):
    """The rows of one page, and the total over the whole region and window (not only this page)."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "example": {
                "region": "370282",
                "from": "2025-12-31T16:00:00Z",
                "to": "2026-07-01T00:00:00Z",
                "group_by": "child",
                "items": [_TOWN_ROW],
                "total": {k: v for k, v in _TOWN_ROW.items() if k not in ("key", "name")},
                "next_cursor": None,
                "limit": 50,
            }
        },
    )

    region: str = Field(description="The region counted (its whole subtree).")
    from_: datetime = Field(alias="from", description="Start of the window (inclusive).")
    to: datetime = Field(description="End of the window (exclusive).")
    group_by: GroupBy
    items: list[RectificationRow]
    total: RectificationFigures | None = Field(
        description="Over the whole region and window (not only this page's rows); on the first page only, "
        "null on the pages after it."
    )
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    limit: int
