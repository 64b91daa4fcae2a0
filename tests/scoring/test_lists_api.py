"""The seeds' rules through publishing: two and three months on the black list, overdue issues, quarterly
ties at the 10th place and a score of exactly 80; the rules as editable data; escalations listed,
filtered and acknowledged once; all of it cut to the caller's subtree."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from services.scoring.publishing.models import RuleSetVersion
from services.scoring.publishing.rulesets import PRESET_BODY
from tests.scoring.publishing_support import (
    COVERT_ONLY,
    FakeIssues,
    add_month,
    add_round,
    add_rubric,
    extra_towns,
    tree_units,
)
from tests.scoring.publishing_support import issues as issues  # the fixture
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

MONTHS = {
    "2026-10": {VILLAGE: "95", TOWN_VILLAGE: "90", NEIGHBOUR: "80", FAR_VILLAGE: "75", FAR_VILLAGE_2: "60"},
    "2026-11": {VILLAGE: "95", NEIGHBOUR: "90", TOWN_VILLAGE: "80", FAR_VILLAGE: "75", FAR_VILLAGE_2: "60"},
    "2026-12": {NEIGHBOUR: "95", FAR_VILLAGE: "90", VILLAGE: "80", TOWN_VILLAGE: "75", FAR_VILLAGE_2: "60"},
}


async def publish(client: httpx.AsyncClient, auth: Auth, period: str) -> dict[str, Any]:
    answer = await client.post(f"/v1/periods/{period}/publish", headers=auth("admin", COUNTY))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def get_items(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[Any]:
    answer = await client.get(path, params={"limit": 200, **params}, headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


async def three_months(app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues) -> None:
    for period, scores in MONTHS.items():
        await add_month(app, period, scores)
        if period == "2026-12":
            issues.set_rates("village", {FAR_VILLAGE: (5, 3, 2), VILLAGE: (4, 4, 0)})
        await publish(client, auth, period)


async def test_two_and_three_months_on_the_black_list_escalate_as_the_seed_says(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await three_months(app, client, auth, issues)
    admin = auth("admin")

    async def listed(period: str, code: str) -> list[str]:
        entries = await get_items(client, "/v1/lists", admin, period=period, list=code)
        return sorted(e["unit"]["code"] for e in entries)

    assert await listed("2026-10", "black-monthly") == sorted([NEIGHBOUR, FAR_VILLAGE, FAR_VILLAGE_2])
    assert await listed("2026-11", "black-monthly") == sorted([TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2])
    assert await listed("2026-12", "black-monthly") == sorted([VILLAGE, TOWN_VILLAGE, FAR_VILLAGE_2])
    # A unit on the black list is not also on the red one (best 3 of 5 overlap the worst 3).
    assert await listed("2026-11", "red-monthly") == sorted([VILLAGE, NEIGHBOUR])

    def fired(escalations: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
        return {(e["rule_code"], e["unit"]["code"], e["streak"]) for e in escalations}

    assert await get_items(client, "/v1/escalations", admin, period="2026-10") == []
    assert fired(await get_items(client, "/v1/escalations", admin, period="2026-11")) == {
        ("black-two-months", FAR_VILLAGE, 2),
        ("black-two-months", FAR_VILLAGE_2, 2),
    }
    december = await get_items(client, "/v1/escalations", admin, period="2026-12")
    # Three months running: 组织处理, which replaces the 约谈 of two months; two months: 约谈 and 书面检查;
    # overdue issues not struck off: the village secretary is interviewed (seed 003).
    assert fired(december) == {
        ("black-three-months", FAR_VILLAGE_2, 3),
        ("black-two-months", TOWN_VILLAGE, 2),
        ("overdue-interview", FAR_VILLAGE, 1),
    }
    three = next(e for e in december if e["rule_code"] == "black-three-months")
    assert three["measures"] == ["organisational_handling"] and three["measure_names"] == ["组织处理"]
    assert three["addressees"] == ["村(居)主要负责人", "管区主要负责人"]
    assert three["reason"] == "连续3个月列入月度黑榜（第5名，共5个，60.00分）"
    assert three["figures"] == {"rank": 5, "size": 5, "place_from_bottom": 1, "score": "60.00", "streak": 3}
    assert three["unit"] == {"code": FAR_VILLAGE_2, "name": "大欧村"} and three["acknowledged"] is False
    overdue = next(e for e in december if e["rule_code"] == "overdue-interview")
    assert overdue["reason"] == "2个问题未按期销号" and overdue["figures"]["overdue_issues"] == 2

    history = await client.get(f"/v1/rankings/units/{FAR_VILLAGE_2}", headers=admin)
    assert history.json()["streaks"] == {"black-monthly": 3}
    assert [p["period"] for p in history.json()["periods"]] == ["2026-12", "2026-11", "2026-10"]
    assert {e["rule_code"] for e in history.json()["escalations"]} == {
        "black-two-months",
        "black-three-months",
    }


async def test_quarterly_ties_at_the_tenth_place_and_exactly_80(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    rubric = await add_rubric(app, COVERT_ONLY)
    towns = extra_towns(13)
    county = next(u for u in tree_units() if u.code == COUNTY)
    marks = ["95", "90", "88", "88", "80", "80", "79.99", "79", "78", "77", "76", "75", "74"]
    scores = {town.code: mark for town, mark in zip(towns, marks, strict=True)}
    by_mark = {mark: [c for c, m in scores.items() if m == mark] for mark in marks}
    for quarter in ("2026-Q3", "2026-Q4"):
        await add_round(
            app,
            period=quarter,
            kind="covert",
            unit_level="town",
            units=[county, *towns],
            scores=scores,
            rubric_id=rubric,
        )
        await publish(client, auth, quarter)
    admin = auth("admin")

    def codes(*wanted: str) -> list[str]:
        return sorted(code for mark in wanted for code in by_mark[mark])

    criticised = await get_items(client, "/v1/lists", admin, period="2026-Q4", list="criticised-quarterly")
    # 后10名 and 低于80分: exactly 80 is not below 80, and the tie at the 10th place is in the bottom 10 but
    # above 80.
    assert sorted(e["unit"]["code"] for e in criticised) == codes("79.99", "79", "78", "77", "76", "75", "74")
    praised = await get_items(client, "/v1/lists", admin, period="2026-Q4", list="praised-quarterly")
    assert sorted(e["unit"]["code"] for e in praised) == codes("95", "90", "88", "80")
    places = {
        e["unit"]["code"]: e["rank"]
        for e in await get_items(client, "/v1/rankings", admin, period="2026-Q4", level="town")
    }
    assert [places[c] for c in codes("88")] == [3, 3] and [places[c] for c in codes("80")] == [5, 5]

    escalations = await get_items(client, "/v1/escalations", admin, period="2026-Q4", rule="bottom-ten-twice")
    # Both towns tied at the 10th place from the bottom are in the bottom 10, twice: both interviewed; the
    # 11th from the bottom is not.
    assert sorted(e["unit"]["code"] for e in escalations) == codes(
        "88", "80", "79.99", "79", "78", "77", "76", "75", "74"
    )
    assert {e["streak"] for e in escalations} == {2}
    statements = await get_items(
        client, "/v1/escalations", admin, period="2026-Q4", rule="criticised-statement"
    )
    assert len(statements) == 7
    assert await get_items(client, "/v1/escalations", admin, period="2026-Q3", rule="bottom-ten-twice") == []


async def test_the_rules_are_data_the_office_edits(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues, count_rows: Count
) -> None:
    presets = await client.get("/v1/lists/rules/presets", headers=auth("village", VILLAGE))
    assert presets.status_code == 200 and presets.json()["rules"] == PRESET_BODY
    current = await client.get("/v1/lists/rules", headers=auth("officer", TOWN))
    assert (current.json()["version"], current.json()["preset"]) == (None, True)

    broken = copy.deepcopy(PRESET_BODY)
    broken["lists"][1]["selection"]["count"] = 0
    broken["escalations"][0]["trigger"]["list_code"] = "no-such-list"
    refused = await client.put("/v1/lists/rules", json={"rules": broken}, headers=auth("admin"))
    body = assert_problem(refused, 422, "rules_invalid")
    assert len(body["problems"]) == 2
    garbled = await client.put("/v1/lists/rules", json={"rules": {"lists": 3}}, headers=auth("admin"))
    assert_problem(garbled, 422, "rules_invalid")
    # Places and streaks are whole numbers: text was a 500, a fraction or a boolean was stored.
    for where, value in [("count", "3"), ("count", 2.5), ("count", True), ("share_permille", "100")]:
        wrong = copy.deepcopy(PRESET_BODY)
        wrong["lists"][0]["selection"].pop("count", None)
        wrong["lists"][0]["selection"][where] = value
        answer = await client.put("/v1/lists/rules", json={"rules": wrong}, headers=auth("admin"))
        assert_problem(answer, 422, "rules_invalid")
    streaky = copy.deepcopy(PRESET_BODY)
    streaky["escalations"][0]["streak"] = 2.9
    assert_problem(
        await client.put("/v1/lists/rules", json={"rules": streaky}, headers=auth("admin")),
        422,
        "rules_invalid",
    )
    inspector = await client.put("/v1/lists/rules", json={"rules": PRESET_BODY}, headers=auth("inspector"))
    assert_problem(inspector, 403, "role_not_allowed")
    assert await count_rows(RuleSetVersion) == 0

    one_each = copy.deepcopy(PRESET_BODY)
    for rule in one_each["lists"][:2]:
        rule["selection"]["count"] = 1
    stored = await client.put(
        "/v1/lists/rules", json={"rules": one_each, "note": "红黑榜各1名"}, headers=auth("admin")
    )
    assert stored.status_code == 200, stored.text
    assert (stored.json()["version"], stored.json()["preset"], stored.json()["note"]) == (
        1,
        False,
        "红黑榜各1名",
    )
    inherited = await client.get("/v1/lists/rules", headers=auth("village", VILLAGE))
    assert (inherited.json()["version"], inherited.json()["scope_code"]) == (1, COUNTY)

    await add_month(app, "2026-11", MONTHS["2026-11"])
    published = await publish(client, auth, "2026-11")
    assert published["rule_set_version"] == 1 and published["summary"]["lists"] == {
        "black-monthly": 1,
        "red-monthly": 1,
    }
    again = await client.put("/v1/lists/rules", json={"rules": PRESET_BODY}, headers=auth("admin"))
    assert again.json()["version"] == 2
    # A publication keeps the rules it applied.
    kept = await client.get("/v1/periods/2026-11", headers=auth("admin"))
    assert kept.json()["rule_set_version"] == 1


async def test_the_nearest_regions_newest_rules_apply_and_the_broadest_publication_is_read(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues, backend: str
) -> None:
    def rules(count: int) -> dict[str, Any]:
        body = copy.deepcopy(PRESET_BODY)
        for rule in body["lists"][:2]:
            rule["selection"]["count"] = count
        return body

    for region, count, note in ((COUNTY, 1, "县1"), (COUNTY, 2, "县2"), (TOWN, 1, "镇1"), (COUNTY, 3, "县3")):
        stored = await client.put(
            "/v1/lists/rules", json={"rules": rules(count), "note": note}, headers=auth("admin", region)
        )
        assert stored.status_code == 200, stored.text
    for (role, region), expected in {
        ("admin", COUNTY): (COUNTY, 3, "县3"),
        ("officer", TOWN): (TOWN, 1, "镇1"),
        ("village", VILLAGE): (TOWN, 1, "镇1"),  # its town's, though the county's is newer
        ("village", FAR_VILLAGE): (COUNTY, 3, "县3"),
    }.items():
        current = (await client.get("/v1/lists/rules", headers=auth(role, region))).json()
        assert (current["scope_code"], current["version"], current["note"]) == expected, region

    # A county's and a town's publication of one month: each applies its nearest rules, and a reader sees
    # the broadest one that overlaps its region unless it names a scope.
    await add_month(app, "2026-11", MONTHS["2026-11"])
    town_scores = {code: MONTHS["2026-11"][code] for code in (VILLAGE, NEIGHBOUR, TOWN_VILLAGE)}
    await add_month(app, "2026-11", town_scores, scope=TOWN)
    county = await publish(client, auth, "2026-11")
    town = await client.post("/v1/periods/2026-11/publish", json={"scope": TOWN}, headers=auth("admin"))
    assert town.status_code == 201, town.text
    assert (county["rule_set_version"], town.json()["rule_set_version"]) == (3, 1)
    for (role, region), scope, expected in (
        (("officer", TOWN), None, county["id"]),
        (("officer", TOWN), TOWN, town.json()["id"]),
        (("admin", COUNTY), None, county["id"]),
        (("village", VILLAGE), TOWN, town.json()["id"]),
    ):
        params = {"scope": scope} if scope else {}
        read = await client.get("/v1/periods/2026-11", params=params, headers=auth(role, region))
        assert read.status_code == 200, read.text
        assert read.json()["id"] == expected, (region, scope)
    assert_problem(
        await client.get("/v1/periods/2026-11", params={"scope": TOWN}, headers=auth("officer", OTHER_TOWN)),
        404,
        "period_not_published",
    )


async def test_escalations_are_acknowledged_once_and_read_within_the_region(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await three_months(app, client, auth, issues)
    admin = auth("admin")
    mine = await get_items(client, "/v1/escalations", auth("officer", OTHER_TOWN))
    assert {e["unit"]["code"] for e in mine} == {FAR_VILLAGE, FAR_VILLAGE_2}
    assert await get_items(client, "/v1/escalations", auth("village", VILLAGE)) == []
    town = await get_items(client, "/v1/escalations", auth("officer", TOWN))
    assert {e["unit"]["code"] for e in town} == {TOWN_VILLAGE}
    target = next(e for e in mine if e["rule_code"] == "black-three-months")
    path = f"/v1/escalations/{target['id']}"

    assert_problem(await client.get(path, headers=auth("officer", TOWN)), 404, "escalation_not_found")
    assert_problem(
        await client.post(path + "/acknowledge", headers=auth("inspector", COUNTY)), 403, "role_not_allowed"
    )
    assert_problem(
        await client.post(path + "/acknowledge", json={"note": "bad\u202enote"}, headers=admin),
        422,
        "validation_failed",
    )
    assert (await client.get(path, headers=admin)).json()["acknowledged"] is False
    # An office of the other town cannot reach it at all.
    assert_problem(
        await client.post(path + "/acknowledge", headers=auth("admin", TOWN)), 404, "escalation_not_found"
    )
    done = await client.post(path + "/acknowledge", json={"note": "12月3日已组织处理"}, headers=admin)
    assert done.status_code == 200, done.text
    assert (done.json()["acknowledged"], done.json()["acknowledgement_note"]) == (True, "12月3日已组织处理")
    assert done.json()["acknowledged_at"] is not None
    assert_problem(await client.post(path + "/acknowledge", headers=admin), 409, "already_acknowledged")
    assert (await client.get(path, headers=admin)).json()["acknowledgement_note"] == "12月3日已组织处理"

    open_ones = await get_items(client, "/v1/escalations", admin, acknowledged="false")
    assert target["id"] not in {e["id"] for e in open_ones} and len(open_ones) == 4
    acknowledged = await get_items(client, "/v1/escalations", admin, acknowledged="true")
    assert [e["id"] for e in acknowledged] == [target["id"]]
    by_unit = await get_items(client, "/v1/escalations", admin, unit=FAR_VILLAGE_2)
    assert {e["rule_code"] for e in by_unit} == {"black-two-months", "black-three-months"}
    assert_problem(
        await client.get("/v1/escalations", params={"acknowledged": "yes"}, headers=admin),
        422,
        "validation_failed",
    )

    lists_mine = await get_items(client, "/v1/lists", auth("village", VILLAGE), period="2026-12")
    assert {(e["list_code"], e["unit"]["code"]) for e in lists_mine} == {("black-monthly", VILLAGE)}
    assert_problem(await client.get("/v1/lists", headers=auth("citizen", VILLAGE)), 403, "insufficient_scope")


async def test_the_last_town_of_a_month_and_the_bottom_three_of_a_year(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    towns = extra_towns(5)
    county = next(u for u in tree_units() if u.code == COUNTY)
    marks = dict(zip((t.code for t in towns), ["92", "88", "85", "85", "70"], strict=True))
    # Seed 002: the town ranked last of the month is interviewed, with the lead unit's head.
    await add_month(app, "2026-11", marks, unit_level="town", units=[county, *towns])
    await publish(client, auth, "2026-11")
    monthly = await get_items(
        client, "/v1/escalations", auth("admin"), period="2026-11", rule="town-last-monthly"
    )
    assert [(e["unit"]["code"], e["addressees"]) for e in monthly] == [
        (towns[4].code, ["乡镇主要负责人", "牵头单位负责人"])
    ]
    assert monthly[0]["measure_names"] == ["约谈", "表态发言", "公开曝光"]

    # Seed 002: the year's bottom three under key management (末位管理), the last reported upward; the tie
    # at the third place from the bottom takes both towns in.
    rubric = await add_rubric(app, COVERT_ONLY)
    await add_round(
        app,
        period="2026",
        kind="covert",
        unit_level="town",
        units=[county, *towns],
        scores=marks,
        rubric_id=rubric,
    )
    await publish(client, auth, "2026")
    managed = await get_items(client, "/v1/lists", auth("admin"), period="2026", list="key-management-yearly")
    assert sorted(e["unit"]["code"] for e in managed) == sorted(t.code for t in towns[2:])
    upward = await get_items(
        client, "/v1/escalations", auth("admin"), period="2026", rule="yearly-last-upward"
    )
    assert [e["unit"]["code"] for e in upward] == [towns[4].code]
    assert upward[0]["measures"] == ["key_management", "report_upward"]
