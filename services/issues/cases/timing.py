"""Where the lifecycle meets the taxonomy and the calendar: categories, field checks, deadlines, the light."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.calendar.rules import Light, WorkingCalendar, deadline_after, light, working_time_used
from services.issues.calendar.service import working_calendar
from services.issues.cases.models import Issue
from services.issues.categories.models import Category
from services.issues.categories.rules import check_fields, deadline_days_for, specs_of
from services.kit.errors import FieldError, UnprocessableEntity

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
Calendar = WorkingCalendar


async def category(session: AsyncSession, code: str, *, for_new: bool = True) -> Category:
    """The category by code (any case); for a new issue it must be active."""
    found = (
        await session.execute(select(Category).where(func.lower(col(Category.code)) == code.lower()))
    ).scalar_one_or_none()
    if found is None or (for_new and not found.active):
        raise UnprocessableEntity(
            f"category {code} is not one of GET /v1/categories" + (" in use" if found else ""),
            code="unknown_category",
            errors=[
                FieldError(field="body.category", message="unknown or retired category", type="category")
            ],
        )
    return found


def field_errors(found: Category, values: dict[str, Any]) -> list[FieldError]:
    return check_fields(specs_of(found.fields), values)


async def calendar(session: AsyncSession, years: Iterable[int]) -> WorkingCalendar:
    wanted = set(years)
    return await working_calendar(session, wanted | {max(wanted) + 1})


YELLOW_SHARE = 0.8


def yellow_at(start: datetime, deadline: datetime, cal: WorkingCalendar) -> datetime:
    """The moment 80 % of the working time from `start` to `deadline` is used (found by bisection: the
    share used only grows with time). Stored with the deadline, so lists filter by light in SQL."""
    low, high = start, deadline
    if high <= low:
        return deadline
    for _ in range(40):  # to well under a second over a year
        middle = low + (high - low) / 2
        if working_time_used(start, deadline, middle, cal) < YELLOW_SHARE:
            low = middle
        else:
            high = middle
    return high


async def apply_deadline(
    session: AsyncSession,
    issue: Issue,
    deadline: datetime | None,
    *,
    start: datetime,
    default_from: Category | None = None,
) -> None:
    """Set the issue's deadline (or, with `default_from`, the category's default counted from `start`) and
    the moment its light turns yellow."""
    local_year = start.astimezone(CHINA).year
    years = {local_year, local_year + 1} | ({deadline.astimezone(CHINA).year} if deadline else set())
    cal = await calendar(session, years)
    if deadline is None and default_from is not None:
        deadline = deadline_after(start, deadline_days_for(default_from, issue.severity), cal)
    issue.deadline = deadline
    issue.yellow_at = yellow_at(start, deadline, cal) if deadline is not None else None


def light_of(issue: Issue, now: datetime) -> Light | None:
    """The traffic light of an open issue with a deadline."""
    if issue.deadline is None:
        return None
    if now > issue.deadline:
        return Light.red
    if issue.yellow_at is not None and now >= issue.yellow_at:
        return Light.yellow
    return Light.green


def check_light_rule(share: float) -> Light:
    """The calendar's rule for a share of time used (kept equal to `light_of` by the tests)."""
    return light(share)
