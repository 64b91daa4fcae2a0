"""The working-day calendar: the library's defaults merged with the county office's changes.

The lifecycle calls `working_calendar` (or `deadline_for`) to count deadlines in working days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.calendar.defaults import LIBRARY, default_schedule
from services.issues.calendar.models import CalendarYear
from services.issues.calendar.rules import (
    MAX_YEAR,
    MIN_YEAR,
    CalendarSource,
    NamedDay,
    WorkingCalendar,
    YearNotCovered,
    YearSchedule,
    beijing_date,
    deadline_after,
    schedule_problems,
)
from services.issues.calendar.schemas import CalendarDay, CalendarYearPublic, CalendarYearUpdate
from services.kit.auth import Caller
from services.kit.db import savepoint, utcnow
from services.kit.errors import Forbidden, UnprocessableEntity
from services.kit.identity import Role
from services.kit.recent import Recent


def ensure_admin(caller: Caller) -> None:
    """The calendar is the county office's (整治办): only the admin role changes it."""
    if caller.role is not Role.admin:
        raise Forbidden("only the county office (admin) changes the calendar", code="calendar_admin_only")


def _days(stored: list[dict[str, str]]) -> tuple[NamedDay, ...]:
    return tuple(NamedDay(date.fromisoformat(item["date"]), item["name"]) for item in stored)


def _office_schedule(row: CalendarYear) -> YearSchedule:
    return YearSchedule(
        year=row.year,
        source=CalendarSource.office,
        holidays=_days(row.holidays),
        makeup_days=_days(row.makeup_days),
    )


async def _office_rows(session: AsyncSession, years: Iterable[int]) -> dict[int, CalendarYear]:
    wanted = sorted({year for year in years if MIN_YEAR <= year <= MAX_YEAR})
    if not wanted:
        return {}
    rows = await session.execute(select(CalendarYear).where(col(CalendarYear.year).in_(wanted)))
    return {row.year: row for row in rows.scalars()}


RecentYears = Recent[tuple[int, ...], dict[int, YearSchedule]]


async def schedules(
    session: AsyncSession, years: Iterable[int], recent: RecentYears | None = None
) -> dict[int, YearSchedule]:
    """Each year's schedule: the office's where it set one, else the library's, else weekends only (as read
    a moment ago, with `recent`)."""
    wanted = tuple(sorted(set(years)))

    async def read() -> dict[int, YearSchedule]:
        office = await _office_rows(session, wanted)
        return {
            year: _office_schedule(office[year]) if year in office else default_schedule(year)
            for year in wanted
        }

    return await recent.get(wanted, read) if recent is not None else await read()


async def working_calendar(
    session: AsyncSession, years: Iterable[int], recent: RecentYears | None = None
) -> WorkingCalendar:
    """The working calendar of `years` (the library's defaults merged with the office's changes).

    Ask for every year a count may reach: a deadline from late December runs into next year
    (`deadline_for` does this by itself; for `working_time_used`, `rules.years_between(start, deadline)`).
    """
    return _calendar_of(await schedules(session, years, recent))


@lru_cache(maxsize=64)
def _calendar_of_years(years: tuple[YearSchedule, ...]) -> WorkingCalendar:
    return WorkingCalendar.of(years)


def _calendar_of(found: dict[int, YearSchedule]) -> WorkingCalendar:
    return _calendar_of_years(tuple(found[year] for year in sorted(found)))


async def deadline_for(session: AsyncSession, start: datetime, working_days: int) -> datetime:
    """`deadline_after(start, working_days, …)` on the calendar of every year the count reaches."""
    return (await deadline_with_calendar(session, start, working_days))[0]


async def deadline_with_calendar(
    session: AsyncSession, start: datetime, working_days: int, recent: RecentYears | None = None
) -> tuple[datetime, WorkingCalendar]:
    """`deadline_for`, and the calendar it counted on: it covers every year from `start` to the deadline,
    so what is reckoned between the two (the light) needs no second read."""
    first = beijing_date(start).year
    last = first + 1
    calendar = await working_calendar(session, range(first, last + 1), recent)
    while True:
        try:
            return deadline_after(start, working_days, calendar), calendar
        except YearNotCovered as exc:
            last = exc.year
            calendar = await working_calendar(session, range(first, last + 1), recent)


def _public(schedule: YearSchedule, row: CalendarYear | None) -> CalendarYearPublic:
    calendar = WorkingCalendar.of([schedule])
    return CalendarYearPublic(
        year=schedule.year,
        source=schedule.source,
        library=LIBRARY,
        holidays=[
            CalendarDay(date=d.date, name=d.name) for d in sorted(schedule.holidays, key=lambda d: d.date)
        ],
        makeup_days=[
            CalendarDay(date=d.date, name=d.name) for d in sorted(schedule.makeup_days, key=lambda d: d.date)
        ],
        working_days=calendar.working_days_between(date(schedule.year, 1, 1), date(schedule.year, 12, 31)),
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else None,
    )


async def calendar_year(session: AsyncSession, year: int) -> CalendarYearPublic:
    row = (await _office_rows(session, [year])).get(year)
    return _public(_office_schedule(row) if row else default_schedule(year), row)


def _stored(days: list[CalendarDay]) -> list[dict[str, str]]:
    return [{"date": d.date.isoformat(), "name": d.name} for d in sorted(days, key=lambda d: d.date)]


async def replace_year(
    session: AsyncSession, caller: Caller, year: int, data: CalendarYearUpdate
) -> CalendarYearPublic:
    """Replace the year's holidays and make-up days with the office's (any year, past ones too)."""
    ensure_admin(caller)
    errors = schedule_problems(year, [d.date for d in data.holidays], [d.date for d in data.makeup_days])
    if errors:
        raise UnprocessableEntity(
            "; ".join(f"{e.field}: {e.message}" for e in errors[:5]), code="calendar_invalid", errors=errors
        )
    holidays, makeup_days, now, by = (
        _stored(data.holidays),
        _stored(data.makeup_days),
        utcnow(),
        str(caller.subject),
    )
    row = await session.get(CalendarYear, year)
    if row is None:
        try:
            async with savepoint(
                session, CalendarYear
            ):  # a concurrent first PUT of the same year: update theirs
                row = CalendarYear(
                    year=year, holidays=holidays, makeup_days=makeup_days, updated_at=now, updated_by=by
                )
                session.add(row)
                await session.flush()
        except IntegrityError:
            row = await session.get(CalendarYear, year, populate_existing=True)
            assert row is not None
    row.holidays, row.makeup_days, row.updated_at, row.updated_by = holidays, makeup_days, now, by
    session.add(row)
    await session.flush()
    return _public(_office_schedule(row), row)
