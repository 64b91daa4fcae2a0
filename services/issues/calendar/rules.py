"""The pure core of the working-day calendar: which days are worked, deadlines in working days, the light.

Days are Beijing days (Asia/Shanghai). Working days are Monday to Friday, less public holidays, plus the
make-up working days (调休: a Saturday or Sunday worked in exchange for a longer holiday).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum

from services.kit.errors import FieldError

__all__ = [
    "MAX_DAYS_PER_LIST",
    "MAX_YEAR",
    "MIN_YEAR",
    "SHANGHAI",
    "CalendarSource",
    "Light",
    "NamedDay",
    "WorkingCalendar",
    "YearNotCovered",
    "YearSchedule",
    "beijing_date",
    "deadline_after",
    "light",
    "schedule_problems",
    "working_time_used",
    "years_between",
]

# Asia/Shanghai has kept UTC+8 without daylight saving since 1991: a fixed offset is exact for the
# calendar's years and needs no time-zone database on the host.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_DAYS_PER_LIST = 60
YELLOW_FROM = 0.8  # 80 % of the allowed working time used
_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
_END_OF_DAY = time(23, 59, 59, 999999)
_SATURDAY = 5


class CalendarSource(StrEnum):
    """Where a year's holidays and make-up days come from."""

    library = "library"  # the State Council's schedule as the chinesecalendar release knows it
    office = "office"  # set by the county office (整治办), replacing the library's
    weekends = "weekends"  # no schedule known (not yet published): weekends off, nothing else


class Light(StrEnum):
    """The traffic light of digital city management (数字城管) for an open issue."""

    green = "green"  # under 80 % of the allowed working time used
    yellow = "yellow"  # 80 % to 100 % inclusive
    red = "red"  # past 100 %: past the deadline


class YearNotCovered(ValueError):
    """A working-day question about a year the calendar was not built for (load that year too)."""

    def __init__(self, year: int) -> None:
        super().__init__(f"the working calendar does not cover {year}")
        self.year = year


@dataclass(frozen=True, slots=True)
class NamedDay:
    date: date
    name: str


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """One year's public holidays (days off, weekends within a holiday included) and make-up working days."""

    year: int
    source: CalendarSource
    holidays: tuple[NamedDay, ...] = ()
    makeup_days: tuple[NamedDay, ...] = ()


def _is_weekend(day: date) -> bool:
    return day.weekday() >= _SATURDAY


def _weekdays_before(day: date) -> int:
    """Mondays to Fridays from 0001-01-01 (a Monday) up to the day before `day`."""
    days = day.toordinal() - 1
    return days // 7 * 5 + min(days % 7, 5)


def _count_between(ordered: Sequence[date], first: date, last: date) -> int:
    return bisect_right(ordered, last) - bisect_left(ordered, first)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days of the covered years: weekdays, less holidays, plus make-up days (调休).

    Asking about a day of a year it does not cover raises `YearNotCovered`, so a deadline that runs into
    next year is never counted without next year's holidays. Build it with `WorkingCalendar.of(schedules)`
    or from `services.issues.calendar.service.working_calendar`.
    """

    years: frozenset[int]
    holidays: frozenset[date] = frozenset()
    makeup_days: frozenset[date] = frozenset()
    # Sorted, for counting in O(log n): holidays that fall on weekdays, make-up days on weekends.
    _weekday_holidays: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _weekend_makeups: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        both = self.holidays & self.makeup_days
        if both:
            raise ValueError(f"{min(both)} is both a holiday and a make-up working day")
        outside = {d.year for d in self.holidays | self.makeup_days} - self.years
        if outside:
            raise ValueError(f"days given for years not covered: {sorted(outside)}")
        object.__setattr__(
            self, "_weekday_holidays", tuple(sorted(d for d in self.holidays if not _is_weekend(d)))
        )
        object.__setattr__(
            self, "_weekend_makeups", tuple(sorted(d for d in self.makeup_days if _is_weekend(d)))
        )

    @classmethod
    def of(cls, schedules: Iterable[YearSchedule]) -> WorkingCalendar:
        """The calendar of these years' schedules."""
        schedules = list(schedules)
        return cls(
            years=frozenset(s.year for s in schedules),
            holidays=frozenset(d.date for s in schedules for d in s.holidays),
            makeup_days=frozenset(d.date for s in schedules for d in s.makeup_days),
        )

    @classmethod
    def weekends_only(cls, years: Iterable[int]) -> WorkingCalendar:
        return cls(years=frozenset(years))

    def _cover(self, day: date) -> None:
        if day.year not in self.years:
            raise YearNotCovered(day.year)

    def is_working_day(self, day: date) -> bool:
        self._cover(day)
        if day in self.makeup_days:
            return True
        return not (day in self.holidays or _is_weekend(day))

    def working_days_between(self, first: date, last: date) -> int:
        """How many working days lie from `first` to `last`, both included (0 when `last` is before)."""
        if last < first:
            return 0
        for year in range(first.year, last.year + 1):
            if year not in self.years:
                raise YearNotCovered(year)
        weekdays = _weekdays_before(last + _DAY) - _weekdays_before(first)
        return (
            weekdays
            - _count_between(self._weekday_holidays, first, last)
            + _count_between(self._weekend_makeups, first, last)
        )


