"""Scoring periods (考评周期): a month `2026-11`, a quarter `2026-Q4`, a year `2026`, and a month's two
inspection rounds (上旬 the 1st–15th, 下旬 the 16th to the month's end), all in Asia/Shanghai.

A period covers the half-open span [start, end) of local dates; `starts_at` / `ends_at` are the same
bounds as aware datetimes at local midnight. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "PERIOD_PATTERN",
    "SHANGHAI",
    "HalfMonth",
    "InspectionWindow",
    "Period",
    "PeriodKind",
    "inspection_windows",
    "month",
    "parse_period",
    "period_of",
    "quarter",
    "year",
]

# China has kept UTC+8 without daylight saving since 1991: a fixed offset needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MIN_YEAR, MAX_YEAR = 2000, 2999

_PATTERN = re.compile(r"(?P<year>\d{4})(?:-(?:(?P<month>\d{2})|Q(?P<quarter>\d)))?", re.ASCII)


# What an API takes as a period (a year of this millennium, a month or a quarter of it); `parse_period`
# reads it.
PERIOD_PATTERN = r"^2\d{3}(-(0[1-9]|1[0-2]|Q[1-4]))?$"


class PeriodKind(StrEnum):
    month = "month"  # 月度: inspection rounds, red and black lists
    quarter = "quarter"  # 季度: 暗访 assessment
    year = "year"  # 年度: 末位管理

    @property
    def months(self) -> int:
        """How many months a period of this kind spans."""
        return {PeriodKind.month: 1, PeriodKind.quarter: 3, PeriodKind.year: 12}[self]

    @property
    def label(self) -> str:
        return {PeriodKind.month: "月", PeriodKind.quarter: "季度", PeriodKind.year: "年"}[self]


@dataclass(frozen=True, slots=True)
class Period:
    """One month, quarter or year; `number` is the month (1–12), the quarter (1–4) or 1 for a year.

    Periods of one kind order by time (`<` compares only periods of the same kind).
    """

    kind: PeriodKind
    year: int
    number: int = 1

    def __post_init__(self) -> None:
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise ValueError(f"year {self.year} is outside {MIN_YEAR}–{MAX_YEAR}")
        top = 12 // self.kind.months
        if not 1 <= self.number <= top:
            raise ValueError(f"a {self.kind} is numbered 1–{top}, not {self.number}")

    def __str__(self) -> str:
        return self.code

    def __lt__(self, other: Period) -> bool:
        if self.kind is not other.kind:
            raise TypeError(f"a {self.kind} and a {other.kind} do not order")
        return self._index < other._index

    @property
    def code(self) -> str:
        """`2026-11`, `2026-Q4` or `2026`: the form the API takes and answers."""
        if self.kind is PeriodKind.month:
            return f"{self.year:04d}-{self.number:02d}"
        if self.kind is PeriodKind.quarter:
            return f"{self.year:04d}-Q{self.number}"
        return f"{self.year:04d}"

    @property
    def label(self) -> str:
        """The Chinese name: 2026年11月, 2026年第4季度, 2026年度."""
        if self.kind is PeriodKind.month:
            return f"{self.year}年{self.number}月"
        if self.kind is PeriodKind.quarter:
            return f"{self.year}年第{self.number}季度"
        return f"{self.year}年度"

    @property
    def _index(self) -> int:
        """Periods of one kind counted from year 0, so that neighbours differ by one."""
        return self.year * (12 // self.kind.months) + self.number - 1

    @classmethod
    def _from_index(cls, kind: PeriodKind, index: int) -> Period:
        per_year = 12 // kind.months
        return cls(kind, index // per_year, index % per_year + 1)

    @property
    def first_month(self) -> int:
        return (self.number - 1) * self.kind.months + 1

    @property
    def start(self) -> date:
        """The first local day of the period."""
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """The first local day after the period (exclusive)."""
        return _add_months(self.start, self.kind.months)

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(), SHANGHAI)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.end, time(), SHANGHAI)

    def previous(self, steps: int = 1) -> Period:
        """The period of the same kind `steps` before this one (2026-01 → 2025-12, 2026-Q1 → 2025-Q4)."""
        return Period._from_index(self.kind, self._index - steps)

    def next(self, steps: int = 1) -> Period:
        return Period._from_index(self.kind, self._index + steps)

    def contains(self, other: Period | date | datetime) -> bool:
        """Whether a period lies wholly inside this one (a period contains itself), or a day or moment falls
        in it (an aware moment is read in Asia/Shanghai; a naive one is refused)."""
        if isinstance(other, Period):
            return self.start <= other.start and other.end <= self.end
        return self.start <= _local_day(other) < self.end

    def months(self) -> list[Period]:
        """The months of this period, in order."""
        return [month(self.year, self.first_month + i) for i in range(self.kind.months)]

    def within(self, kind: PeriodKind) -> Period:
        """The period of `kind` that contains this one (2026-11 within a quarter is 2026-Q4)."""
        if kind.months < self.kind.months:
            raise ValueError(f"a {self.kind} does not fit in a {kind}")
        return period_of(kind, self.start)


def month(year_: int, number: int) -> Period:
    return Period(PeriodKind.month, year_, number)


def quarter(year_: int, number: int) -> Period:
    return Period(PeriodKind.quarter, year_, number)


def year(year_: int) -> Period:
    return Period(PeriodKind.year, year_, 1)


def parse_period(text: str) -> Period:
    """`2026-11`, `2026-Q4` or `2026` as a Period; anything else (`2026-1`, `2026-q4`, `2026-13`) is a
    ValueError."""
    matched = _PATTERN.fullmatch(text)
    if matched is None:
        raise ValueError(f"{text!r} is not a period: write 2026-11, 2026-Q4 or 2026")
    year_ = int(matched["year"])
    if matched["month"] is not None:
        return month(year_, int(matched["month"]))
    if matched["quarter"] is not None:
        return quarter(year_, int(matched["quarter"]))
    return year(year_)


def period_of(kind: PeriodKind, moment: date | datetime) -> Period:
    """The period of `kind` a local day, or an aware moment read in Asia/Shanghai, falls in."""
    day = _local_day(moment)
    if kind is PeriodKind.month:
        return month(day.year, day.month)
    if kind is PeriodKind.quarter:
        return quarter(day.year, (day.month - 1) // 3 + 1)
    return year(day.year)


class HalfMonth(StrEnum):
    """Which of a month's two inspections (每月上下旬两次检查)."""

    first = "first"  # 上旬: the 1st to the 15th
    second = "second"  # 下旬: the 16th to the month's last day

    @property
    def label(self) -> str:
        return "上旬" if self is HalfMonth.first else "下旬"


