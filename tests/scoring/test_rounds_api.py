"""/v1/rounds: one round or a month's two, the region snapshot, closing (automatic deductions read in bulk,
round results with breakdowns, idempotent, 503 when issues is down), frozen rounds, region scope."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import col

from services.kit.pagination import encode_cursor
from services.scoring.periods import SHANGHAI
from services.scoring.rounds.models import Round, RoundResult, RoundUnit
from services.scoring.rounds.schemas import Breakdown
from services.scoring.rounds.service import breakdown
from services.scoring.rubrics.models import RubricVersion
from services.scoring.rubrics.rules import DEFAULT_RUBRIC, Severity
from services.scoring.scores.rules import Finding, ItemDeduction, round_score
from tests.scoring.conftest import FakeIssue, FakeIssues
from tests.support.builders import (
    COUNTY,
    FAR_VILLAGE,
    FAR_VILLAGE_2,
    GRID,
    NEIGHBOUR,
    OTHER_TOWN,
    TOWN,
    TOWN_VILLAGE,
    VILLAGE,
    ZONE,
)
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]
CountRows = Callable[..., Any]
DEFAULT = 1  # the shipped rubric's id


def nov(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=SHANGHAI)


def round_body(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "inspection",
        "period": "2026-11",
        "window": "first",
        "scope": COUNTY,
        "unit_level": "village",
        "rubric_id": DEFAULT,
        **changes,
    }


async def create(client: httpx.AsyncClient, auth: Auth, **changes: Any) -> dict[str, Any]:
    r = await client.post("/v1/rounds", json=round_body(**changes), headers=auth("inspector"))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_a_round_snapshots_its_scope_and_freezes_its_rubric(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, backend: str
) -> None:
    r = await client.post("/v1/rounds", json=round_body(), headers=auth("inspector"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"/v1/rounds/{created['id']}"
    assert {
        k: created[k]
        for k in ("name", "kind", "period", "window", "unit_level", "status", "starts_on", "ends_on", "units")
    } == {
        "name": "2026年11月上旬督查",
        "kind": "inspection",
        "period": "2026-11",
        "window": "first",
        "unit_level": "village",
        "status": "open",
        "starts_on": "2026-11-01",
        "ends_on": "2026-11-15",
        "units": 5,
    }
    assert created["scope"] == {"code": COUNTY, "name": "即墨区", "path": "/37/3702/370282/"}
    # The county, its two towns, the 管区 and the five villages; no grids.
    assert await count_rows(RoundUnit) == 9
    # A handful of calls: the scope, then one listing per level (town, zone, village).
    assert len(fake_issues.calls) == 4
    rubric = (await client.get(f"/v1/rubrics/{DEFAULT}", headers=auth("admin"))).json()
    assert rubric["frozen_at"] is not None

    units = await client.get(
        f"/v1/rounds/{created['id']}/units", params={"level": "village"}, headers=auth("admin")
    )
    assert [u["code"] for u in units.json()["items"]] == sorted(
        [VILLAGE, NEIGHBOUR, TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2]
    )
    assert units.json()["items"][0] == {
        "code": VILLAGE,
        "name": "前庄村",
        "level": "village",
        "parent_code": ZONE,
        "path": f"/37/3702/370282/{TOWN}/{ZONE}/{VILLAGE}/",
    }


async def test_a_village_renamed_later_keeps_its_name_in_the_round(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues
) -> None:
    created = await create(client, auth)
    fake_issues.regions[VILLAGE]["name"] = "前庄社区"
    units = await client.get(f"/v1/rounds/{created['id']}/units", headers=auth("village", VILLAGE))
    assert [(u["code"], u["name"]) for u in units.json()["items"]] == [(VILLAGE, "前庄村")]
    later = await create(client, auth, window="second")
    units = await client.get(f"/v1/rounds/{later['id']}/units", headers=auth("village", VILLAGE))
    assert [(u["code"], u["name"]) for u in units.json()["items"]] == [(VILLAGE, "前庄社区")]


async def test_names_as_long_as_the_issues_service_allows_are_kept_whole(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues
) -> None:
    # Region names take up to 100 characters; the snapshot took 50 (a 500 on PostgreSQL, cut on SQLite).
    long_village, long_county = "前庄" * 40 + "村", "即墨" * 45 + "区"
    fake_issues.regions[VILLAGE]["name"], fake_issues.regions[COUNTY]["name"] = long_village, long_county
    created = await create(client, auth)
    assert created["scope"]["name"] == long_county
    units = await client.get(f"/v1/rounds/{created['id']}/units", headers=auth("village", VILLAGE))
    assert [(u["code"], u["name"]) for u in units.json()["items"]] == [(VILLAGE, long_village)]


async def test_one_call_creates_a_months_two_inspection_rounds_once(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, backend: str
) -> None:
    body = {"period": "2026-02", "scope": TOWN, "unit_level": "village", "rubric_id": DEFAULT}
    r = await client.post("/v1/rounds/monthly", json=body, headers=auth("inspector"))
    assert r.status_code == 201, r.text
    assert [
        (i["name"], i["window"], i["starts_on"], i["ends_on"], i["units"]) for i in r.json()["items"]
    ] == [
        ("2026年2月上旬督查", "first", "2026-02-01", "2026-02-15", 3),
        ("2026年2月下旬督查", "second", "2026-02-16", "2026-02-28", 3),
    ]
    assert await count_rows(Round) == 2
    assert_problem(
        await client.post("/v1/rounds/monthly", json=body, headers=auth("inspector")), 409, "round_exists"
    )
    # 下旬 alone exists too: both or neither.
    assert_problem(
        await client.post(
            "/v1/rounds",
            json=round_body(scope=TOWN, period="2026-02", window="second"),
            headers=auth("inspector"),
        ),
        409,
        "round_exists",
    )
    assert await count_rows(Round) == 2
    assert await count_rows(RoundUnit) == 2 * 5  # the town, its 管区 and three villages, per round


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"period": "2026-Q4"}, 422, "invalid_round"),  # inspections are monthly
        ({"kind": "covert"}, 422, "invalid_round"),  # only inspections have a window
        ({"window": None, "starts_on": "2026-10-31"}, 422, "invalid_round"),  # outside the period
        ({"starts_on": "2026-11-10", "ends_on": "2026-11-09"}, 422, "invalid_round"),
        ({"ends_on": "2026-11-16"}, 422, "invalid_round"),  # past 上旬
        ({"period": "2026-13"}, 422, "validation_failed"),
        ({"rubric_id": 99}, 422, "rubric_not_found"),
        ({"scope": VILLAGE}, 422, "scope_below_units"),
        ({"scope": TOWN, "unit_level": "town"}, 422, "scope_below_units"),
        ({"scope": "370299"}, 404, "region_not_found"),
        ({"starts_on": 20261101}, 422, "validation_failed"),
        ({"unit_level": "grid"}, 422, "validation_failed"),
        ({"extra": True}, 422, "validation_failed"),
    ],
)
async def test_bad_rounds_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    auth: Auth,
    fake_issues: FakeIssues,
    count_rows: CountRows,
    changes: dict[str, Any],
    status: int,
    code: str,
) -> None:
    assert_problem(
        await client.post("/v1/rounds", json=round_body(**changes), headers=auth("inspector")), status, code
    )
    assert await count_rows(Round) == 0
    assert await count_rows(RoundUnit) == 0
    assert await count_rows(RubricVersion, col(RubricVersion.frozen_at).is_not(None)) == 0


async def test_a_region_without_units_of_the_level_is_refused(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows
) -> None:
    fake_issues.regions = {
        k: v for k, v in fake_issues.regions.items() if v["level"] != "village" or k == VILLAGE
    }
    assert_problem(
        await client.post("/v1/rounds", json=round_body(scope=OTHER_TOWN), headers=auth("inspector")),
        422,
        "scope_has_no_units",
    )
    assert await count_rows(Round) == 0


@pytest.mark.parametrize("failure", ["down", 500, 502])
async def test_issues_down_at_creation_is_503_and_nothing_is_stored(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, failure: str | int
) -> None:
    fake_issues.failure = failure
    r = await client.post("/v1/rounds", json=round_body(), headers=auth("inspector"))
    assert_problem(r, 503, "issues_unavailable")
    assert r.headers["retry-after"] == "5"
    assert await count_rows(Round) == 0


async def test_rounds_are_listed_newest_first_with_filters_and_pages(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, backend: str
) -> None:
    first = await create(client, auth)
    second = await create(client, auth, window="second")
    covert = await create(client, auth, kind="covert", window=None, period="2026-Q4", scope=OTHER_TOWN)
    page = await client.get("/v1/rounds", params={"limit": 2}, headers=auth("admin"))
    assert [i["id"] for i in page.json()["items"]] == [covert["id"], second["id"]]
    rest = await client.get(
        "/v1/rounds", params={"limit": 2, "cursor": page.json()["next_cursor"]}, headers=auth("admin")
    )
    assert [i["id"] for i in rest.json()["items"]] == [first["id"]]
    assert rest.json()["next_cursor"] is None
    for params, expected in (
        ({"kind": "covert"}, [covert["id"]]),
        ({"period": "2026-11"}, [second["id"], first["id"]]),
        ({"scope": OTHER_TOWN}, [covert["id"]]),
        ({"status": "closed"}, []),
        ({"unit_level": "town"}, []),
    ):
        listed = await client.get("/v1/rounds", params=params, headers=auth("admin"))
        assert [i["id"] for i in listed.json()["items"]] == expected, params
    assert_problem(
        await client.get("/v1/rounds", params={"period": "2026-1"}, headers=auth("admin")),
        422,
        "validation_failed",
    )


async def test_scope_a_round_is_seen_from_inside_and_above_its_scope_only(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows
) -> None:
    county = await create(client, auth)
    town = await create(client, auth, scope=TOWN, kind="covert", window=None)
    far = await create(client, auth, scope=OTHER_TOWN, kind="covert", window=None)
    seen = {
        ("village", VILLAGE): {county["id"], town["id"]},
        ("officer", TOWN): {county["id"], town["id"]},
        ("officer", OTHER_TOWN): {county["id"], far["id"]},
        ("viewer", COUNTY): {county["id"], town["id"], far["id"]},
    }
    for (role, region), ids in seen.items():
        listed = await client.get("/v1/rounds", headers=auth(role, region))
        assert {i["id"] for i in listed.json()["items"]} == ids, role
        for round_id in (county["id"], town["id"], far["id"]):
            one = await client.get(f"/v1/rounds/{round_id}", headers=auth(role, region))
            if round_id in ids:
                assert one.status_code == 200
            else:
                assert_problem(one, 404, "round_not_found")
                for path in (
                    "/units",
                    "/scorecards",
                    "/results",
                    f"/results/{VILLAGE}",
                    f"/scorecards/{VILLAGE}",
                ):
                    assert_problem(
                        await client.get(f"/v1/rounds/{round_id}{path}", headers=auth(role, region)),
                        404,
                        "round_not_found",
                    )
    # A village's snapshot is itself alone; a town's, its own part.
    units = await client.get(f"/v1/rounds/{county['id']}/units", headers=auth("officer", TOWN))
    assert {u["code"] for u in units.json()["items"]} == {TOWN, ZONE, VILLAGE, NEIGHBOUR, TOWN_VILLAGE}
    # Writing needs scoring:write, and a home region holding the scope; another town's region is unseen.
    assert_problem(
        await client.post("/v1/rounds", json=round_body(), headers=auth("officer", TOWN)),
        403,
        "insufficient_scope",
    )
    assert_problem(
        await client.post("/v1/rounds", json=round_body(scope=OTHER_TOWN), headers=auth("inspector", TOWN)),
        404,
        "region_not_found",
    )
    assert_problem(
        await client.post(f"/v1/rounds/{county['id']}/close", headers=auth("inspector", TOWN)),
        403,
        "round_beyond_region",
    )
    assert_problem(
        await client.patch(f"/v1/rounds/{county['id']}", json={"name": "x"}, headers=auth("inspector", TOWN)),
        403,
        "round_beyond_region",
    )
    assert_problem(
        await client.post(f"/v1/rounds/{far['id']}/close", headers=auth("inspector", TOWN)),
        404,
        "round_not_found",
    )
    assert_problem(
        await client.post(f"/v1/rounds/{county['id']}/close", headers=auth("viewer")),
        403,
        "insufficient_scope",
    )
    assert_problem(
        await client.get("/v1/rounds", headers=auth("citizen", VILLAGE)), 403, "insufficient_scope"
    )
    assert await count_rows(Round, col(Round.status) == "closed") == 0


async def test_an_open_round_changes_its_name_and_days_within_its_window(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues
) -> None:
    created = await create(client, auth)
    url = f"/v1/rounds/{created['id']}"
    r = await client.patch(
        url, json={"name": "十一月上旬交叉检查", "ends_on": "2026-11-14"}, headers=auth("inspector")
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["starts_on"], r.json()["ends_on"]) == (
        "十一月上旬交叉检查",
        "2026-11-01",
        "2026-11-14",
    )
    assert_problem(
        await client.patch(url, json={"ends_on": "2026-11-20"}, headers=auth("inspector")),
        422,
        "invalid_round",
    )
    assert_problem(await client.patch(url, json={}, headers=auth("inspector")), 422, "validation_failed")
    assert_problem(
        await client.patch(url, json={"name": None}, headers=auth("inspector")), 422, "validation_failed"
    )
    assert (await client.get(url, headers=auth("admin"))).json()["ends_on"] == "2026-11-14"


def the_months_issues() -> list[FakeIssue]:
    return [
        FakeIssue("370282-2026-000101", "luan-dui-fang", "normal", VILLAGE, nov(3)),  # 1 from 六乱
        FakeIssue("370282-2026-000102", "luan-da-jian", "serious", GRID, nov(15, 23)),  # 3, filed on a grid
        FakeIssue(
            "370282-2026-000103", "sheng-huo-la-ji", "minor", VILLAGE, nov(4), status="closed"
        ),  # 0.5 垃圾
        FakeIssue(
            "370282-2026-000104", "luan-dui-fang", "normal", VILLAGE, nov(5), status="rejected"
        ),  # not found
        FakeIssue(
            "370282-2026-000105", "luan-dui-fang", "normal", VILLAGE, nov(5), status="reported"
        ),  # unverified
        FakeIssue("370282-2026-000106", "luan-dui-fang", "normal", VILLAGE, nov(16, 0)),  # 下旬
        FakeIssue(
            "370282-2026-000107", "wu-shui-hei-chou", "serious", FAR_VILLAGE, nov(2)
        ),  # 3 污水, elsewhere
        FakeIssue("370282-2026-000108", "qi-ta", "normal", NEIGHBOUR, nov(2)),  # no rule for it
    ]


async def test_closing_scores_every_unit_from_scorecards_and_the_issues_found(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, backend: str
) -> None:
    fake_issues.add(*the_months_issues())
    created = await create(client, auth)
    card = {
        "unit_code": VILLAGE,
        "items": [
            {"indicator": "liu-luan", "deduction": 2, "note": "柴草乱堆"},
            {"indicator": "chang-xiao", "score": 4.5},
        ],
    }
    assert (
        await client.post(f"/v1/rounds/{created['id']}/scorecards", json=card, headers=auth("inspector"))
    ).status_code == 201
    fake_issues.calls.clear()
    r = await client.post(f"/v1/rounds/{created['id']}/close", headers=auth("inspector"))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["closed_at"] is not None) == ("closed", True)
    # One call for every issue of the round, never one per village.
    assert fake_issues.calls == ["GET /v1/feed/issues"]
    assert await count_rows(RoundResult) == 5

    results = await client.get(f"/v1/rounds/{created['id']}/results", headers=auth("admin"))
    scores = {i["unit_code"]: (i["score"], i["breakdown"]["issues_found"]) for i in results.json()["items"]}
    assert scores == {
        VILLAGE: (100 - 2 - 0.5 - 1 - 3 - 0.5, 3),  # items 2 + 0.5 (score 4.5 of 5), issues 1 + 3 + 0.5
        NEIGHBOUR: (100, 1),
        TOWN_VILLAGE: (100, 0),
        FAR_VILLAGE: (97, 1),
        FAR_VILLAGE_2: (100, 0),
    }
    mine = (
        await client.get(f"/v1/rounds/{created['id']}/results/{VILLAGE}", headers=auth("village", VILLAGE))
    ).json()
    assert (mine["unit_name"], mine["max_score"], mine["breakdown"]["scorecard_filed"]) == (
        "前庄村",
        100,
        True,
    )
    liu_luan = next(i for i in mine["breakdown"]["indicators"] if i["code"] == "liu-luan")
    assert (liu_luan["max_points"], liu_luan["deducted"], liu_luan["score"]) == (30, 6, 24)
    assert liu_luan["deductions"] == [
        {
            "source": "item",
            "points": 2,
            "counted": 2,
            "issue_code": None,
            "category": None,
            "severity": None,
            "note": "柴草乱堆",
        },
        {
            "source": "automatic",
            "points": 1,
            "counted": 1,
            "issue_code": "370282-2026-000101",
            "category": "luan-dui-fang",
            "severity": "normal",
            "note": "",
        },
        {
            "source": "automatic",
            "points": 3,
            "counted": 3,
            "issue_code": "370282-2026-000102",
            "category": "luan-da-jian",
            "severity": "serious",
            "note": "",
        },
    ]
    la_ji = next(i for i in mine["breakdown"]["indicators"] if i["code"] == "la-ji")
    assert [d["issue_code"] for d in la_ji["deductions"]] == ["370282-2026-000103"]
    neighbour = (
        await client.get(f"/v1/rounds/{created['id']}/results/{NEIGHBOUR}", headers=auth("admin"))
    ).json()
    assert neighbour["breakdown"]["unmatched_issues"] == ["370282-2026-000108"]
    assert neighbour["breakdown"]["scorecard_filed"] is False


async def test_closing_again_changes_nothing_and_a_closed_round_refuses_changes(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, backend: str
) -> None:
    fake_issues.add(*the_months_issues())
    created = await create(client, auth)
    url = f"/v1/rounds/{created['id']}"
    first = await client.post(f"{url}/close", headers=auth("inspector"))
    fake_issues.add(FakeIssue("370282-2026-000199", "luan-dui-fang", "normal", TOWN_VILLAGE, nov(6)))
    fake_issues.calls.clear()
    again = await client.post(f"{url}/close", headers=auth("admin"))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert fake_issues.calls == []  # nothing is read again
    assert await count_rows(RoundResult) == 5
    assert_problem(
        await client.patch(url, json={"name": "改名"}, headers=auth("inspector")), 409, "round_closed"
    )
    card = {"unit_code": TOWN_VILLAGE, "items": [{"indicator": "liu-luan", "deduction": 1}]}
    assert_problem(
        await client.post(f"{url}/scorecards", json=card, headers=auth("inspector")), 409, "round_closed"
    )
    assert (await client.get(url, headers=auth("admin"))).json()["name"] == "2026年11月上旬督查"
    result = await client.get(f"{url}/results/{TOWN_VILLAGE}", headers=auth("admin"))
    assert result.json()["score"] == 100


async def test_two_closes_at_once_store_the_results_once(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, backend: str
) -> None:
    fake_issues.add(*the_months_issues())
    created = await create(client, auth)
    url = f"/v1/rounds/{created['id']}/close"
    one, two = await asyncio.gather(
        client.post(url, headers=auth("inspector")), client.post(url, headers=auth("admin"))
    )
    assert (one.status_code, two.status_code) == (200, 200), (one.text, two.text)
    assert one.json()["closed_at"] == two.json()["closed_at"]
    assert await count_rows(RoundResult) == 5


@pytest.mark.parametrize("failure", ["down", 503])
async def test_closing_while_issues_is_down_is_503_and_changes_nothing(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, failure: str | int
) -> None:
    created = await create(client, auth)
    fake_issues.failure = failure
    r = await client.post(f"/v1/rounds/{created['id']}/close", headers=auth("inspector"))
    assert_problem(r, 503, "issues_unavailable")
    assert (await client.get(f"/v1/rounds/{created['id']}", headers=auth("admin"))).json()["status"] == "open"
    assert await count_rows(RoundResult) == 0
    fake_issues.failure = None
    assert (
        await client.post(f"/v1/rounds/{created['id']}/close", headers=auth("inspector"))
    ).status_code == 200


async def test_covert_rounds_score_the_units_visited_and_surveys_deduct_no_issues(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues
) -> None:
    fake_issues.add(*the_months_issues())
    covert = await create(client, auth, kind="covert", window=None)
    survey = await create(client, auth, kind="satisfaction", window=None)
    for round_ in (covert, survey):
        card = {"unit_code": VILLAGE, "items": [{"indicator": "chang-xiao", "deduction": 1}]}
        assert (
            await client.post(f"/v1/rounds/{round_['id']}/scorecards", json=card, headers=auth("inspector"))
        ).status_code == 201
        assert (
            await client.post(f"/v1/rounds/{round_['id']}/close", headers=auth("inspector"))
        ).status_code == 200
    # 暗访 over the whole month: the 下旬 issue counts too (1 + 3 + 0.5 + 1 from 六乱/垃圾).
    covert_results = (await client.get(f"/v1/rounds/{covert['id']}/results", headers=auth("admin"))).json()[
        "items"
    ]
    assert [(i["unit_code"], i["score"]) for i in covert_results] == [(VILLAGE, 100 - 1 - 1 - 3 - 0.5 - 1)]
    survey_results = (await client.get(f"/v1/rounds/{survey['id']}/results", headers=auth("admin"))).json()[
        "items"
    ]
    assert [(i["unit_code"], i["score"], i["breakdown"]["issues_found"]) for i in survey_results] == [
        (VILLAGE, 99, 0)
    ]


async def test_scope_results_a_village_sees_its_own_a_town_its_villages(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues
) -> None:
    created = await create(client, auth)
    url = f"/v1/rounds/{created['id']}"
    assert_problem(await client.get(f"{url}/results", headers=auth("admin")), 409, "round_open")
    assert_problem(await client.get(f"{url}/results/{VILLAGE}", headers=auth("admin")), 409, "round_open")
    await client.post(f"{url}/close", headers=auth("inspector"))
    expectations = {
        ("village", VILLAGE): [VILLAGE],
        ("officer", TOWN): [VILLAGE, NEIGHBOUR, TOWN_VILLAGE],
        ("officer", OTHER_TOWN): [FAR_VILLAGE, FAR_VILLAGE_2],
        ("viewer", COUNTY): sorted([VILLAGE, NEIGHBOUR, TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2]),
    }
    for (role, region), codes in expectations.items():
        listed = await client.get(f"{url}/results", headers=auth(role, region))
        assert [i["unit_code"] for i in listed.json()["items"]] == sorted(codes), role
    assert_problem(
        await client.get(f"{url}/results/{NEIGHBOUR}", headers=auth("village", VILLAGE)),
        404,
        "result_not_found",
    )
    assert_problem(
        await client.get(f"{url}/results/{FAR_VILLAGE}", headers=auth("officer", TOWN)),
        404,
        "result_not_found",
    )
    assert_problem(
        await client.get(f"{url}/results", headers=auth("citizen", VILLAGE)), 403, "insufficient_scope"
    )
    paged = await client.get(f"{url}/results", params={"limit": 3}, headers=auth("admin"))
    rest = await client.get(
        f"{url}/results", params={"limit": 3, "cursor": paged.json()["next_cursor"]}, headers=auth("admin")
    )
    assert len(paged.json()["items"]) + len(rest.json()["items"]) == 5
    assert rest.json()["next_cursor"] is None


async def test_results_are_paged_by_unit_code_with_their_names(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, backend: str
) -> None:
    created = await create(client, auth)
    url = f"/v1/rounds/{created['id']}/results"
    await client.post(f"/v1/rounds/{created['id']}/close", headers=auth("inspector"))
    whole = (await client.get(url, headers=auth("officer", TOWN))).json()["items"]
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = await client.get(url, params=params, headers=auth("officer", TOWN))
        assert answer.status_code == 200, answer.text
        assert answer.json()["limit"] == 2 and len(answer.json()["items"]) <= 2
        seen += [(i["unit_code"], i["unit_name"]) for i in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [(i["unit_code"], i["unit_name"]) for i in whole]
    assert seen == [(VILLAGE, "前庄村"), (NEIGHBOUR, "后庄村"), (TOWN_VILLAGE, "西河村")]
    # A cursor is the last unit code of the page before (one issued earlier still reads the same).
    after = await client.get(url, params={"cursor": encode_cursor([VILLAGE])}, headers=auth("officer", TOWN))
    assert [i["unit_code"] for i in after.json()["items"]] == [NEIGHBOUR, TOWN_VILLAGE]
    for bad in ("not-a-cursor", encode_cursor([5]), encode_cursor([VILLAGE, NEIGHBOUR])):
        assert_problem(
            await client.get(url, params={"cursor": bad}, headers=auth("admin")), 400, "invalid_cursor"
        )
    one = await client.get(f"{url}/{NEIGHBOUR}", headers=auth("officer", TOWN))
    assert one.json() == whole[1]


async def test_a_retried_creation_under_one_idempotency_key_is_stored_once(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, backend: str
) -> None:
    headers = {**auth("inspector"), "Idempotency-Key": "round-2026-11-first"}
    first = await client.post("/v1/rounds", json=round_body(), headers=headers)
    calls = len(fake_issues.calls)
    again = await client.post("/v1/rounds", json=round_body(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert len(fake_issues.calls) == calls  # the answer is replayed, the issues service not asked again
    assert await count_rows(Round) == 1
    month = {"period": "2026-12", "scope": TOWN, "unit_level": "village", "rubric_id": DEFAULT}
    key = {**auth("inspector"), "Idempotency-Key": "month-2026-12"}
    assert (await client.post("/v1/rounds/monthly", json=month, headers=key)).status_code == 201
    assert (await client.post("/v1/rounds/monthly", json=month, headers=key)).status_code == 201
    assert await count_rows(Round) == 3


async def test_scope_monthly_rounds_need_scoring_write_and_a_scope_in_the_callers_region(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows
) -> None:
    month = {"period": "2026-12", "scope": OTHER_TOWN, "unit_level": "village", "rubric_id": DEFAULT}
    assert_problem(
        await client.post("/v1/rounds/monthly", json=month, headers=auth("officer", OTHER_TOWN)),
        403,
        "insufficient_scope",
    )
    assert_problem(
        await client.post("/v1/rounds/monthly", json=month, headers=auth("inspector", TOWN)),
        404,
        "region_not_found",
    )
    assert_problem(
        await client.post(
            "/v1/rounds/monthly", json={**month, "period": "2026-Q4"}, headers=auth("inspector")
        ),
        422,
        "validation_failed",
    )
    assert await count_rows(Round) == 0
    assert (
        await client.post("/v1/rounds/monthly", json=month, headers=auth("inspector", OTHER_TOWN))
    ).status_code == 201


async def test_monthly_is_no_round_id(client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues) -> None:
    r = await client.patch("/v1/rounds/monthly", json={"name": "x"}, headers=auth("inspector"))
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    assert_problem(
        await client.get("/v1/rounds/monthly", headers=auth("inspector")), 405, "method_not_allowed"
    )


_CATEGORIES = ["luan-dui-fang", "luan-da-jian", "sheng-huo-la-ji", "wu-shui-hei-chou", "qi-ta"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(_CATEGORIES), st.sampled_from(list(Severity))), max_size=30),
    st.lists(
        st.tuples(st.sampled_from([i.code for i in DEFAULT_RUBRIC.indicators]), st.integers(0, 500)),
        max_size=5,
    ),
)
def test_a_stored_breakdown_reads_back_and_adds_up_to_the_score(
    found: list[tuple[str, Severity]], items: list[tuple[str, int]]
) -> None:
    indicators = DEFAULT_RUBRIC.indicators_by_code()
    deductions = [
        ItemDeduction(code, min(Decimal(hundredths) / 100, indicators[code].max_points))
        for code, hundredths in items
    ]
    findings = [
        Finding(f"370282-2026-{n:06d}", category, severity) for n, (category, severity) in enumerate(found)
    ]
    scored = round_score(DEFAULT_RUBRIC, deductions, findings)
    stored = breakdown(DEFAULT_RUBRIC, scored, scorecard_filed=bool(items), issues_found=len(found))
    read = Breakdown.model_validate(stored)
    assert sum((line.score for line in read.indicators), Decimal(0)) == scored.score
    assert all(0 <= line.score <= line.max_points for line in read.indicators)
    automatic = [d.issue_code for line in read.indicators for d in line.deductions if d.source == "automatic"]
    assert sorted(automatic + read.unmatched_issues) == sorted(f.code for f in findings)
    for line in read.indicators:
        assert sum((Decimal(str(d.counted)) for d in line.deductions), Decimal(0)) == line.deducted