def beijing_date(moment: datetime) -> date:
    """The Beijing (Asia/Shanghai) day of an aware moment."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime given; use an aware one")
    return moment.astimezone(SHANGHAI).date()


def years_between(first: datetime, last: datetime) -> range:
    """The Beijing years from `first` to `last`: what a calendar must cover to measure between them."""
    start, end = beijing_date(first).year, beijing_date(last).year
    return range(min(start, end), max(start, end) + 1)


def _end_of(day: date) -> datetime:
    return datetime.combine(day, _END_OF_DAY, tzinfo=SHANGHAI).astimezone(UTC)


def deadline_after(start: datetime, working_days: int, calendar: WorkingCalendar) -> datetime:
    """The end (23:59:59.999999 Beijing time, as an aware UTC datetime) of the `working_days`-th working day
    after the Beijing day of `start`; 0 gives the end of that day itself.

    A report on Friday at 15:00 with 1 working day is due at the end of Monday; over the National Day
    week the holidays are skipped and the make-up Saturday counts. Raises `YearNotCovered` when the count
    runs past the calendar's years.
    """
    if working_days < 0:
        raise ValueError("working_days must not be negative")
    day = beijing_date(start)
    counted = 0
    while counted < working_days:
        day += _DAY
        if calendar.is_working_day(day):
            counted += 1
    return _end_of(day)


def _working_time(calendar: WorkingCalendar, first: datetime, last: datetime) -> timedelta:
    """Clock time within working days (whole Beijing days, 00:00 to 24:00) from `first` up to `last`."""
    if last <= first:
        return timedelta(0)
    first_day, last_day = beijing_date(first), beijing_date(last)
    if first_day == last_day:
        return last - first if calendar.is_working_day(first_day) else timedelta(0)
    total = timedelta(0)
    if calendar.is_working_day(first_day):
        total += datetime.combine(first_day + _DAY, time(), tzinfo=SHANGHAI) - first
    if calendar.is_working_day(last_day):
        total += last - datetime.combine(last_day, time(), tzinfo=SHANGHAI)
    return total + calendar.working_days_between(first_day + _DAY, last_day - _DAY) * _DAY


def working_time_used(start: datetime, deadline: datetime, now: datetime, calendar: WorkingCalendar) -> float:
    """The share of the allowed time used: 0.0 at `start`, 1.0 at `deadline`, above 1.0 exactly when past it.

    Up to the deadline: the working time (working days count whole, 00:00–24:00 Beijing time, partial
    days by the clock; weekends and holidays stop the clock) from `start` to `now` over that from `start`
    to `deadline`. Past the deadline: 1 plus the clock time past it (weekends too: a deadline passed is
    passed) over the allowed working time. When no working time lies between start and deadline (a
    deadline set by hand on a holiday) clock time stands in for it; a deadline not after the start
    leaves nothing to use (1.0 until it passes; past it, each day counts 1.0). The calendar must cover
    the years from `start` to `deadline` (see `years_between`).
    """
    for moment in (start, deadline, now):
        beijing_date(moment)  # refuses a naive datetime
    allowed = _working_time(calendar, start, deadline)
    if now > deadline:
        base = allowed or (deadline - start if deadline > start else _DAY)
        return 1.0 + (now - deadline) / base
    if allowed:
        return _working_time(calendar, start, now) / allowed
    if deadline > start:
        return max(now - start, timedelta(0)) / (deadline - start)
    return 1.0


def moment_of_share(start: datetime, deadline: datetime, share: float, calendar: WorkingCalendar) -> datetime:
    """The first moment (to the microsecond, in UTC) at which `working_time_used(start, deadline, ·)` reaches
    `share` (0 < share ≤ 1): the working time is walked day by day from `start`, not searched for. A
    deadline not after the start gives the deadline."""
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1]")
    if deadline <= start:
        return deadline
    allowed = _working_time(calendar, start, deadline)
    if not allowed:
        moment = start + (deadline - start) * share
    else:
        target, used = allowed * share, timedelta(0)
        day, cursor = beijing_date(start), start
        while True:  # reaches the target by the deadline's day at the latest
            midnight = datetime.combine(day + _DAY, time(), tzinfo=SHANGHAI)
            if calendar.is_working_day(day):
                if used + (midnight - cursor) >= target:
                    moment = cursor + (target - used)
                    break
                used += midnight - cursor
            day, cursor = day + _DAY, midnight
    moment = moment.astimezone(UTC)
    # The share is a float and the target a rounded timedelta: settle on the first microsecond reaching it.
    while moment < deadline and working_time_used(start, deadline, moment, calendar) < share:
        moment += _MICROSECOND
    while moment > start and working_time_used(start, deadline, moment - _MICROSECOND, calendar) >= share:
        moment -= _MICROSECOND
    return min(moment, deadline)


def light(share: float) -> Light:
    """Green under 80 % of the time used, yellow from 80 % to 100 % inclusive, red past 100 %."""
    if math.isnan(share):
        raise ValueError("share must be a number")
    if share < YELLOW_FROM:
        return Light.green
    if share <= 1.0:
        return Light.yellow
    return Light.red


def schedule_problems(
    year: int, holidays: Sequence[date], makeup_days: Sequence[date], *, location: str = "body"
) -> list[FieldError]:
    """What is wrong with an office's schedule for `year`; empty when it may be stored.

    Every date within the year, none twice in a list, none both a holiday and a make-up day, make-up days
    on Saturdays or Sundays (a weekday is worked anyway). Error types: `date_outside_year`,
    `date_repeated`, `date_both_holiday_and_makeup`, `makeup_day_not_weekend`.
    """
    errors: list[FieldError] = []
    holiday_set = set(holidays)
    for name, days in (("holidays", holidays), ("makeup_days", makeup_days)):
        seen: set[date] = set()
        for index, day in enumerate(days):
            where = f"{location}.{name}.{index}.date"
            if day.year != year:
                errors.append(
                    FieldError(field=where, message=f"{day} is not in {year}", type="date_outside_year")
                )
            if day in seen:
                errors.append(FieldError(field=where, message=f"{day} is listed twice", type="date_repeated"))
            seen.add(day)
            if name == "makeup_days" and day in holiday_set:
                errors.append(
                    FieldError(
                        field=where,
                        message=f"{day} cannot be both a holiday and a make-up working day",
                        type="date_both_holiday_and_makeup",
                    )
                )
            if name == "makeup_days" and not _is_weekend(day):
                errors.append(
                    FieldError(
                        field=where,
                        message=f"{day} is a weekday, worked anyway: a make-up day is a Saturday or Sunday",
                        type="makeup_day_not_weekend",
                    )
                )
    return errors
