"""The rectification figures of every region of a grouping in one answer: what `GET /v1/stats/rectification`
(`group_by=child`, with `depth` or `level`) gives page after page, counted in three statements whatever the
number of regions, for services that read a province's villages at once (scoring's publications).

The statistics count each region of a page by its own range of the path index; a province's 10⁵ villages
are 520 pages of that. Here the window's issues in the area are summed per issue path once (one GROUP BY),
the fixed ones' durations read once for the medians, and each path's sums are added to the region of the
grouping it lies under (the groupings' regions never nest: they are one level, one depth, or the children).
The counts are the statistics' own CASE sums (`stats.service._aggregates`, `stats.rules`); the median is
the exact one the rules define.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.cases.models import Issue
from services.issues.cases.rules import Status
from services.issues.regions.models import Region
from services.issues.stats import rules
from services.issues.stats.rules import Counts, GroupBy
from services.issues.stats.service import (
    StatsQuery,
    _aggregates,
    _counted,
    _dialect,
    _group_regions,
    _grouping,
    _params,
    area_of,
    check,
)
from services.kit.auth import Caller
from services.kit.db import utcnow
from services.kit.identity import codes_in_path

__all__ = ["FIELDS", "Lines", "RegionFigures", "region_figures"]


# The fields of a statistics row (`RectificationRow`) after its `key`, in its order.
FIELDS = (
    "name",
    "found",
    "fixed",
    "rejected",
    "open",
    "overdue",
    "closed_on_time",
    "reworked",
    "extended",
    "rectification_rate",
    "on_time_rate",
    "rework_rate",
    "extension_rate",
    "mean_days_to_close",
    "median_days_to_close",
)
_SUMS = ("found", "fixed", "rejected", "open", "overdue", "closed_on_time", "reworked", "extended")


@dataclass(frozen=True, slots=True)
class RegionFigures:
    """One region of the grouping with what its subtree's issues reported in the window add up to."""

    code: str
    name: str
    counts: Counts
    median_days: float | None


class _Groups:
    """Which region of the grouping an issue's region path lies under (the groupings' regions never
    nest), worked out once per path."""

    def __init__(self, paths: dict[str, str]) -> None:
        self.paths = paths
        self.known: dict[str, str | None] = {}

    def of(self, path: str) -> str | None:
        if path in self.known:
            return self.known[path]
        found = None
        for code in reversed(codes_in_path(path)):
            group_path = self.paths.get(code)
            if group_path is not None and path.startswith(group_path):
                found = code
                break
        self.known[path] = found
        return found


async def region_figures(session: AsyncSession, caller: Caller, query: StatsQuery) -> list[RegionFigures]:
    """Every region of the grouping (`query.group_by` is `child`), in path order, zeros included: the rows
    of `GET /v1/stats/rectification` for the same query, all of them. 404 and 422 as the statistics."""
    check(caller, query)
    if query.group_by is not GroupBy.child:
        raise ValueError("the figures feed groups by region")
    area = await area_of(session, caller, query.region)
    dialect = _dialect(session)
    kind, grouping = _grouping(area, query)
    params = _params(area, query, utcnow()) | grouping
    regions = (
        await session.execute(
            select(col(Region.code), col(Region.name), col(Region.path))
            .where(_group_regions(dialect, kind))
            .order_by(col(Region.path)),
            params,
        )
    ).all()
    groups = _Groups({code: path for code, _, path in regions})
    where = _counted(dialect)

    sums = [c for c in _aggregates(dialect) if c.name != "median_days"]
    by_path = select(col(Issue.region_path), *sums).where(where).group_by(col(Issue.region_path))
    totals: dict[str, list[Any]] = {}  # the counts' fields in order, days_to_close last
    for row in (await session.execute(by_path, params)).all():
        group = groups.of(row[0])
        if group is None:
            continue
        values = row[1:]
        found = totals.get(group)
        if found is None:
            totals[group] = [*values]
        else:
            for i, value in enumerate(values):
                found[i] += value

    durations: dict[str, list[float]] = defaultdict(list)
    fixed = select(col(Issue.region_path), dialect.days_to_close()).where(
        where, col(Issue.status) == Status.closed.value
    )
    for issue_path, days in (await session.execute(fixed, params)).all():
        group = groups.of(issue_path)
        if group is not None:
            durations[group].append(float(days))
    empty = Counts()
    result = []
    for code, name, _ in regions:
        summed = totals.get(code)
        if summed is None:
            result.append(RegionFigures(code, name, empty, None))
            continue
        found, fixed_, rejected, open_, overdue, on_time, reworked, extended, days = summed
        counts = Counts(
            int(found),
            int(fixed_),
            int(rejected),
            int(open_),
            int(overdue),
            int(on_time),
            int(reworked),
            int(extended),
            float(days),
        )
        result.append(RegionFigures(code, name, counts, rules.median(durations.get(code, ()))))
    return result


_json = json.JSONEncoder(ensure_ascii=False).encode  # one encoder (json.dumps with options makes one a call)


def _number(value: float | int | None) -> str:
    return "null" if value is None else repr(value)


class Lines:
    """NDJSON lines of the chosen fields (all of a statistics row's by default), `key` first."""

    def __init__(self, fields: Sequence[str] = FIELDS) -> None:
        self.fields = [f for f in FIELDS if f in fields]  # in the row's order, each once
        self.named = "name" in self.fields
        figures_wanted = [f for f in self.fields if f != "name"]
        self.rates = any(f not in _SUMS for f in figures_wanted)
        zero = rules.figures(Counts(), None)
        self.zero_tail = self._tail(Counts(), zero) + "}\n"

    def _tail(self, counts: Counts, shown: rules.Figures | None) -> str:
        parts = []
        for name in self.fields:
            if name == "name":
                continue
            value: Any = getattr(counts, name) if name in _SUMS else getattr(shown, name)
            parts.append(f',"{name}":{_number(value)}')
        return "".join(parts)

    def line(self, row: RegionFigures) -> str:
        head = '{"key":' + _json(row.code)
        if self.named:
            head += ',"name":' + _json(row.name)
        if row.counts.found == 0 and row.counts.rejected == 0:
            return head + self.zero_tail  # nothing reported in the window: the zeros' line
        shown = rules.figures(row.counts, row.median_days) if self.rates else None
        return head + self._tail(row.counts, shown) + "}\n"

    def chunks(self, rows: list[RegionFigures], batch: int) -> Iterator[bytes]:
        for start in range(0, len(rows), batch):
            yield "".join(self.line(row) for row in rows[start : start + batch]).encode()
