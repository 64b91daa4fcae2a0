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

from sqlalchemy import and_, select, text
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
    _counts,
    _dialect,
    _group_regions,
    _in_area,
    _in_window,
    area_of,
    check,
)
from services.kit.auth import Caller
from services.kit.db import utcnow
from services.kit.identity import codes_in_path

__all__ = ["RegionFigures", "figures_line", "region_figures"]


@dataclass(frozen=True, slots=True)
class RegionFigures:
    """One region of the grouping with what its subtree's issues reported in the window add up to."""

    code: str
    name: str
    counts: Counts
    median_days: float | None


def _group_of(path: str, groups: dict[str, str]) -> str | None:
    """The region of the grouping (by code → path) that an issue's region path lies under, if any."""
    for code in reversed(codes_in_path(path)):
        group_path = groups.get(code)
        if group_path is not None and path.startswith(group_path):
            return code
    return None


async def region_figures(session: AsyncSession, caller: Caller, query: StatsQuery) -> list[RegionFigures]:
    """Every region of the grouping (`query.group_by` is `child`), in path order, zeros included: the rows
    of `GET /v1/stats/rectification` for the same query, all of them. 404 and 422 as the statistics."""
    check(caller, query)
    if query.group_by is not GroupBy.child:
        raise ValueError("the figures feed groups by region")
    area = await area_of(session, caller, query.region)
    dialect, now = _dialect(session), utcnow()
    if dialect.postgres:
        await session.execute(text("SET LOCAL jit = off"))  # as the statistics: short statements
    regions = (
        await session.execute(
            select(col(Region.code), col(Region.name), col(Region.path))
            .where(_group_regions(area, query))
            .order_by(col(Region.path))
        )
    ).all()
    paths = {code: path for code, _, path in regions}
    where = and_(_in_area(area), _in_window(query))

    sums = [c for c in _aggregates(dialect, now) if c.name != "median_days"]
    by_path = select(col(Issue.region_path), *sums).where(where).group_by(col(Issue.region_path))
    counts: dict[str, Counts] = {}
    for row in (await session.execute(by_path)).all():
        group = _group_of(row.region_path, paths)
        if group is not None:
            counts[group] = counts[group] + _counts(row) if group in counts else _counts(row)

    durations: dict[str, list[float]] = defaultdict(list)
    fixed = select(col(Issue.region_path), dialect.days_to_close()).where(
        where, col(Issue.status) == Status.closed.value
    )
    for issue_path, days in (await session.execute(fixed)).all():
        group = _group_of(issue_path, paths)
        if group is not None:
            durations[group].append(float(days))
    empty = Counts()
    return [
        RegionFigures(code, name, counts.get(code, empty), rules.median(durations.get(code, ())))
        for code, name, _ in regions
    ]


def _number(value: float | int | None) -> str:
    return "null" if value is None else repr(value)


def figures_line(row: RegionFigures) -> str:
    """One NDJSON line: the fields of a statistics row (`RectificationRow`), in its order."""
    counts = row.counts
    shown = rules.figures(counts, row.median_days)
    values: Sequence[tuple[str, Any]] = (
        ("found", counts.found),
        ("fixed", counts.fixed),
        ("rejected", counts.rejected),
        ("open", counts.open),
        ("overdue", counts.overdue),
        ("closed_on_time", counts.closed_on_time),
        ("reworked", counts.reworked),
        ("extended", counts.extended),
        ("rectification_rate", shown.rectification_rate),
        ("on_time_rate", shown.on_time_rate),
        ("rework_rate", shown.rework_rate),
        ("extension_rate", shown.extension_rate),
        ("mean_days_to_close", shown.mean_days_to_close),
        ("median_days_to_close", shown.median_days_to_close),
    )
    head = f'{{"key":{json.dumps(row.code)},"name":{json.dumps(row.name, ensure_ascii=False)}'
    return head + "".join(f',"{name}":{_number(value)}' for name, value in values) + "}\n"


def figures_chunks(rows: list[RegionFigures], batch: int) -> Iterator[bytes]:
    for start in range(0, len(rows), batch):
        yield "".join(figures_line(row) for row in rows[start : start + batch]).encode()
