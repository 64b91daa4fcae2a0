"""The rectification statistics through the API, on SQLite and PostgreSQL: the seeds' 92.1 %, each figure's
definition against the pure rules, every grouping and page, the region scope and every refusal."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from services.issues.cases.models import Issue
from services.issues.cases.rules import Status
from services.issues.regions.models import Level, Region
from services.issues.stats.rules import IssueFacts, figures, median, tally
from services.kit.db import utcnow
from services.kit.state import state_of
from tests.issues.issue_rows import T0, insert_issues, issue_row
from tests.issues.lifecycle import report
from tests.support.builders import (
    COUNTY,
    FAR_GRID,
    FAR_VILLAGE,
    FAR_VILLAGE_2,
    GRID,
    GRID_2,
    NEIGHBOUR,
    OTHER_TOWN,
    PROVINCE,
    TOWN,
    TOWN_VILLAGE,
    VILLAGE,
    ZONE,
    codes_under,
)
from tests.support.problems import assert_problem, assert_unauthorized

Auth = Callable[..., dict[str, str]]
STATS = "/v1/stats/rectification"
WINDOW = {"from": "2026-01-01", "to": "2027-01-01"}  # Beijing dates: 2025-12-31T16:00Z to 2026-12-31T16:00Z
FIGURES = (
    "found",
    "fixed",
    "rejected",
    "open",
    "overdue",
    "closed_on_time",
    "reworked",
    "extended",
    "rectification_rate",
    "on_time_rate",
    "rework_rate",
    "extension_rate",
    "mean_days_to_close",
    "median_days_to_close",
)
PLACES = [VILLAGE, NEIGHBOUR, TOWN_VILLAGE, GRID, GRID_2, FAR_VILLAGE, FAR_VILLAGE_2, FAR_GRID]


async def _stats(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = await client.get(STATS, params={**WINDOW, **params}, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _as_expected(facts: list[IssueFacts], now: datetime) -> dict[str, Any]:
    """What the rules say the figures of these issues are (the median from Python)."""
    counts = tally(facts, now)
    days = [(f.closed_at - f.reported_at).total_seconds() / 86400 for f in facts if f.closed_at]
    shown = figures(counts, median(days))
    return {
        "found": counts.found,
        "fixed": counts.fixed,
        "rejected": counts.rejected,
        "open": counts.open,
        "overdue": counts.overdue,
        "closed_on_time": counts.closed_on_time,
        "reworked": counts.reworked,
        "extended": counts.extended,
        "rectification_rate": shown.rectification_rate,
        "on_time_rate": shown.on_time_rate,
        "rework_rate": shown.rework_rate,
        "extension_rate": shown.extension_rate,
        "mean_days_to_close": shown.mean_days_to_close,
        "median_days_to_close": shown.median_days_to_close,
    }


def _assert_figures(row: dict[str, Any], expected: dict[str, Any]) -> None:
    for name in FIGURES:
        value, wanted = row[name], expected[name]
        if isinstance(wanted, float):
            assert value == pytest.approx(wanted, rel=1e-9, abs=1e-6), name
        else:
            assert value == wanted, name


def _facts(row: dict[str, Any]) -> IssueFacts:
    return IssueFacts(
        status=Status(row["status"]),
        reported_at=row["reported_at"],
        closed_at=row["closed_at"],
        deadline=row["deadline"],
        rework_count=row["rework_count"],
        extension_count=row["extension_count"],
    )


def _generated(total_found: int, fixed: int, rejected: int, *, seed: int = 8) -> list[dict[str, Any]]:
    """A county's year: `total_found` real problems over its villages and grids, `fixed` of them closed
    (some late, some reworked), some extended, the open ones some overdue; and `rejected` reports."""
    rnd = random.Random(seed)
    rows = []
    statuses = ["closed"] * fixed + [
        rnd.choice(["reported", "assigned", "submitted"]) for _ in range(total_found - fixed)
    ]
    statuses += ["rejected"] * rejected
    rnd.shuffle(statuses)
    for number, status in enumerate(statuses, start=1):
        reported = T0 - timedelta(days=60) + timedelta(minutes=rnd.randrange(0, 60 * 24 * 200))
        deadline = reported + timedelta(days=rnd.choice([3, 5, 7, 15]))
        closed = reported + timedelta(minutes=rnd.randrange(30, 60 * 24 * 20)) if status == "closed" else None
        rows.append(
            issue_row(
                number,
                region=rnd.choice(PLACES),
                status=status,
                reported_at=reported,
                closed_at=closed,
                deadline=None if status == "reported" else deadline,
                category=rnd.choice(["luan-dui-fang", "luan-reng-dao", "sheng-huo-la-ji"]),
                source=rnd.choice(["inspection", "grid", "citizen", "hotline"]),
                rework_count=rnd.choice([0, 0, 0, 1, 2]) if status in ("closed", "assigned") else 0,
                extension_count=rnd.choice([0] * 8 + [1, 2]),
            )
        )
    return rows


# ---- the seeds' figure ----


async def test_the_seeds_1104_found_and_1017_fixed_come_out_as_92_1_percent(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Callable[..., Any]
) -> None:
    rows = _generated(1104, 1017, rejected=37)
    await insert_issues(app, rows)
    assert await count_rows(Issue) == 1104 + 37
    body = await _stats(client, auth("inspector"), region=COUNTY)
    total = body["total"]
    assert (total["found"], total["fixed"], total["rejected"], total["open"]) == (1104, 1017, 37, 87)
    assert total["rectification_rate"] == 1017 / 1104
    assert round(total["rectification_rate"] * 100, 1) == 92.1
    # Every figure is what the rules make of the same rows (the SQL sums and the median on this backend).
    now = utcnow()
    expected_total = _as_expected([_facts(r) for r in rows], now)
    _assert_figures(total, expected_total)
    # One row per town, each its whole subtree; the towns add up to the county.
    assert [item["key"] for item in body["items"]] == [TOWN, OTHER_TOWN]
    for item in body["items"]:
        under = codes_under(item["key"])
        _assert_figures(item, _as_expected([_facts(r) for r in rows if r["region_code"] in under], now))
    for name in ("found", "fixed", "rejected", "open", "overdue", "closed_on_time", "reworked", "extended"):
        assert sum(item[name] for item in body["items"]) == total[name], name
    # Every grouping adds up to the same total.
    for group_by in ("category", "source", "month"):
        grouped = await _stats(client, auth("inspector"), region=COUNTY, group_by=group_by)
        assert grouped["total"] == total
        assert sum(item["found"] for item in grouped["items"]) == 1104
        assert sum(item["fixed"] for item in grouped["items"]) == 1017
        assert sum(item["rejected"] for item in grouped["items"]) == 37
    assert await count_rows(Issue) == 1104 + 37  # reading stores nothing


async def test_each_figure_and_the_exact_median(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    day = timedelta(days=1)
    rows = [
        issue_row(1, status="closed", closed_at=T0 + 1 * day),
        issue_row(2, status="closed", closed_at=T0 + 2 * day, rework_count=1),
        issue_row(3, status="closed", closed_at=T0 + 4 * day, extension_count=1),
        issue_row(4, status="closed", closed_at=T0 + 10 * day),  # the deadline was 7 days: late
        issue_row(5, status="assigned", deadline=utcnow() + 30 * day, extension_count=2),
        issue_row(6, status="submitted", deadline=T0 + day),  # overdue
        issue_row(7, status="reported"),  # no deadline: never overdue
        issue_row(8, status="rejected", extension_count=1),
    ]
    await insert_issues(app, rows)
    body = await _stats(client, auth("officer", TOWN), region=VILLAGE)
    assert body["region"] == VILLAGE and body["group_by"] == "child"
    assert body["from"] == "2025-12-31T16:00:00Z" and body["to"] == "2026-12-31T16:00:00Z"
    expected = {
        "found": 7,
        "fixed": 4,
        "rejected": 1,
        "open": 3,
        "overdue": 1,
        "closed_on_time": 3,
        "reworked": 1,
        "extended": 2,
        "rectification_rate": 4 / 7,
        "on_time_rate": 3 / 4,
        "rework_rate": 1 / 4,
        "extension_rate": 2 / 7,
        "mean_days_to_close": 17 / 4,
        "median_days_to_close": 3.0,  # the mean of the middle two of 1, 2, 4, 10
    }
    _assert_figures(body["total"], expected)
    # The village's rows are its grids; its own issues count in the total only.
    assert [(i["key"], i["found"]) for i in body["items"]] == [(GRID, 0), (GRID_2, 0)]
    assert body["items"][0]["rectification_rate"] is None and body["items"][0]["median_days_to_close"] is None


async def test_an_odd_count_has_the_middle_value_as_its_median(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    hours = [5, 49, 30, 200, 7]
    await insert_issues(
        app,
        [
            issue_row(n, region=GRID, status="closed", closed_at=T0 + timedelta(hours=h))
            for n, h in enumerate(hours, start=1)
        ],
    )
    body = await _stats(client, auth("admin"), region=VILLAGE)
    assert body["items"][0]["key"] == GRID
    for row in (body["items"][0], body["total"]):
        assert row["median_days_to_close"] == pytest.approx(30 / 24)
        assert row["mean_days_to_close"] == pytest.approx(sum(hours) / 5 / 24)


async def test_the_window_is_from_inclusive_to_exclusive_in_beijing_time(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    march = datetime(2026, 2, 28, 16, tzinfo=UTC)  # 00:00 on 1 March in Beijing
    await insert_issues(
        app,
        [
            issue_row(1, reported_at=march - timedelta(microseconds=1)),  # 28 February, 23:59:59 in Beijing
            issue_row(2, reported_at=march),
            issue_row(3, reported_at=march + timedelta(days=30, hours=23)),  # 31 March, 23:00
            issue_row(4, reported_at=datetime(2026, 3, 31, 16, tzinfo=UTC)),  # 1 April
        ],
    )
    admin = auth("admin")
    by_date = await _stats(client, admin, **{"from": "2026-03-01", "to": "2026-04-01"})
    assert by_date["total"]["found"] == 2
    by_time = await _stats(
        client, admin, **{"from": "2026-02-28T16:00:00Z", "to": "2026-03-31T16:00:00+00:00"}
    )
    assert by_time["total"] == by_date["total"]
    months = await _stats(client, admin, group_by="month", **{"from": "2026-02-01", "to": "2026-05-01"})
    assert [(m["key"], m["name"], m["found"]) for m in months["items"]] == [
        ("2026-02", "2026年2月", 1),
        ("2026-03", "2026年3月", 2),
        ("2026-04", "2026年4月", 1),
    ]


async def test_the_default_window_is_this_year_so_far_and_the_default_region_the_callers(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    now = utcnow()
    await insert_issues(
        app,
        [
            issue_row(1, reported_at=now - timedelta(minutes=5)),
            issue_row(2, region=FAR_VILLAGE, reported_at=now - timedelta(minutes=5)),
            issue_row(3, reported_at=datetime(now.year - 1, 6, 1, tzinfo=UTC)),
        ],
    )
    answer = await client.get(STATS, headers=auth("officer", TOWN))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["region"] == TOWN and body["total"]["found"] == 1
    assert [(i["key"], i["name"], i["found"]) for i in body["items"]] == [
        (ZONE, "蓝村第一管区", 1),
        (TOWN_VILLAGE, "西河村", 0),
    ]
    assert (
        datetime.fromisoformat(body["from"])
        <= now - timedelta(minutes=5)
        < datetime.fromisoformat(body["to"])
    )
    # A service's token covers the whole tree: its rows are the roots.
    whole = await client.get(STATS, headers=auth("service", "*"))
    assert whole.status_code == 200, whole.text
    assert whole.json()["region"] == "*" and [i["key"] for i in whole.json()["items"]] == [PROVINCE]
    assert whole.json()["total"]["found"] == 2


# ---- groupings and pages ----


async def test_category_source_and_month_rows(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    await insert_issues(
        app,
        [
            issue_row(
                1,
                category="luan-reng-dao",
                source="citizen",
                status="closed",
                closed_at=T0 + timedelta(days=1),
            ),
            issue_row(2, category="luan-reng-dao", source="grid"),
            issue_row(3, category="luan-dui-fang", source="citizen", status="rejected"),
            issue_row(4, category="luan-dui-fang", reported_at=datetime(2026, 1, 31, 16, tzinfo=UTC)),
        ],
    )
    admin = auth("admin")
    categories = await _stats(client, admin, group_by="category")
    assert [(i["key"], i["name"], i["found"], i["fixed"], i["rejected"]) for i in categories["items"]] == [
        ("luan-dui-fang", "乱堆乱放", 1, 0, 1),
        ("luan-reng-dao", "乱扔乱倒", 2, 1, 0),
    ]
    sources = await _stats(client, admin, group_by="source")
    assert len(sources["items"]) == 7  # every source, zeros included
    by_source = {i["key"]: i for i in sources["items"]}
    assert by_source["citizen"]["name"] == "群众随手拍" and by_source["citizen"]["found"] == 1
    assert by_source["citizen"]["rejected"] == 1 and by_source["inspection"]["found"] == 1
    assert by_source["open311"]["found"] == 0 and by_source["open311"]["rectification_rate"] is None
    months = await _stats(client, admin, group_by="month")
    assert [m["key"] for m in months["items"]] == [f"2026-{m:02d}" for m in range(1, 13)]
    by_month = {m["key"]: m["found"] for m in months["items"]}
    assert by_month["2026-02"] == 1 and by_month["2026-03"] == 2 and sum(by_month.values()) == 3


async def test_regions_come_in_cursor_pages_by_child_depth_or_level(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    rows = [issue_row(n, region=place) for n, place in enumerate(PLACES, start=1)]
    await insert_issues(app, rows)
    admin = auth("admin")
    villages = [VILLAGE, NEIGHBOUR, TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2]
    expected = {VILLAGE: 3, NEIGHBOUR: 1, TOWN_VILLAGE: 1, FAR_VILLAGE: 2, FAR_VILLAGE_2: 1}
    # Every village of the county, whether under a 管区 or straight under its town, two a page.
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(5):
        params = {"region": COUNTY, "level": "village", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await _stats(client, admin, **params)
        assert page["limit"] == 2 and len(page["items"]) <= 2
        if cursor is None:
            assert page["total"]["found"] == len(PLACES)  # the whole county, on the first page
        else:
            assert page["total"] is None  # it does not change from page to page
        seen += [(i["key"], i["found"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(expected.items()) and len(seen) == 5
    assert {k for k, _ in seen} == set(villages)
    # Two levels below the county: the 管区 and the villages straight under a town.
    deep = await _stats(client, admin, region=COUNTY, depth=2)
    assert [(i["key"], i["found"]) for i in deep["items"]] == [
        (ZONE, 4),
        (TOWN_VILLAGE, 1),
        (FAR_VILLAGE, 2),
        (FAR_VILLAGE_2, 1),
    ]
    assert (await _stats(client, admin, region=COUNTY, depth=1))["items"] == (
        await _stats(client, admin, region=COUNTY)
    )["items"]
    # A cursor of one grouping is no cursor of another.
    first = await _stats(client, admin, region=COUNTY, level="village", limit=1)
    refused = await client.get(
        STATS, params={**WINDOW, "group_by": "source", "cursor": first["next_cursor"]}, headers=admin
    )
    assert_problem(refused, 400, "invalid_cursor")
    assert_problem(
        await client.get(STATS, params={**WINDOW, "cursor": "not-a-cursor"}, headers=admin),
        400,
        "invalid_cursor",
    )


async def test_every_village_of_a_county_comes_in_one_call(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    """More villages than a list page holds (200): the statistics answer them all at once, as the scoring
    service asks for a county's villages."""
    async with state_of(app).database.transaction() as session:
        town = (await session.execute(select(Region).where(col(Region.code) == OTHER_TOWN))).scalar_one()
        for n in range(260):
            code = f"{OTHER_TOWN}{500 + n:03d}"
            session.add(
                Region(
                    code=code,
                    name=f"新村{n}",
                    level=Level.village,
                    parent_id=town.id,
                    path=f"{town.path}{code}/",
                )
            )
    new_village = issue_row(1) | {
        "region_code": f"{OTHER_TOWN}700",
        "region_path": f"{town.path}{OTHER_TOWN}700/",
    }
    await insert_issues(app, [new_village, issue_row(2, region=VILLAGE)])
    page = await _stats(client, auth("admin"), region=COUNTY, level="village", limit=2000)
    keys = [i["key"] for i in page["items"]]
    assert len(keys) == 260 + 5 and page["next_cursor"] is None and page["limit"] == 2000
    found = {i["key"]: i["found"] for i in page["items"]}
    assert found[f"{OTHER_TOWN}700"] == 1 and found[VILLAGE] == 1 and sum(found.values()) == 2


