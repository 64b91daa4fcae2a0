"""Calendar routes: the working-day calendar deadlines are counted on, set by the county office."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from services.issues.calendar import service
from services.issues.calendar.rules import MAX_YEAR, MIN_YEAR
from services.issues.calendar.schemas import CalendarYearPublic, CalendarYearUpdate
from services.issues.deps import SessionDep, StateDep
from services.kit.auth import Caller, require_scope
from services.kit.errors import problem_doc, problem_docs
from services.kit.identity import Scope

router = APIRouter(tags=["calendar"])

CalendarReaderDep = Annotated[Caller, Depends(require_scope(Scope.issues_read))]


async def _county_office(caller: Annotated[Caller, Depends(require_scope(Scope.issues_write))]) -> Caller:
    service.ensure_admin(caller)
    return caller


CalendarAdminDep = Annotated[Caller, Depends(_county_office)]
Year = Annotated[
    int,
    Path(
        ge=MIN_YEAR, le=MAX_YEAR, description="A year from 2000 to 2100 (others answer 422).", examples=[2026]
    ),
]


@router.get(
    "/v1/calendar/{year}",
    response_model=CalendarYearPublic,
    summary="The working-day calendar of a year",
    description="Deadlines (整改时限) are counted in working days on this calendar: Monday to Friday, less "
    "the public holidays, plus the make-up working days (调休). By default the State Council's schedule "
    "as the kept library knows it (`source: library`; it covers the years published before its release, "
    "2004–2026 for chinesecalendar 1.11.0); a year the county office has set is `office`; a year nobody "
    "knows yet (next year's schedule is usually published in November) is `weekends`: only Saturdays and "
    "Sundays off until the office puts it in. County-wide: the same for every caller.",
    responses=problem_docs(403),
)
async def get_calendar_year(year: Year, session: SessionDep, caller: CalendarReaderDep) -> CalendarYearPublic:
    return await service.calendar_year(session, year)


@router.put(
    "/v1/calendar/{year}",
    response_model=CalendarYearPublic,
    summary="Set a year's holidays and make-up working days",
    description="Replaces the year's whole schedule (the library's, or the office's before) with the one "
    "given; the answer is the year as it now stands (`source: office`). Any year from 2000 to 2100, past "
    "ones too. Refused with 422 `calendar_invalid` (each problem in `errors`): a date outside the year "
    "(`date_outside_year`), listed twice (`date_repeated`), both a holiday and a make-up day "
    "(`date_both_holiday_and_makeup`), a make-up day on a weekday (`makeup_day_not_weekend`); more than 60 "
    "in a list answers 422 `validation_failed`. Deadlines already set keep their date; new ones are "
    "counted on the new schedule. The county office alone: role `admin` with `issues:write`, else 403 "
    "`calendar_admin_only`.",
    responses={
        403: problem_doc(
            "Forbidden: only the county office (role `admin`, with `issues:write`) changes the calendar "
            "(`calendar_admin_only`; a token without the scope: `insufficient_scope`)",
            "calendar_admin_only",
            403,
        ),
        422: problem_doc(
            "The schedule does not fit the year (`calendar_invalid`, see `errors`) or the body is malformed "
            "(`validation_failed`)",
            "calendar_invalid",
            422,
        ),
    },
)
async def put_calendar_year(
    year: Year, body: CalendarYearUpdate, session: SessionDep, caller: CalendarAdminDep, state: StateDep
) -> CalendarYearPublic:
    stored = await service.replace_year(session, caller, year, body)
    state.recent_years.clear_after_commit(session)
    return stored
