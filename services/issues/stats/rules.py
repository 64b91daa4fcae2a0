"""The pure core of the rectification statistics (整改统计): what each figure counts, and the rates from the counts.

The database counts (GROUP BY with CASE sums, one pass whatever the number of issues); these rules say what
those sums mean and turn them into rates, so the definitions live in one place. `tally` counts issues in
Python by exactly the same definitions: the property tests hold the SQL to it.

Over the issues reported in the window [from, to) in the region's subtree:

- found: not rejected (a rejected report was never a problem to fix, so it never counts as found or fixed);
- fixed: closed (销号) among the found;
- rejected: rejected, reported separately;
- open: neither closed nor rejected (found = fixed + open);
- overdue: open and past its deadline now;
- closed_on_time: fixed no later than the deadline (a fixed issue without a deadline is on time);
- reworked: fixed after being returned (退回重整) at least once;
- extended: found with at least one approved extension (延期);
- days to close: closed_at − reported_at in days, of the fixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum

from services.issues.cases.rules import OPEN_STATUSES, Source, Status

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
SECONDS_PER_DAY = 86_400
MAX_MONTHS = 120  # a monthly series covers at most ten years


class GroupBy(StrEnum):
    child = "child"  # one row per region below (direct children, or `depth` / `level` below)
    category = "category"
    source = "source"
    month = "month"  # the reported month in Asia/Shanghai


SOURCE_NAMES: dict[Source, str] = {
    Source.inspection: "督查检查",
    Source.covert: "暗访",
    Source.grid: "网格巡查",
    Source.citizen: "群众随手拍",
    Source.hotline: "12345/12319热线",
    Source.integration: "系统对接",
    Source.open311: "Open311",
}


@dataclass(frozen=True, slots=True)
class Counts:
    """The sums one group's issues add up to; groups add up field by field."""

    found: int = 0
    fixed: int = 0
    rejected: int = 0
    open: int = 0
    overdue: int = 0
    closed_on_time: int = 0
    reworked: int = 0
    extended: int = 0
    days_to_close: float = 0.0  # the sum over the fixed

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Counts)))


def total(groups: Iterable[Counts]) -> Counts:
    """The counts of all groups together."""
    result = Counts()
    for counts in groups:
        result = result + counts
    return result


@dataclass(frozen=True, slots=True)
class IssueFacts:
    """What the statistics read of one issue reported in the window."""

    status: Status
    reported_at: datetime
    closed_at: datetime | None = None
    deadline: datetime | None = None
    rework_count: int = 0
    extension_count: int = 0


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_DAY


def tally(issues: Iterable[IssueFacts], now: datetime) -> Counts:
    """The counts of these issues by the definitions above (what the SQL sums compute)."""
    found = fixed = rejected = open_ = overdue = on_time = reworked = extended = 0
    days = 0.0
    for issue in issues:
        if issue.status is Status.rejected:
            rejected += 1
            continue
        found += 1
        extended += issue.extension_count > 0
        if issue.status is Status.closed and issue.closed_at is not None:
            fixed += 1
            on_time += issue.deadline is None or issue.closed_at <= issue.deadline
            reworked += issue.rework_count > 0
            days += days_between(issue.reported_at, issue.closed_at)
        elif issue.status in OPEN_STATUSES:
            open_ += 1
            overdue += issue.deadline is not None and issue.deadline < now
    return Counts(found, fixed, rejected, open_, overdue, on_time, reworked, extended, days)


def share(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return part / whole if whole else None


def median(values: Sequence[float]) -> float | None:
    """The exact median (the mean of the two middle values of an even count); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, slots=True)
class Figures:
    """One row of the statistics: the counts and what follows from them."""

    counts: Counts
    rectification_rate: float | None  # 整改率 = fixed / found
    on_time_rate: float | None  # closed on time / fixed
    rework_rate: float | None  # reworked / fixed
    extension_rate: float | None  # extended / found
    mean_days_to_close: float | None
    median_days_to_close: float | None


def figures(counts: Counts, median_days: float | None) -> Figures:
    """The rates of one group from its counts (`median_days` comes from the database: it is not a sum)."""
    mean = counts.days_to_close / counts.fixed if counts.fixed else None
    return Figures(
        counts=counts,
        rectification_rate=share(counts.fixed, counts.found),
        on_time_rate=share(counts.closed_on_time, counts.fixed),
        rework_rate=share(counts.reworked, counts.fixed),
        extension_rate=share(counts.extended, counts.found),
        mean_days_to_close=None if mean is None or not math.isfinite(mean) else mean,
        median_days_to_close=median_days if counts.fixed else None,
    )


# ---- the window and its months ----


def local_midnight(day: date) -> datetime:
    """00:00 of a day in Asia/Shanghai, in UTC: a date given as `from` or `to` means its start there."""
    return datetime.combine(day, time(), tzinfo=SHANGHAI).astimezone(UTC)


def start_of_year(moment: datetime) -> datetime:
    """1 January 00:00 of the moment's year in Asia/Shanghai (the default start of the window)."""
    return local_midnight(date(moment.astimezone(SHANGHAI).year, 1, 1))


def month_key(moment: datetime) -> str:
    """`2026-03`: the month a moment falls in, in Asia/Shanghai."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m")


def months_between(start: datetime, end: datetime) -> list[str]:
    """The keys of every Asia/Shanghai month the window [start, end) touches, in order."""
    if end <= start:
        return []
    first = start.astimezone(SHANGHAI)
    year, month, keys = first.year, first.month, []
    for _ in range(month_count(start, end)):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def month_count(start: datetime, end: datetime) -> int:
    """How many Asia/Shanghai months the window [start, end) touches."""
    if end <= start:
        return 0
    first, last = start.astimezone(SHANGHAI), (end - timedelta(microseconds=1)).astimezone(SHANGHAI)
    return (last.year - first.year) * 12 + last.month - first.month + 1


def month_name(key: str) -> str:
    """`2026-03` → `2026年3月`."""
    year, month = key.split("-")
    return f"{int(year)}年{int(month)}月"
