"""/v1/rubrics: the shipped default, versions, validation as a whole, frozen once a round used it, scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlmodel import col

from services.scoring.rubrics.models import RubricVersion
from services.scoring.rubrics.rules import DEFAULT_RUBRIC
from tests.scoring.conftest import FakeIssues, small_rubric
from tests.support.builders import COUNTY, TOWN, VILLAGE
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]
CountRows = Callable[..., Any]


async def test_the_default_rubric_is_shipped(client: httpx.AsyncClient, auth: Auth, backend: str) -> None:
    r = await client.get("/v1/rubrics", headers=auth("village", VILLAGE))
    assert r.status_code == 200, r.text
    (default,) = r.json()["items"]
    assert (default["code"], default["version"], default["name"]) == ("default", 1, DEFAULT_RUBRIC.name)
    assert default["total"] == 100
    assert {w["component"]: w["percent"] for w in default["weights"]} == {
        "inspection": 60,
        "covert": 20,
        "satisfaction": 10,
        "rectification": 10,
    }
    assert len(default["indicators"]) == len(DEFAULT_RUBRIC.indicators)
    assert len(default["deductions"]) == len(DEFAULT_RUBRIC.deductions)
    assert default["frozen_at"] is None
    one = await client.get(f"/v1/rubrics/{default['id']}", headers=auth("viewer"))
    assert one.json() == default


async def test_the_office_creates_a_rubric_and_a_next_version_under_its_code(
    client: httpx.AsyncClient, auth: Auth, count_rows: CountRows, backend: str
) -> None:
    r = await client.post("/v1/rubrics", json=small_rubric(), headers=auth("admin"))
    assert r.status_code == 201, r.text
    first = r.json()
    assert r.headers["location"] == f"/v1/rubrics/{first['id']}"
    assert (first["version"], first["total"], first["frozen_at"]) == (1, 100, None)
    assert first["deductions"][0]["points"] == 1.5
    assert first["weights"] == [
        {"component": "inspection", "percent": 70, "required": True},
        {"component": "rectification", "percent": 30, "required": False},
    ]
    again = await client.post(
        "/v1/rubrics", json=small_rubric(name="镇街考评办法（修订）"), headers=auth("admin")
    )
    assert again.status_code == 201, again.text
    assert (again.json()["version"], again.json()["code"]) == (2, "town-check")
    assert await count_rows(RubricVersion, col(RubricVersion.code) == "town-check") == 2

    latest = await client.get("/v1/rubrics", params={"latest": "true"}, headers=auth("inspector"))
    assert [(i["code"], i["version"]) for i in latest.json()["items"]] == [("default", 1), ("town-check", 2)]
    family = await client.get(
        "/v1/rubrics", params={"code": "town-check", "limit": 1}, headers=auth("inspector")
    )
    assert [i["version"] for i in family.json()["items"]] == [1]
    rest = await client.get(
        "/v1/rubrics",
        params={"code": "town-check", "limit": 1, "cursor": family.json()["next_cursor"]},
        headers=auth("inspector"),
    )
    assert [i["version"] for i in rest.json()["items"]] == [2]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"weights": [{"component": "inspection", "percent": 60}, {"component": "covert", "percent": 30}]},
            ["weights add up to 900‰, not 1000‰ (100 %)"],
        ),
        (
            {
                "deductions": [
                    {"category": "luan-dui-fang", "severity": "normal", "indicator": "liu-luan", "points": 12}
                ]
            },
            ["12 points per issue do not fit indicator 'liu-luan' (automatic deductions capped at 10)"],
        ),
        (
            {
                "deductions": [
                    {"category": "luan-dui-fang", "severity": "normal", "indicator": "la-ji", "points": 1}
                ]
            },
            ["no indicator 'la-ji'"],
        ),
        (
            {
                "indicators": [
                    {
                        "code": "liu-luan",
                        "name": "六乱整治",
                        "max_points": 60,
                        "group": "村容村貌",
                        "auto_cap": 70,
                    },
                    {"code": "liu-luan", "name": "长效管理", "max_points": 40, "group": "长效机制"},
                ]
            },
            ["the automatic cap 70 exceeds its 60 points", "indicator 'liu-luan' appears twice"],
        ),
    ],
)
async def test_a_rubric_that_cannot_be_used_is_refused_with_every_problem_and_not_stored(
    client: httpx.AsyncClient, auth: Auth, count_rows: CountRows, changes: dict[str, Any], expected: list[str]
) -> None:
    r = await client.post("/v1/rubrics", json=small_rubric(**changes), headers=auth("admin"))
    body = assert_problem(r, 422, "invalid_rubric")
    messages = [error["message"] for error in body["errors"]]
    for wanted in expected:
        assert any(wanted in message for message in messages), messages
    assert await count_rows(RubricVersion) == 1  # the default alone


@pytest.mark.parametrize(
    "changes",
    [
        {"surprise": 1},
        {"indicators": []},
        {"code": "Town Check"},
        {"weights": [{"component": "inspection", "percent": 100.25}]},
        {"weights": [{"component": "inspection", "percent": "100"}]},
        {"weights": [{"component": "inspection", "percent": ""}]},
        {
            "deductions": [
                {"category": "luan-dui-fang", "severity": "awful", "indicator": "liu-luan", "points": 1}
            ]
        },
        {
            "deductions": [
                {"category": "luan-dui-fang", "severity": "normal", "indicator": "liu-luan", "points": 0.001}
            ]
        },
    ],
)
async def test_malformed_rubrics_are_422_and_not_stored(
    client: httpx.AsyncClient, auth: Auth, count_rows: CountRows, changes: dict[str, Any]
) -> None:
    assert_problem(
        await client.post("/v1/rubrics", json=small_rubric(**changes), headers=auth("admin")),
        422,
        "validation_failed",
    )
    assert await count_rows(RubricVersion) == 1


async def test_a_version_changes_in_place_until_a_round_uses_it_then_it_is_frozen(
    client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues, count_rows: CountRows, backend: str
) -> None:
    created = (await client.post("/v1/rubrics", json=small_rubric(), headers=auth("admin"))).json()
    url = f"/v1/rubrics/{created['id']}"
    changed = await client.put(url, json=small_rubric(name="镇街考评办法二"), headers=auth("admin"))
    assert changed.status_code == 200, changed.text
    assert (changed.json()["id"], changed.json()["version"], changed.json()["name"]) == (
        created["id"],
        1,
        "镇街考评办法二",
    )
    assert_problem(
        await client.put(url, json=small_rubric(code="other"), headers=auth("admin")),
        422,
        "rubric_code_fixed",
    )

    round_ = await client.post(
        "/v1/rounds",
        json={
            "kind": "covert",
            "period": "2026-11",
            "scope": TOWN,
            "unit_level": "village",
            "rubric_id": created["id"],
        },
        headers=auth("inspector"),
    )
    assert round_.status_code == 201, round_.text
    frozen = await client.get(url, headers=auth("admin"))
    assert frozen.json()["frozen_at"] is not None

    refused = await client.put(url, json=small_rubric(name="偷偷改"), headers=auth("admin"))
    assert_problem(refused, 409, "rubric_frozen")
    # Frozen whatever the body: another code or weights that do not add up are not what is wrong.
    for body in (
        small_rubric(code="other"),
        small_rubric(weights=[{"component": "inspection", "percent": 50}]),
    ):
        assert_problem(await client.put(url, json=body, headers=auth("admin")), 409, "rubric_frozen")
    assert (await client.get(url, headers=auth("admin"))).json()["name"] == "镇街考评办法二"
    # The way to change it: the family's next version; the round keeps the version it was created with.
    following = await client.post("/v1/rubrics", json=small_rubric(name="偷偷改"), headers=auth("admin"))
    assert following.json()["version"] == 2
    assert (await client.get(f"/v1/rounds/{round_.json()['id']}", headers=auth("admin"))).json()[
        "rubric_id"
    ] == created["id"]


async def test_invalid_changes_leave_the_version_as_it_was(client: httpx.AsyncClient, auth: Auth) -> None:
    created = (await client.post("/v1/rubrics", json=small_rubric(), headers=auth("admin"))).json()
    bad = small_rubric(weights=[{"component": "inspection", "percent": 50}])
    assert_problem(
        await client.put(f"/v1/rubrics/{created['id']}", json=bad, headers=auth("admin")),
        422,
        "invalid_rubric",
    )
    assert (await client.get(f"/v1/rubrics/{created['id']}", headers=auth("admin"))).json() == created


async def test_scope_rubrics_are_read_with_scoring_read_and_written_by_the_office_alone(
    client: httpx.AsyncClient, auth: Auth, count_rows: CountRows
) -> None:
    for role, region in (("citizen", VILLAGE), ("integration", COUNTY)):
        assert_problem(await client.get("/v1/rubrics", headers=auth(role, region)), 403, "insufficient_scope")
        assert_problem(
            await client.get("/v1/rubrics/1", headers=auth(role, region)), 403, "insufficient_scope"
        )
    for role, region in (("village", VILLAGE), ("officer", TOWN), ("viewer", COUNTY), ("grid", VILLAGE)):
        assert (await client.get("/v1/rubrics/1", headers=auth(role, region))).status_code == 200
    # Writing: inspectors have scoring:write but are not the office; officers lack the scope.
    assert_problem(
        await client.post("/v1/rubrics", json=small_rubric(), headers=auth("inspector")),
        403,
        "rubric_admin_only",
    )
    assert_problem(
        await client.put("/v1/rubrics/1", json=small_rubric(code="default"), headers=auth("inspector")),
        403,
        "rubric_admin_only",
    )
    assert_problem(
        await client.post("/v1/rubrics", json=small_rubric(), headers=auth("officer", TOWN)),
        403,
        "insufficient_scope",
    )
    assert_problem(await client.get("/v1/rubrics/999", headers=auth("admin")), 404, "rubric_not_found")
    assert_problem(
        await client.put("/v1/rubrics/999", json=small_rubric(), headers=auth("admin")),
        404,
        "rubric_not_found",
    )
    assert await count_rows(RubricVersion) == 1
