"""The working-day calendar over HTTP: the library's years, years nobody knows yet, the county office's
changes (and only the office's), and the merged calendar the lifecycle counts deadlines on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col

from services.issues.calendar.models import CalendarYear
from services.issues.calendar.rules import SHANGHAI, CalendarSource
from services.issues.calendar.service import deadline_for, working_calendar
from services.kit.state import state_of
from tests.support import rows
from tests.support.builders import GRID, TOWN, VILLAGE
from tests.support.problems import assert_problem, assert_unauthorized
from tests.support.tokens import subject_for

pytestmark = pytest.mark.asyncio

Auth = Callable[..., dict[str, str]]
Count = Callable[..., Any]

# What the office might put in for 2027 before a library release knows it.
SCHEDULE_2027: dict[str, Any] = {
    "holidays": [
        {"date": "2027-01-01", "name": "元旦"},
        {"date": "2027-02-05", "name": "春节"},
        {"date": "2027-02-06", "name": "春节"},
        {"date": "2027-02-07", "name": "春节"},
        {"date": "2027-02-08", "name": "春节"},
        {"date": "2027-02-09", "name": "春节"},
        {"date": "2027-02-10", "name": "春节"},
        {"date": "2027-02-11", "name": "春节"},
    ],
    "makeup_days": [{"date": "2027-02-20", "name": "春节调休上班"}],
}


def weekdays_of(year: int) -> int:
    days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    return sum((date(year, 1, 1) + timedelta(n)).weekday() < 5 for n in range(days))


async def stored_year(app: FastAPI, year: int) -> CalendarYear | None:
    return await rows.stored(state_of(app).database, CalendarYear, col(CalendarYear.year) == year)


# ---- reading ----


async def test_a_year_the_library_knows(client: httpx.AsyncClient, auth: Auth, count_rows: Count) -> None:
    r = await client.get("/v1/calendar/2026", headers=auth("village", VILLAGE))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["year"] == 2026
    assert body["source"] == "library"
    assert body["library"].startswith("chinesecalendar ")
    holidays = {day["date"]: day["name"] for day in body["holidays"]}
    # The State Council's 2026 notice: National Day 1–7 October, Spring Festival 15–23 February.
    assert all(holidays[f"2026-10-0{d}"] == "国庆节" for d in range(1, 8))
    assert all(holidays[f"2026-02-{d}"] == "春节" for d in range(15, 24))
    assert holidays["2026-01-01"] == "元旦"
    assert holidays["2026-09-25"] == "中秋节"
    assert holidays["2026-04-05"] == "清明节"
    assert holidays["2026-06-19"] == "端午节"
    assert [day["date"] for day in body["makeup_days"]] == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    assert body["makeup_days"][-1]["name"] == "国庆节调休上班"
    assert [day["date"] for day in body["holidays"]] == sorted(holidays)
    assert body["working_days"] == 248
    assert (body["updated_at"], body["updated_by"]) == (None, None)
    assert await count_rows(CalendarYear) == 0


async def test_2025_comes_from_the_library_too(client: httpx.AsyncClient, auth: Auth) -> None:
    body = (await client.get("/v1/calendar/2025", headers=auth("admin"))).json()
    assert body["source"] == "library"
    assert {"date": "2025-01-29", "name": "春节"} in body["holidays"]
    assert {"date": "2025-09-28", "name": "国庆节调休上班"} in body["makeup_days"]


async def test_a_year_nobody_knows_yet_is_weekends_only(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/calendar/2027", headers=auth("citizen", VILLAGE))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "weekends"
    assert (body["holidays"], body["makeup_days"]) == ([], [])
    assert body["working_days"] == weekdays_of(2027) == 261


@pytest.mark.parametrize("year", ["2000", "2100"])
async def test_the_first_and_last_years_are_served(client: httpx.AsyncClient, auth: Auth, year: str) -> None:
    r = await client.get(f"/v1/calendar/{year}", headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "weekends"


@pytest.mark.parametrize("year", ["1999", "2101", "0", "-2026", "twenty", "2026.5"])
async def test_years_outside_2000_to_2100_are_refused(
    client: httpx.AsyncClient, auth: Auth, year: str
) -> None:
    r = await client.get(f"/v1/calendar/{year}", headers=auth("admin"))
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "path.year"


@pytest.mark.parametrize(("role", "region"), [("grid", GRID), ("officer", TOWN), ("viewer", "370282")])
async def test_every_reader_sees_the_same_calendar(
    client: httpx.AsyncClient, auth: Auth, role: str, region: str
) -> None:
    mine = (await client.get("/v1/calendar/2026", headers=auth(role, region))).json()
    office = (await client.get("/v1/calendar/2026", headers=auth("admin"))).json()
    assert mine == office


async def test_reading_needs_issues_read(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/calendar/2026", headers=auth("integration", TOWN, scopes=["regions:read"]))
    assert_problem(r, 403, "insufficient_scope")


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_both_routes_need_a_token(client: httpx.AsyncClient, count_rows: Count, method: str) -> None:
    body = SCHEDULE_2027 if method == "PUT" else None
    assert_unauthorized(await client.request(method, "/v1/calendar/2027", json=body), "missing_token")
    r = await client.request(
        method, "/v1/calendar/2027", json=body, headers={"Authorization": "Bearer x.y.z"}
    )
    assert_unauthorized(r)
    assert await count_rows(CalendarYear) == 0


# ---- the office's changes ----


async def test_the_office_puts_in_next_years_schedule(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Count
) -> None:
    r = await client.put("/v1/calendar/2027", json=SCHEDULE_2027, headers=auth("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "office"
    assert body["holidays"] == SCHEDULE_2027["holidays"]
    assert body["makeup_days"] == SCHEDULE_2027["makeup_days"]
    # Seven weekdays off (1 Jan, 5 and 8–11 Feb … less the weekend), one Saturday worked.
    weekday_holidays = sum(date.fromisoformat(d["date"]).weekday() < 5 for d in SCHEDULE_2027["holidays"])
    assert body["working_days"] == weekdays_of(2027) - weekday_holidays + 1
    assert body["updated_by"] == str(subject_for("admin"))
    assert datetime.fromisoformat(body["updated_at"]) > datetime.now(UTC) - timedelta(minutes=1)

    row = await stored_year(app, 2027)
    assert row is not None
    assert row.holidays == SCHEDULE_2027["holidays"]
    assert row.makeup_days == SCHEDULE_2027["makeup_days"]
    assert row.updated_by == str(subject_for("admin"))
    assert await count_rows(CalendarYear) == 1

    again = await client.get("/v1/calendar/2027", headers=auth("village", VILLAGE))
    assert again.json() == body


async def test_a_put_replaces_the_whole_year_and_sorts_it(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Count
) -> None:
    await client.put("/v1/calendar/2027", json=SCHEDULE_2027, headers=auth("admin"))
    second = {
        "holidays": [{"date": "2027-10-02", "name": "国庆节"}, {"date": "2027-10-01", "name": " 国庆节 "}],
        "makeup_days": [],
    }
    r = await client.put("/v1/calendar/2027", json=second, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["holidays"] == [
        {"date": "2027-10-01", "name": "国庆节"},
        {"date": "2027-10-02", "name": "国庆节"},
    ]
    assert r.json()["makeup_days"] == []
    row = await stored_year(app, 2027)
    assert row is not None
    assert [d["date"] for d in row.holidays] == ["2027-10-01", "2027-10-02"]
    assert row.makeup_days == []
    assert await count_rows(CalendarYear) == 1


async def test_the_office_may_override_a_library_year(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    # A county-level extra day off, beside the State Council's National Day week.
    library = (await client.get("/v1/calendar/2026", headers=auth("admin"))).json()
    holidays = [*library["holidays"], {"date": "2026-10-09", "name": "县庆"}]
    r = await client.put(
        "/v1/calendar/2026",
        json={"holidays": holidays, "makeup_days": library["makeup_days"]},
        headers=auth("admin"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "office"
    assert r.json()["working_days"] == library["working_days"] - 1
    assert {"date": "2026-10-09", "name": "县庆"} in r.json()["holidays"]
    assert await stored_year(app, 2026) is not None


async def test_an_empty_schedule_leaves_weekends_only(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.put("/v1/calendar/2026", json={"holidays": [], "makeup_days": []}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "office"
    assert r.json()["working_days"] == weekdays_of(2026)


@pytest.mark.parametrize(
    ("role", "region"),
    [("inspector", "370282"), ("officer", TOWN), ("village", VILLAGE), ("citizen", VILLAGE)],
)
async def test_only_the_county_office_changes_the_calendar(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, role: str, region: str
) -> None:
    r = await client.put("/v1/calendar/2027", json=SCHEDULE_2027, headers=auth(role, region))
    body = assert_problem(r, 403, "calendar_admin_only")
    assert "admin" in body["detail"]
    assert await count_rows(CalendarYear) == 0
    assert (await client.get("/v1/calendar/2027", headers=auth(role, region))).json()["source"] == "weekends"


async def test_an_admin_token_without_issues_write_may_not_change(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    r = await client.put(
        "/v1/calendar/2027", json=SCHEDULE_2027, headers=auth("admin", scopes=["issues:read"])
    )
    assert_problem(r, 403, "insufficient_scope")
    assert await count_rows(CalendarYear) == 0


def _day(day: str, name: str = "节日") -> dict[str, str]:
    return {"date": day, "name": name}


SCHEDULE_ERRORS: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {
    "a holiday of another year": (
        {"holidays": [_day("2027-01-01"), _day("2028-01-01")], "makeup_days": []},
        [("body.holidays.1.date", "date_outside_year")],
    ),
    "a make-up day of another year": (
        {"holidays": [], "makeup_days": [_day("2026-12-26")]},
        [("body.makeup_days.0.date", "date_outside_year")],
    ),
    "a holiday twice": (
        {"holidays": [_day("2027-10-01"), _day("2027-10-01", "国庆")], "makeup_days": []},
        [("body.holidays.1.date", "date_repeated")],
    ),
    "a day both": (
        {"holidays": [_day("2027-02-06")], "makeup_days": [_day("2027-02-06")]},
        [("body.makeup_days.0.date", "date_both_holiday_and_makeup")],
    ),
    "a make-up weekday": (
        {"holidays": [], "makeup_days": [_day("2027-02-22")]},
        [("body.makeup_days.0.date", "makeup_day_not_weekend")],
    ),
}


@pytest.mark.parametrize(("body", "expected"), list(SCHEDULE_ERRORS.values()), ids=list(SCHEDULE_ERRORS))
async def test_a_schedule_that_does_not_fit_is_refused(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Count,
    body: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    r = await client.put("/v1/calendar/2027", json=body, headers=auth("admin"))
    problem = assert_problem(r, 422, "calendar_invalid")
    assert [(e["field"], e["type"]) for e in problem["errors"]] == expected
    assert await count_rows(CalendarYear) == 0


async def test_every_problem_is_reported_at_once(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    body = {
        "holidays": [_day("2026-10-01"), _day("2027-02-06")],
        "makeup_days": [_day("2027-02-06"), _day("2027-03-01")],
    }
    problem = assert_problem(
        await client.put("/v1/calendar/2027", json=body, headers=auth("admin")), 422, "calendar_invalid"
    )
    assert {(e["field"], e["type"]) for e in problem["errors"]} == {
        ("body.holidays.0.date", "date_outside_year"),
        ("body.makeup_days.0.date", "date_both_holiday_and_makeup"),
        ("body.makeup_days.1.date", "makeup_day_not_weekend"),
    }
    assert await count_rows(CalendarYear) == 0


async def test_a_refused_change_keeps_the_offices_earlier_schedule(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await client.put("/v1/calendar/2027", json=SCHEDULE_2027, headers=auth("admin"))
    before = await stored_year(app, 2027)
    bad = {"holidays": [_day("2027-13-01")], "makeup_days": []}
    assert_problem(
        await client.put("/v1/calendar/2027", json=bad, headers=auth("admin")), 422, "validation_failed"
    )
    after = await stored_year(app, 2027)
    assert before is not None and after is not None
    assert after.model_dump() == before.model_dump()


SIXTY_ONE = [_day((date(2027, 1, 1) + timedelta(n)).isoformat()) for n in range(61)]
BAD_BODIES: dict[str, dict[str, Any]] = {
    "61 holidays": {"holidays": SIXTY_ONE, "makeup_days": []},
    "61 make-up days": {"holidays": [], "makeup_days": SIXTY_ONE},
    "no make-up days": {"holidays": []},
    "no holidays": {"makeup_days": []},
    "holidays null": {"holidays": None, "makeup_days": []},
    "a date as a number": {"holidays": [{"date": 1800000000, "name": "元旦"}], "makeup_days": []},
    "a date with a time": {"holidays": [_day("2027-01-01T00:00:00")], "makeup_days": []},
    "a date written 2027/01/01": {"holidays": [_day("2027/01/01")], "makeup_days": []},
    "no such day": {"holidays": [_day("2027-02-30")], "makeup_days": []},
    "no name": {"holidays": [{"date": "2027-01-01"}], "makeup_days": []},
    "a blank name": {"holidays": [_day("2027-01-01", "  ")], "makeup_days": []},
    "a name turning text around": {"holidays": [_day("2027-01-01", "元\u202e旦")], "makeup_days": []},
    "an unknown property": {"holidays": [], "makeup_days": [], "source": "office"},
    "an unknown day property": {"holidays": [{**_day("2027-01-01"), "off": True}], "makeup_days": []},
}


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_bad_bodies_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, body: dict[str, Any]
) -> None:
    problem = assert_problem(
        await client.put("/v1/calendar/2027", json=body, headers=auth("admin")), 422, "validation_failed"
    )
    assert problem["errors"]
    assert await count_rows(CalendarYear) == 0


async def test_sixty_days_are_the_most(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    sixty = [_day((date(2027, 3, 1) + timedelta(n)).isoformat()) for n in range(60)]
    r = await client.put(
        "/v1/calendar/2027", json={"holidays": sixty, "makeup_days": []}, headers=auth("admin")
    )
    assert r.status_code == 200, r.text
    row = await stored_year(app, 2027)
    assert row is not None and len(row.holidays) == 60


@pytest.mark.parametrize("year", ["1999", "2101"])
async def test_putting_a_year_outside_the_range_is_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, year: str
) -> None:
    r = await client.put(
        f"/v1/calendar/{year}", json={"holidays": [], "makeup_days": []}, headers=auth("admin")
    )
    assert_problem(r, 422, "validation_failed")
    assert await count_rows(CalendarYear) == 0


# ---- what the lifecycle counts on ----


async def test_the_merged_calendar_takes_the_offices_years_and_the_librarys(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await client.put("/v1/calendar/2027", json=SCHEDULE_2027, headers=auth("admin"))
    async with state_of(app).database.transaction() as session:
        calendar = await working_calendar(session, [2026, 2027])
    assert calendar.years == frozenset({2026, 2027})
    assert calendar.is_working_day(date(2026, 10, 8))  # the library's: worked after the holiday
    assert not calendar.is_working_day(date(2026, 10, 7))  # the library's National Day
    assert calendar.is_working_day(date(2026, 10, 10))  # the library's make-up Saturday
    assert not calendar.is_working_day(date(2027, 2, 9))  # the office's Spring Festival
    assert calendar.is_working_day(date(2027, 2, 20))  # the office's make-up Saturday
    assert calendar.is_working_day(date(2027, 2, 12))


async def test_a_deadline_from_late_december_counts_next_years_holidays(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    start = datetime(2026, 12, 30, 16, 0, tzinfo=SHANGHAI)  # a Wednesday
    async with state_of(app).database.transaction() as session:
        weekends_only = await deadline_for(session, start, 2)
    # Without 2027's schedule: Thursday 31 December and Friday 1 January.
    assert weekends_only.astimezone(SHANGHAI).date() == date(2027, 1, 1)

    await client.put("/v1/calendar/2027", json=SCHEDULE_2027, headers=auth("admin"))
    async with state_of(app).database.transaction() as session:
        deadline = await deadline_for(session, start, 2)
        long = await deadline_for(session, start, 300)
    # 1 January is the office's holiday now: Thursday 31 December and Monday 4 January.
    assert deadline == datetime(2027, 1, 4, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    assert deadline.tzinfo is UTC
    # 300 working days run into 2028, which nobody knows yet: weekends only there.
    assert long.astimezone(SHANGHAI).year == 2028


async def test_the_source_of_each_year(client: httpx.AsyncClient, auth: Auth) -> None:
    await client.put("/v1/calendar/2027", json=SCHEDULE_2027, headers=auth("admin"))
    sources = [
        (await client.get(f"/v1/calendar/{year}", headers=auth("admin"))).json()["source"]
        for year in (2026, 2027, 2028)
    ]
    assert sources == [CalendarSource.library, CalendarSource.office, CalendarSource.weekends]
