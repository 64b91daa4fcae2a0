"""Publishing a period: period scores by the rubric's weights with the issues service's figures, rankings
within parent regions with ties and changes, republishing (also concurrently) writes once, every refusal
stores nothing, and every reading route is cut to the caller's subtree."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from services.scoring.publishing.models import (
    Bulletin,
    EscalationRow,
    ListEntryRow,
    PeriodScoreRow,
    Publication,
    RankingEntry,
)
from tests.scoring.publishing_support import FakeIssues, add_month, add_round
from tests.scoring.publishing_support import issues as issues
from tests.support.builders import (
    COUNTY,
    FAR_VILLAGE,
    FAR_VILLAGE_2,
    NEIGHBOUR,
    OTHER_TOWN,
    TOWN,
    TOWN_VILLAGE,
    VILLAGE,
)
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]
Count = Callable[..., Any]
TABLES = (Publication, PeriodScoreRow, RankingEntry, ListEntryRow, EscalationRow, Bulletin)

OCTOBER = {VILLAGE: "70", NEIGHBOUR: "80", TOWN_VILLAGE: "85", FAR_VILLAGE: "90", FAR_VILLAGE_2: "60"}
NOVEMBER = {VILLAGE: "90", NEIGHBOUR: "85", TOWN_VILLAGE: "85", FAR_VILLAGE: "80", FAR_VILLAGE_2: "70"}


async def publish(client: httpx.AsyncClient, auth: Auth, period: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/v1/periods/{period}/publish", json=body or None, headers=auth("admin", COUNTY)
    )


async def stored_counts(count_rows: Count) -> list[int]:
    return [await count_rows(table) for table in TABLES]


def places(items: list[dict[str, Any]], parent: str) -> dict[str, tuple[int, float, int | None]]:
    return {
        e["unit"]["code"]: (e["rank"], e["score"], e["change"])
        for e in items
        if e["parent"]["code"] == parent
    }


async def test_a_month_is_ranked_within_the_county_and_each_town_with_ties_and_changes(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues, count_rows: Count
) -> None:
    await add_month(app, "2026-10", OCTOBER)
    await add_month(app, "2026-11", NOVEMBER)
    first = await publish(client, auth, "2026-10")
    assert first.status_code == 201, first.text
    published = await publish(client, auth, "2026-11")
    assert published.status_code == 201, published.text
    body = published.json()
    assert (body["period"], body["kind"], body["label"], body["scope"]) == (
        "2026-11",
        "month",
        "2026年11月",
        {"code": COUNTY, "name": "即墨区"},
    )
    assert body["rule_set_version"] is None and body["rubric"]["code"] == "default"
    assert [r["window"] for r in body["rounds"]] == ["first", "second"]
    assert body["summary"]["scored"] == 5 and body["bulletin_id"] is not None

    ranked = await client.get(
        "/v1/rankings", params={"period": "2026-11", "limit": 200}, headers=auth("admin")
    )
    assert ranked.status_code == 200, ranked.text
    items = ranked.json()["items"]
    # 1, 2, 2, 4: equal scores share a rank; the change is the previous rank − this one.
    assert places(items, COUNTY) == {
        VILLAGE: (1, 90.0, 3),
        NEIGHBOUR: (2, 85.0, 1),
        TOWN_VILLAGE: (2, 85.0, 0),
        FAR_VILLAGE: (4, 80.0, -3),
        FAR_VILLAGE_2: (5, 70.0, 0),
    }
    assert places(items, TOWN) == {
        VILLAGE: (1, 90.0, 2),
        NEIGHBOUR: (2, 85.0, 0),
        TOWN_VILLAGE: (2, 85.0, -1),
    }
    assert places(items, OTHER_TOWN) == {FAR_VILLAGE: (1, 80.0, 0), FAR_VILLAGE_2: (2, 70.0, 0)}
    assert {e["for_lists"] for e in items if e["parent"]["code"] == COUNTY} == {True}
    assert {e["for_lists"] for e in items if e["parent"]["code"] != COUNTY} == {False}

    town_only = await client.get(
        "/v1/rankings",
        params={"period": "2026-11", "parent": TOWN, "level": "village"},
        headers=auth("admin"),
    )
    assert [e["unit"]["code"] for e in town_only.json()["items"]] == [VILLAGE, NEIGHBOUR, TOWN_VILLAGE]


async def test_publishing_again_answers_the_same_and_stores_nothing_more(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues, count_rows: Count
) -> None:
    await add_month(app, "2026-11", NOVEMBER)
    first = await publish(client, auth, "2026-11")
    assert first.status_code == 201, first.text
    before = await stored_counts(count_rows)
    issues.set_rates("village", {VILLAGE: (10, 1, 9)})  # the figures changed since: nothing is recomputed
    again = await publish(client, auth, "2026-11", scope=COUNTY)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await stored_counts(count_rows) == before


async def test_concurrent_publishing_writes_once_and_both_get_the_same_answer(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues, count_rows: Count
) -> None:
    await add_month(app, "2026-11", NOVEMBER)
    # Both requests are held inside their reads from the issues service until both have passed the
    # "already published?" check: both then score and try to write.
    issues.barrier = asyncio.Barrier(2)
    async with asyncio.timeout(60):
        answers = await asyncio.gather(publish(client, auth, "2026-11"), publish(client, auth, "2026-11"))
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert issues.stats_calls >= 4  # both really computed (towns and villages each)
    assert await count_rows(Publication) == 1
    assert await count_rows(PeriodScoreRow) == 5
    assert await count_rows(Bulletin) == 1


async def test_a_period_score_combines_the_rounds_and_the_issue_figures_by_the_weights(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await add_round(app, period="2026-11", window="first", scores={VILLAGE: "90", NEIGHBOUR: "80"})
    await add_round(app, period="2026-11", window="second", scores={VILLAGE: "80", NEIGHBOUR: "80"})
    issues.set_rates("village", {VILLAGE: (10, 9, 1), NEIGHBOUR: (0, 0, 0)})
    issues.ratings = {VILLAGE: [5, 4]}
    assert (await publish(client, auth, "2026-11")).status_code == 201
    history = await client.get(f"/v1/rankings/units/{VILLAGE}", headers=auth("admin"))
    assert history.status_code == 200, history.text
    period = history.json()["periods"][0]
    # inspection (60 %) 85, satisfaction (10 %) 4.5 → 87.5, rectification (10 %) 90; no covert visit: the
    # present components share the whole weight: (600·85 + 100·87.5 + 100·90) / 800 = 85.9375 → 85.94.
    assert period["score"] == 85.94
    assert {c["component"]: c["value"] for c in period["components"]} == {
        "inspection": "85.00",
        "covert": None,
        "satisfaction": "87.50",
        "rectification": "90.00",
    }
    assert period["rectification"] == {"found": 10, "fixed": 9, "overdue": 1, "rate": "0.9000"}
    assert [r["score"] for r in period["rounds"]] == ["90.00", "80.00"]
    assert set(history.json()["breakdowns"]) == {str(r["round_id"]) for r in period["rounds"]}
    # Nothing found: no rate; inspection alone.
    neighbour = await client.get(f"/v1/rankings/units/{NEIGHBOUR}", headers=auth("admin"))
    assert neighbour.json()["periods"][0]["score"] == 80.0


async def test_the_figures_are_one_call_per_level_whatever_the_scope(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await add_month(app, "2026-11", NOVEMBER)
    rates = {VILLAGE: (10, 9, 1), NEIGHBOUR: (4, 1, 0), FAR_VILLAGE: (2, 2, 0), FAR_VILLAGE_2: (5, 0, 3)}
    issues.set_rates("village", rates)
    assert (await publish(client, auth, "2026-11")).status_code == 201
    # The towns' figures and the villages' of the whole scope: one NDJSON answer each, no pages.
    assert issues.stats_regions == [COUNTY, COUNTY]
    for code, (found, fixed, overdue) in rates.items():
        history = (await client.get(f"/v1/rankings/units/{code}", headers=auth("admin"))).json()
        figures = history["periods"][0]["rectification"]
        assert (figures["found"], figures["fixed"], figures["overdue"]) == (found, fixed, overdue)


async def test_refusals_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues, count_rows: Count
) -> None:
    assert_problem(await publish(client, auth, "2026-13"), 422, "validation_failed")
    assert_problem(await publish(client, auth, "2026-q4"), 422, "validation_failed")
    assert_problem(await publish(client, auth, "2026-11"), 404, "scope_not_found")
    await add_month(app, "2026-10", OCTOBER)
    assert_problem(await publish(client, auth, "2026-11"), 409, "nothing_to_publish")
    open_round = await add_round(app, period="2026-11", scores={}, status="open")
    refused = assert_problem(await publish(client, auth, "2026-11"), 409, "rounds_open")
    assert refused["round_ids"] == [open_round]
    inspector = await client.post("/v1/periods/2026-10/publish", headers=auth("inspector", COUNTY))
    assert_problem(inspector, 403, "role_not_allowed")
    officer = await client.post("/v1/periods/2026-10/publish", headers=auth("officer", TOWN))
    assert_problem(officer, 403, "insufficient_scope")
    viewer = await client.post("/v1/periods/2026-10/publish", headers=auth("viewer", COUNTY))
    assert_problem(viewer, 403, "insufficient_scope")
    # Another county's scope is not the caller's to publish.
    assert_problem(await publish(client, auth, "2026-10", scope="370283"), 404, "scope_not_found")
    assert_problem(
        await client.post(
            "/v1/periods/2026-10/publish", json={"scope": COUNTY, "x": 1}, headers=auth("admin")
        ),
        422,
        "validation_failed",
    )
    issues.down = True
    down = assert_problem(await publish(client, auth, "2026-10"), 503, "issues_unavailable")
    assert "nothing was changed" in down["detail"]
    assert await stored_counts(count_rows) == [0] * len(TABLES)


async def test_periods_are_read_within_the_callers_region(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await add_month(app, "2026-11", NOVEMBER)
    assert (await publish(client, auth, "2026-11")).status_code == 201
    listed = await client.get("/v1/periods", headers=auth("village", VILLAGE))
    assert [p["period"] for p in listed.json()["items"]] == ["2026-11"]
    one = await client.get("/v1/periods/2026-11", headers=auth("officer", TOWN))
    assert one.status_code == 200 and one.json()["scope"]["code"] == COUNTY
    # The list names the bulletin issued with each period, as one period does (it said null).
    assert one.json()["bulletin_id"] is not None
    assert listed.json()["items"][0]["bulletin_id"] == one.json()["bulletin_id"]
    assert_problem(
        await client.get("/v1/periods/2026-10", headers=auth("admin")), 404, "period_not_published"
    )
    assert_problem(await client.get("/v1/periods/2026-1", headers=auth("admin")), 422, "validation_failed")
    assert_problem(
        await client.get("/v1/periods/2026-11", params={"scope": TOWN}, headers=auth("admin")),
        404,
        "period_not_published",
    )
    assert_problem(
        await client.get("/v1/periods", headers=auth("citizen", VILLAGE)), 403, "insufficient_scope"
    )


async def test_rankings_and_histories_are_cut_to_the_callers_subtree(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await add_month(app, "2026-11", NOVEMBER)
    assert (await publish(client, auth, "2026-11")).status_code == 201

    async def seen(role: str, region: str) -> set[str]:
        answer = await client.get("/v1/rankings", params={"limit": 200}, headers=auth(role, region))
        assert answer.status_code == 200, answer.text
        return {e["unit"]["code"] for e in answer.json()["items"]}

    assert await seen("admin", COUNTY) == {VILLAGE, NEIGHBOUR, TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2}
    assert await seen("officer", TOWN) == {VILLAGE, NEIGHBOUR, TOWN_VILLAGE}
    assert await seen("village", VILLAGE) == {VILLAGE}
    assert await seen("officer", OTHER_TOWN) == {FAR_VILLAGE, FAR_VILLAGE_2}
    mine = await client.get(f"/v1/rankings/units/{VILLAGE}", headers=auth("village", VILLAGE))
    assert mine.status_code == 200 and mine.json()["unit"] == {"code": VILLAGE, "name": "前庄村"}
    assert_problem(
        await client.get(f"/v1/rankings/units/{NEIGHBOUR}", headers=auth("village", VILLAGE)),
        404,
        "unit_not_found",
    )
    assert_problem(
        await client.get(f"/v1/rankings/units/{VILLAGE}", headers=auth("officer", OTHER_TOWN)),
        404,
        "unit_not_found",
    )
    # Paging: one entry a page, every entry once, in ranking order.
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1, "parent": COUNTY, **({"cursor": cursor} if cursor else {})}
        answer = (await client.get("/v1/rankings", params=params, headers=auth("admin"))).json()
        pages += [e["rank"] for e in answer["items"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert pages == [1, 2, 2, 4, 5]
    assert_problem(
        await client.get("/v1/rankings", params={"level": "county"}, headers=auth("admin")),
        422,
        "validation_failed",
    )


async def test_a_units_history_is_newest_period_first_whatever_was_published_first(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await add_month(app, "2026-10", OCTOBER)
    await add_month(app, "2026-11", NOVEMBER)
    assert (await publish(client, auth, "2026-11")).status_code == 201
    assert (await publish(client, auth, "2026-10")).status_code == 201  # October published late
    history = (await client.get(f"/v1/rankings/units/{VILLAGE}", headers=auth("admin"))).json()
    assert [p["period"] for p in history["periods"]] == ["2026-11", "2026-10"]
    one = await client.get(f"/v1/rankings/units/{VILLAGE}", params={"limit": 1}, headers=auth("admin"))
    assert [p["period"] for p in one.json()["periods"]] == ["2026-11"]


async def test_a_reader_below_the_scope_reads_the_summary_of_its_own_subtree_only(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await add_month(app, "2026-11", NOVEMBER)
    assert (await publish(client, auth, "2026-11")).status_code == 201

    async def summary(role: str, region: str) -> dict[str, Any]:
        one = await client.get("/v1/periods/2026-11", headers=auth(role, region))
        assert one.status_code == 200, one.text
        listed = await client.get("/v1/periods", headers=auth(role, region))
        assert [p["summary"] for p in listed.json()["items"]] == [one.json()["summary"]]
        return dict(one.json()["summary"])

    async def entries(path: str, role: str, region: str, key: str) -> dict[str, int]:
        answer = await client.get(path, params={"limit": 200}, headers=auth(role, region))
        counted: dict[str, int] = {}
        for item in answer.json()["items"]:
            counted[item[key]] = counted.get(item[key], 0) + 1
        return counted

    county = await summary("admin", COUNTY)
    assert (county["scored"], county["rankings"]) == (5, 3)
    assert sum(county["lists"].values()) > 0
    for role, region, scored, rankings in (
        ("village", VILLAGE, 1, 2),  # its place in the county and in its town
        ("village", FAR_VILLAGE_2, 1, 2),
        ("officer", TOWN, 3, 2),
    ):
        mine = await summary(role, region)
        assert (mine["scored"], mine["unscored"], mine["rankings"]) == (scored, 0, rankings), region
        assert mine["lists"] == await entries("/v1/lists", role, region, "list_code"), region
        assert mine["escalations"] == await entries("/v1/escalations", role, region, "rule_code"), region
        assert mine["issues_read_at"] == county["issues_read_at"]
    # The last village is on the black list; the first one's reader does not learn of it.
    assert (await summary("village", VILLAGE))["lists"] != county["lists"]
