"""What a report reads: the category and the calendar as read a moment ago, the county its code counts in.

A report keeps its statements few: categories and the working calendar are kept per process for
`reference_cache_seconds` (a change through this process applies at once, through another replica within
that time), and the region's county is read with the region.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from services.issues.calendar.rules import SHANGHAI
from services.issues.deps import IssuesState
from services.issues.regions.models import Region
from services.kit.db import utcnow
from services.kit.state import typed_state
from tests.issues.lifecycle import report
from tests.support.apps import Service, client_for, running
from tests.support.builders import PROVINCE, VILLAGE, region_path
from tests.support.problems import assert_problem
from tests.support.tokens import TokenMinter

Auth = Callable[..., dict[str, str]]


async def _deadline(client: httpx.AsyncClient, auth: Auth, **changes: Any) -> datetime:
    answer = await client.post("/v1/issues", json=report(**changes), headers=auth("inspector"))
    assert answer.status_code == 201, answer.text
    return datetime.fromisoformat(answer.json()["deadline"])


async def test_a_category_retired_here_takes_no_report_from_the_next_request_on(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    await _deadline(client, auth)  # the category is now kept by this process
    retired = await client.patch(
        "/v1/categories/luan-dui-fang", json={"active": False}, headers=auth("admin")
    )
    assert retired.status_code == 200, retired.text
    refused = await client.post("/v1/issues", json=report(), headers=auth("inspector"))
    assert_problem(refused, 422, "category_inactive")
    again = await client.patch("/v1/categories/luan-dui-fang", json={"active": True}, headers=auth("admin"))
    assert again.status_code == 200
    await _deadline(client, auth)


async def test_the_offices_calendar_change_moves_the_next_reports_deadline_at_once(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    before = await _deadline(client, auth)
    # The first working day after today becomes a holiday of the office's: the deadline moves one later.
    today = utcnow().astimezone(SHANGHAI).date()
    day = today + timedelta(days=1)
    year = (await client.get(f"/v1/calendar/{day.year}", headers=auth("admin"))).json()
    taken = {d["date"] for d in year["holidays"]} | {d["date"] for d in year["makeup_days"]}
    while day.weekday() >= 5 or day.isoformat() in taken:
        day += timedelta(days=1)
        if day.year != year["year"]:
            year = (await client.get(f"/v1/calendar/{day.year}", headers=auth("admin"))).json()
            taken = {d["date"] for d in year["holidays"]} | {d["date"] for d in year["makeup_days"]}
    assert day <= before.astimezone(SHANGHAI).date()
    put = await client.put(
        f"/v1/calendar/{day.year}",
        json={
            "holidays": [*year["holidays"], {"date": day.isoformat(), "name": "试验假日"}],
            "makeup_days": year["makeup_days"],
        },
        headers=auth("admin"),
    )
    assert put.status_code == 200, put.text
    after = await _deadline(client, auth)
    assert after.astimezone(SHANGHAI).date() > before.astimezone(SHANGHAI).date()


async def test_another_replicas_change_applies_once_its_kept_categories_have_expired(
    client: httpx.AsyncClient,
    auth: Auth,
    app: FastAPI,
    service: Service,
    settings: Any,
    test_minter: TokenMinter,
) -> None:
    # Two processes on one database: this one keeps what it read; the other retires the category.
    await _deadline(client, auth)
    other = service.build(settings, test_minter.verifier())
    async with running(other), client_for(other, service.base_url) as elsewhere:
        retired = await elsewhere.patch(
            "/v1/categories/luan-dui-fang", json={"active": False}, headers=auth("admin")
        )
        assert retired.status_code == 200, retired.text
        assert_problem(
            await elsewhere.post("/v1/issues", json=report(), headers=auth("inspector")),
            422,
            "category_inactive",
        )
    # Here it is still the category read a moment ago (within `reference_cache_seconds`)…
    await _deadline(client, auth)
    # … until that time has passed.
    kept = typed_state(app, IssuesState).recent_categories
    clock = kept._clock
    kept._clock = lambda: clock() + settings.reference_cache_seconds + 1
    assert_problem(
        await client.post("/v1/issues", json=report(), headers=auth("inspector")), 422, "category_inactive"
    )


async def test_codes_count_per_county_and_per_root_where_the_tree_has_no_county(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    answer = await client.post("/v1/issues", json=report(region=VILLAGE), headers=auth("inspector"))
    assert answer.json()["code"].startswith("370282-")
    # A town straight under the province, and a village of it: no county above them.
    state = typed_state(app, IssuesState)
    async with state.database.transaction() as session:
        province = (
            await session.execute(Region.__table__.select().where(Region.__table__.c.code == PROVINCE))
        ).one()
        town = Region(
            code="37T9",
            name="直属镇",
            level="town",
            parent_id=province.id,
            path=f"{region_path(PROVINCE)}37T9/",
        )
        session.add(town)
        await session.flush()
        session.add(
            Region(
                code="37T9V1", name="直属村", level="village", parent_id=town.id, path=f"{town.path}37T9V1/"
            )
        )
    answer = await client.post("/v1/issues", json=report(region="37T9V1"), headers=auth("admin", PROVINCE))
    assert answer.status_code == 201, answer.text
    county, _, number = answer.json()["code"].split("-")
    assert (county, number) == ("37", "000001")
