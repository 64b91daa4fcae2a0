"""GET /v1/feed/issues: exactly what the list shows for the same filters, as NDJSON, in the caller's scope."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.kit.identity import Subject
from tests.issues.issue_rows import T0, insert_issues, issue_row
from tests.support.builders import (
    COUNTY,
    FAR_GRID,
    FAR_VILLAGE,
    GRID,
    GRID_2,
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


async def test_the_feed_gives_the_fields_asked_for(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(app, _month())
    headers = auth("admin")
    full = _lines(await client.get(FEED, params={"region": TOWN}, headers=headers))
    for fields, wanted in (
        (["region_path", "satisfaction"], ["region_path", "satisfaction"]),
        (["satisfaction", "code"], ["code", "satisfaction"]),  # in the line's order
        ("closed_at", ["closed_at"]),
    ):
        some = _lines(await client.get(FEED, params={"region": TOWN, "fields": fields}, headers=headers))
        assert some == [{f: line[f] for f in wanted} for line in full]
        assert list(some[0]) == wanted
    for bad in ("lost", "code,category", ""):
        assert_problem(
            await client.get(FEED, params={"fields": bad}, headers=headers), 422, "validation_failed"
        )


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


# ---- GET /v1/feed/rectification: the statistics' rows, all in one answer ----

FIGURES = "/v1/feed/rectification"
STATS = "/v1/stats/rectification"


def _figures_month() -> list[dict[str, Any]]:
    """Issues of every kind the statistics tell apart, on villages, a grid, a town and the other town."""
    day = timedelta(days=1)
    rows = _month()
    rows += [
        issue_row(7, region=GRID, status="closed", closed_at=T0 + 3 * day, rework_count=1),
        issue_row(8, region=VILLAGE, status="closed", closed_at=T0 + 9 * day, extension_count=1),
        issue_row(9, region=VILLAGE, status="submitted", deadline=T0 - day),
        issue_row(10, region=NEIGHBOUR, status="closed", closed_at=T0 + 2 * day, deadline=None),
        issue_row(11, region=TOWN, status="assigned"),  # on the town itself: in no village's row
        issue_row(12, region=FAR_GRID, status="closed", closed_at=T0 + 5 * day),
        issue_row(13, region=FAR_VILLAGE, status="closed", closed_at=T0 + 4 * day),
        issue_row(14, region=TOWN_VILLAGE, status="closed", closed_at=T0 + 1 * day, reported_at=T0 + day),
    ]
    return rows


async def _stat_rows(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every row of the statistics for these parameters, following the cursor two rows a page."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = await client.get(STATS, params=page, headers=headers)
        assert answer.status_code == 200, answer.text
        rows += answer.json()["items"]
        cursor = answer.json()["next_cursor"]
        if not cursor:
            return rows


def _same_figures(fed: list[dict[str, Any]], paged: list[dict[str, Any]]) -> None:
    """The same rows in the same order: keys, names and counts exactly; rates, mean and median as floats
    (summed in another order, they may differ in the last bit)."""
    assert [row["key"] for row in fed] == [row["key"] for row in paged]
    for mine, theirs in zip(fed, paged, strict=True):
        assert set(mine) == set(theirs), mine["key"]
        for name, value in theirs.items():
            if isinstance(value, float):
                assert mine[name] == pytest.approx(value, rel=1e-12, abs=1e-12), (mine["key"], name)
            else:
                assert mine[name] == value, (mine["key"], name)


async def test_the_figures_feed_is_every_row_of_the_statistics_in_one_answer(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(app, _figures_month())
    headers = auth("admin")
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(days=30)).isoformat()}
    for params in (
        window,
        {"region": TOWN, **window},
        {"level": "village", **window},
        {"level": "grid", **window},
        {"level": "zone", **window},
        {"region": TOWN, "depth": 2, **window},
        {"region": COUNTY, "level": "village", "from": "2026-03-03", "to": "2026-04-01"},
        {"region": VILLAGE, **window},
        {"region": FAR_GRID, **window},  # a region without children: no rows
        {},  # the defaults: this year until now
    ):
        fed = _lines(await client.get(FIGURES, params=params, headers=headers))
        _same_figures(fed, await _stat_rows(client, headers, params))
    villages = {
        row["key"]: row
        for row in _lines(await client.get(FIGURES, params={"level": "village", **window}, headers=headers))
    }
    assert set(villages) == {VILLAGE, NEIGHBOUR, TOWN_VILLAGE, FAR_VILLAGE, "370282104202"}
    mine = villages[VILLAGE]  # 1 (grid), 2, 7 (grid), 8, 9; not 6 (the month before); 2 and 9 overdue
    assert (mine["found"], mine["fixed"], mine["open"], mine["overdue"]) == (5, 3, 2, 2)
    assert (mine["reworked"], mine["extended"], mine["closed_on_time"]) == (1, 1, 2)
    assert mine["median_days_to_close"] == 3.0
    assert villages["370282104202"] == {
        "key": "370282104202",
        "name": villages["370282104202"]["name"],
        "found": 0,
        "fixed": 0,
        "rejected": 0,
        "open": 0,
        "overdue": 0,
        "closed_on_time": 0,
        "reworked": 0,
        "extended": 0,
        "rectification_rate": None,
        "on_time_rate": None,
        "rework_rate": None,
        "extension_rate": None,
        "mean_days_to_close": None,
        "median_days_to_close": None,
    }


async def test_the_figures_feed_gives_the_fields_asked_for(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(app, _figures_month())
    headers = auth("admin")
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(days=30)).isoformat(), "level": "village"}
    full = _lines(await client.get(FIGURES, params=window, headers=headers))
    for fields, wanted in (
        (["found", "fixed", "overdue"], ["found", "fixed", "overdue"]),
        (["overdue", "found"], ["found", "overdue"]),  # in the row's order, whatever the query's
        (["name", "median_days_to_close"], ["name", "median_days_to_close"]),
    ):
        some = _lines(await client.get(FIGURES, params={**window, "fields": fields}, headers=headers))
        assert some == [{"key": row["key"], **{f: row[f] for f in wanted}} for row in full]
        assert list(some[0]) == ["key", *wanted]
    for bad in ("lost", "key", "found,fixed", ""):
        assert_problem(
            await client.get(FIGURES, params={**window, "fields": bad}, headers=headers),
            422,
            "validation_failed",
        )


async def test_scope_the_figures_feed_refuses_as_the_statistics_do(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(app, _figures_month())
    town = _lines(await client.get(FIGURES, params={"level": "village"}, headers=auth("officer", OTHER_TOWN)))
    assert [row["key"] for row in town] == [FAR_VILLAGE, "370282104202"]
    village = _lines(await client.get(FIGURES, params={"level": "grid"}, headers=auth("village", VILLAGE)))
    assert [row["key"] for row in village] == [GRID, GRID_2]
    for params in ({"region": TOWN}, {"region": COUNTY, "level": "village"}, {"region": "370299"}):
        assert_problem(
            await client.get(FIGURES, params=params, headers=auth("officer", OTHER_TOWN)),
            404,
            "region_not_found",
        )
    service = auth("service", "*", subject=Subject.client("svc-scoring"))
    everything = _lines(await client.get(FIGURES, params={"level": "village"}, headers=service))
    assert len(everything) == 5
    assert_problem(
        await client.get(FIGURES, headers=auth("citizen", VILLAGE, subject=Subject.user(77))),
        403,
        "role_not_allowed",
    )
    assert_problem(await client.get(FIGURES, headers=auth("admin", scopes=[])), 403, "insufficient_scope")
    assert_unauthorized(await client.get(FIGURES), "missing_token")
    admin = auth("admin")
    window = {"from": "2026-03-02", "to": "2026-03-01"}
    assert_problem(await client.get(FIGURES, params=window, headers=admin), 422, "empty_window")
    both = {"depth": 2, "level": "village"}
    assert_problem(await client.get(FIGURES, params=both, headers=admin), 422, "grouping_option_not_allowed")
    for bad in ({"level": "hamlet"}, {"depth": 0}, {"from": "yesterday"}):
        assert_problem(await client.get(FIGURES, params=bad, headers=admin), 422, "validation_failed")