async def test_category_rows_page_by_key(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    await insert_issues(
        app,
        [issue_row(n, category=c) for n, c in enumerate(["luan-dui-fang", "luan-reng-dao", "ting-yuan"], 1)],
    )
    admin = auth("admin")
    first = await _stats(client, admin, group_by="category", limit=2)
    second = await _stats(client, admin, group_by="category", limit=2, cursor=first["next_cursor"])
    assert [i["key"] for i in first["items"]] == ["luan-dui-fang", "luan-reng-dao"]
    assert [i["key"] for i in second["items"]] == ["ting-yuan"] and second["next_cursor"] is None


# ---- issues made through the API ----


async def test_issues_moved_through_the_lifecycle_are_counted(client: httpx.AsyncClient, auth: Auth) -> None:
    inspector, officer, village, admin = (
        auth("inspector"),
        auth("officer", TOWN),
        auth("village", VILLAGE),
        auth("admin"),
    )
    citizen = auth("citizen", VILLAGE)
    reported = await client.post("/v1/issues", json=report(source="citizen"), headers=citizen)
    assert reported.status_code == 201, reported.text
    rejected = await client.post(
        f"/v1/issues/{reported.json()['id']}/actions/reject",
        json={"reason": "invalid", "note": "不属实"},
        headers=officer,
    )
    assert rejected.status_code == 200, rejected.text
    found = await client.post("/v1/issues", json=report(latitude=36.5), headers=inspector)
    assert found.status_code == 201, found.text
    issue_id, deadline = found.json()["id"], datetime.fromisoformat(found.json()["deadline"])
    asked = await client.post(
        f"/v1/issues/{issue_id}/actions/request_extension",
        json={"reason": "需要机械清运", "until": (deadline + timedelta(days=5)).isoformat()},
        headers=village,
    )
    assert asked.status_code == 200, asked.text
    approved = await client.post(f"/v1/issues/{issue_id}/actions/approve_extension", json={}, headers=admin)
    assert approved.status_code == 200, approved.text

    window = {
        "from": (utcnow() - timedelta(hours=1)).isoformat(),
        "to": (utcnow() + timedelta(hours=1)).isoformat(),
    }
    answer = await client.get(STATS, params={"region": VILLAGE, **window}, headers=officer)
    assert answer.status_code == 200, answer.text
    total = answer.json()["total"]
    assert (total["found"], total["fixed"], total["rejected"], total["open"], total["overdue"]) == (
        1,
        0,
        1,
        1,
        0,
    )
    assert total["extended"] == 1 and total["extension_rate"] == 1.0
    assert total["rectification_rate"] == 0.0 and total["on_time_rate"] is None


# ---- scope and refusals ----


async def test_a_region_outside_the_callers_subtree_is_not_found(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(app, [issue_row(1, region=FAR_VILLAGE)])
    officer = auth("officer", TOWN)
    for region in (OTHER_TOWN, FAR_VILLAGE, COUNTY, "no-such-region", "37/x"):
        body = assert_problem(
            await client.get(STATS, params={**WINDOW, "region": region}, headers=officer),
            404,
            "region_not_found",
        )
        assert "found" not in body
    # Its own subtree has none of the other town's issues.
    assert (await _stats(client, officer))["total"]["found"] == 0


async def test_a_citizen_gets_403_and_no_token_401(client: httpx.AsyncClient, auth: Auth) -> None:
    body = assert_problem(
        await client.get(STATS, params=WINDOW, headers=auth("citizen", VILLAGE)), 403, "role_not_allowed"
    )
    assert "staff" in body["detail"]
    assert_unauthorized(await client.get(STATS, params=WINDOW), "missing_token")
    no_scope = auth("inspector", scopes=["regions:read"])
    assert_problem(await client.get(STATS, params=WINDOW, headers=no_scope), 403, "insufficient_scope")


async def test_an_integration_with_issues_read_may_ask(client: httpx.AsyncClient, auth: Auth) -> None:
    answer = await client.get(STATS, params=WINDOW, headers=auth("integration", TOWN, scopes=["issues:read"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["region"] == TOWN


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"from": "2026-03-01", "to": "2026-03-01"}, 422, "empty_window"),
        ({"from": "2026-04-01", "to": "2026-03-01"}, 422, "empty_window"),
        ({"group_by": "category", "depth": 2}, 422, "grouping_option_not_allowed"),
        ({"group_by": "month", "level": "village"}, 422, "grouping_option_not_allowed"),
        ({"depth": 2, "level": "village"}, 422, "grouping_option_not_allowed"),
        ({"group_by": "month", "from": "2010-01-01", "to": "2026-01-01"}, 422, "window_too_long"),
        ({"group_by": "village"}, 422, "validation_failed"),
        ({"depth": 0}, 422, "validation_failed"),
        ({"level": "hamlet"}, 422, "validation_failed"),
        ({"limit": 2001}, 422, "validation_failed"),
        ({"from": "2026-03-01T00:00:00"}, 422, "validation_failed"),  # a time needs its offset
        ({"to": "yesterday"}, 422, "validation_failed"),
        ({"to": "1767225600"}, 422, "validation_failed"),  # never a number of seconds
        ({"from": "2026-3-1"}, 422, "validation_failed"),
    ],
)
async def test_a_bad_question_is_refused(
    client: httpx.AsyncClient, auth: Auth, params: dict[str, Any], status: int, code: str
) -> None:
    answer = await client.get(STATS, params={**WINDOW, **params}, headers=auth("admin"))
    assert_problem(answer, status, code)


async def test_ten_years_by_month_is_the_most_one_series_covers(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    body = await _stats(
        client, auth("admin"), group_by="month", limit=200, **{"from": "2016-01-01", "to": "2026-01-01"}
    )
    assert (
        len(body["items"]) == 120
        and body["items"][0]["key"] == "2016-01"
        and body["items"][-1]["key"] == "2025-12"
    )
