"""Where the lifecycle meets the taxonomy and the calendar: categories, field checks, deadlines, the light."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.issues.calendar.rules import (
    Light,
    WorkingCalendar,
    moment_of_share,
    years_between,
)
from services.issues.calendar.service import RecentYears, deadline_with_calendar, working_calendar
from services.issues.cases.models import Issue
from services.issues.categories.models import Category
from services.issues.categories.rules import check_fields, deadline_days_for, specs_of
from services.kit.errors import FieldError, UnprocessableEntity

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
Calendar = WorkingCalendar


def field_errors(found: Category, values: dict[str, Any]) -> list[FieldError]:
    return check_fields(specs_of(found.fields), values)


YELLOW_SHARE = 0.8


def yellow_at(start: datetime, deadline: datetime, cal: WorkingCalendar) -> datetime:
    """The moment 80 % of the working time from `start` to `deadline` is used. Stored with the deadline, so
    lists filter by light in SQL."""
    return moment_of_share(start, deadline, YELLOW_SHARE, cal)


def check_ahead(deadline: datetime | None, now: datetime) -> None:
    """A deadline given by hand lies ahead (else 422 `deadline_passed`)."""
    if deadline is not None and deadline <= now:
        raise UnprocessableEntity(f"the deadline {deadline.isoformat()} has passed", code="deadline_passed")


async def apply_deadline(
    session: AsyncSession,
    issue: Issue,
    deadline: datetime | None,
    *,
    start: datetime,
    default_from: Category | None = None,
    recent: RecentYears | None = None,
) -> None:
    """Set the issue's deadline (or, with `default_from`, the category's default counted in working days
    from `start`) and the moment its light turns yellow; `recent`: the calendar as read a moment ago."""
    issue.deadline, issue.yellow_at = await deadline_and_yellow(
        session, deadline, issue.severity, start=start, default_from=default_from, recent=recent
    )


async def deadline_and_yellow(
    session: AsyncSession,
    deadline: datetime | None,
    severity: str,
    *,
    start: datetime,
    default_from: Category | None = None,
    recent: RecentYears | None = None,
) -> tuple[datetime | None, datetime | None]:
    """`apply_deadline`'s two moments, for an issue of `severity` not built as an `Issue` (stored and
    answered in UTC, whatever offset it was given in)."""
    cal: WorkingCalendar | None = None
    if deadline is not None:
        deadline = deadline.astimezone(UTC)
    if deadline is None and default_from is not None:
        days = deadline_days_for(default_from, severity)
        deadline, cal = await deadline_with_calendar(session, start, days, recent)  # one read of the calendar
    if deadline is None:
        return None, None
    if cal is None:
        cal = await working_calendar(session, years_between(start, deadline), recent)
    return deadline, yellow_at(start, deadline, cal)


def light_of(issue: Issue, now: datetime) -> Light | None:
    """The traffic light of an open issue with a deadline."""
    return light_at(issue.deadline, issue.yellow_at, now)


def light_at(deadline: datetime | None, yellow_at: datetime | None, now: datetime) -> Light | None:
    """The traffic light of an open issue with this deadline and yellow moment."""
    if deadline is None:
        return None
    if now > deadline:
        return Light.red
    if yellow_at is not None and now >= yellow_at:
        return Light.yellow
    return Light.green
