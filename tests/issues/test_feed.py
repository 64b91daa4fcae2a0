"""GET /v1/feed/issues: exactly what the list shows for the same filters, as NDJSON, in the caller's scope."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from services.kit.identity import Subject
from tests.issues.issue_rows import T0, insert_issues, issue_row
from tests.support.builders import (
    FAR_VILLAGE,
    GRID,
    NEIGHBOUR,
    OTHER_TOWN,
    TOWN,
    TOWN_VILLAGE,
    VILLAGE,
    region_path,
)
from tests.support.problems import assert_problem, assert_unauthorized

Auth = Callable[..., dict[str, str]]
FEED = "/v1/feed/issues"


def _lines(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in answer.text.splitlines()]


def _month() -> list[dict[str, Any]]:
    closed = issue_row(1, region=GRID, status="closed", closed_at=T0 + timedelta(days=2))
    closed["satisfaction"] = 4
    return [
        closed,
        issue_row(2, region=VILLAGE, category="luan-da-jian"),
        issue_row(3, region=NEIGHBOUR, status="rejected"),
        issue_row(4, region=TOWN_VILLAGE, status="reported", reported_at=T0 + timedelta(days=20)),
        issue_row(5, region=FAR_VILLAGE, status="submitted"),
        issue_row(6, region=VILLAGE, reported_at=T0 - timedelta(days=40)),
    ]


async def _listed(client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any]) -> list[str]:
    answer = await client.get("/v1/issues", params={**params, "limit": 200}, headers=headers)
    assert answer.status_code == 200, answer.text
    return sorted(item["code"] for item in answer.json()["items"])


async def test_the_feed_is_what_the_list_shows_one_compact_line_an_issue(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, backend: str
) -> None:
    await insert_issues(app, _month())
    headers = auth("admin")
    window = {"reported_from": T0.isoformat(), "reported_to": (T0 + timedelta(days=30)).isoformat()}
    for params in (
        {},
        {"region": TOWN},
        {"region": TOWN, "status": ["assigned", "submitted", "closed"], **window},
        {
            "status": ["closed"],
            "closed_from": T0.isoformat(),
            "closed_to": (T0 + timedelta(days=3)).isoformat(),
        },
        {"category": ["luan-da-jian"]},
    ):
        lines = _lines(await client.get(FEED, params=params, headers=headers))
        assert sorted(line["code"] for line in lines) == await _listed(client, headers, params), params
    lines = _lines(await client.get(FEED, params={"region": TOWN, "status": ["closed"]}, headers=headers))
    assert lines == [
        {
            "code": "370282-2026-000001",
            "category": "luan-dui-fang",
            "severity": "normal",
            "status": "closed",
            "source": "inspection",
            "region": GRID,
            "region_path": region_path(GRID),
            "reported_at": "2026-03-02T01:00:00+00:00",
            "closed_at": "2026-03-04T01:00:00+00:00",
            "satisfaction": 4,
        }
    ]
    # Oldest first.
    codes = [line["code"] for line in _lines(await client.get(FEED, headers=headers))]
    assert codes == sorted(codes)


async def test_a_county_streams_in_batches(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    await insert_issues(app, [issue_row(n, region=VILLAGE if n % 2 else FAR_VILLAGE) for n in range(1, 1202)])
    lines = _lines(await client.get(FEED, params={"region": TOWN}, headers=auth("inspector")))
    assert len(lines) == 601
    assert {line["region"] for line in lines} == {VILLAGE}


async def test_scope_the_feed_holds_the_callers_subtree_only(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    rows = _month()
    rows[1]["reporter"] = str(Subject.user(77))
    await insert_issues(app, rows)
    village = _lines(await client.get(FEED, headers=auth("village", VILLAGE)))
    assert {line["region"] for line in village} == {VILLAGE, GRID}
    town = _lines(await client.get(FEED, headers=auth("officer", OTHER_TOWN)))
    assert [line["region"] for line in town] == [FAR_VILLAGE]
    assert_problem(
        await client.get(FEED, params={"region": TOWN}, headers=auth("officer", OTHER_TOWN)),
        404,
        "region_not_found",
    )
    citizen = _lines(await client.get(FEED, headers=auth("citizen", VILLAGE, subject=Subject.user(77))))
    assert [line["code"] for line in citizen] == ["370282-2026-000002"]
    service = _lines(
        await client.get(FEED, headers=auth("service", "*", subject=Subject.client("svc-scoring")))
    )
    assert len(service) == 6
    assert_problem(await client.get(FEED, headers=auth("admin", scopes=[])), 403, "insufficient_scope")
    assert_unauthorized(await client.get(FEED), "missing_token")
    assert_problem(
        await client.get(FEED, params={"status": ["lost"]}, headers=auth("admin")), 422, "validation_failed"
    )
    assert (
        _lines(
            await client.get(
                FEED, params={"region": TOWN_VILLAGE, "status": ["closed"]}, headers=auth("admin")
            )
        )
        == []
    )