SECOND_HALF_STARTS = 16


@dataclass(frozen=True, slots=True)
class InspectionWindow:
    """The days one inspection round of a month covers: [start, end) in local days."""

    month: Period
    half: HalfMonth
    start: date
    end: date

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(), SHANGHAI)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.end, time(), SHANGHAI)

    @property
    def label(self) -> str:
        """2026年11月上旬."""
        return f"{self.month.label}{self.half.label}"

    def contains(self, moment: date | datetime) -> bool:
        return self.start <= _local_day(moment) < self.end


def inspection_windows(period: Period) -> tuple[InspectionWindow, InspectionWindow]:
    """A month's two inspection rounds: 上旬 (1st–15th) and 下旬 (16th–end); together they cover the month
    exactly, without overlap."""
    if period.kind is not PeriodKind.month:
        raise ValueError(f"inspection rounds are per month, not per {period.kind}")
    middle = period.start.replace(day=SECOND_HALF_STARTS)
    return (
        InspectionWindow(period, HalfMonth.first, period.start, middle),
        InspectionWindow(period, HalfMonth.second, middle, period.end),
    )


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _local_day(moment: date | datetime) -> date:
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("a moment without a time zone is ambiguous: give it an offset")
        return moment.astimezone(SHANGHAI).date()
    return moment
