"""Bulletins (通报制): a published period's bulletin and the weekly one (每周一通报), frozen once issued,
as JSON and .xlsx (Chinese headers, one sheet per list, formula-like names kept as text), cut to a
reader's subtree; every refusal stores nothing."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import openpyxl
from fastapi import FastAPI
from sqlalchemy import update

from services.kit.state import typed_state
from services.scoring.deps import ScoringState
from services.scoring.publishing.models import Bulletin
from services.scoring.publishing.rulesets import PRESET_BODY
from services.scoring.rounds.models import RoundUnit
from tests.scoring.publishing_support import FakeIssues, add_month, add_round, tree_units
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
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCORES = {VILLAGE: "95", NEIGHBOUR: "90", TOWN_VILLAGE: "80", FAR_VILLAGE: "75", FAR_VILLAGE_2: "60"}
FORMULA_NAME = '=HYPERLINK("http://evil.example","大欧村")'


def book(answer: httpx.Response) -> openpyxl.Workbook:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == XLSX
    return openpyxl.load_workbook(io.BytesIO(answer.content))


def rows(sheet: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


async def test_a_published_periods_bulletin_is_frozen_and_has_one_sheet_per_list(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    units = [
        *(u for u in tree_units() if u.code != FAR_VILLAGE_2),
        *(
            type(u)(u.code, FORMULA_NAME, u.level, u.parent, u.path)
            for u in tree_units()
            if u.code == FAR_VILLAGE_2
        ),
    ]
    await add_month(app, "2026-10", SCORES, units=units)
    await add_month(app, "2026-11", SCORES, units=units)
    for period in ("2026-10", "2026-11"):
        assert (await client.post(f"/v1/periods/{period}/publish", headers=auth("admin"))).status_code == 201
    listed = await client.get("/v1/bulletins", params={"period": "2026-11"}, headers=auth("admin"))
    assert listed.status_code == 200, listed.text
    [summary] = listed.json()["items"]
    assert (summary["kind"], summary["title"], summary["scope"]["code"]) == (
        "period",
        "即墨区2026年11月人居环境整治考评通报",
        COUNTY,
    )
    path = f"/v1/bulletins/{summary['id']}"
    first = await client.get(path, headers=auth("admin"))
    assert first.status_code == 200, first.text
    body = first.json()["body"]
    assert first.json()["partial"] is False
    # The scope's own ranking (a town's ranking of its villages is read from /v1/rankings).
    assert [(g["parent"]["code"], g["level"]) for g in body["rankings"]] == [(COUNTY, "village")]
    assert {lst["code"]: [e["unit_code"] for e in lst["entries"]] for lst in body["lists"]} == {
        "red-monthly": [VILLAGE, NEIGHBOUR],
        "black-monthly": [TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2],
    }
    assert {(e["rule_code"], e["unit_code"]) for e in body["escalations"]} == {
        ("black-two-months", u) for u in (TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2)
    }

    # Later changes (a renamed village, new rules) do not reach what was issued.
    database = typed_state(app, ScoringState).database
    async with database.transaction() as session:
        await session.execute(update(RoundUnit).where(RoundUnit.code == VILLAGE).values(name="新前庄村"))
    one_each = copy.deepcopy(PRESET_BODY)
    one_each["lists"][0]["selection"]["count"] = 1
    assert (
        await client.put("/v1/lists/rules", json={"rules": one_each}, headers=auth("admin"))
    ).status_code == 200
    assert (await client.get(path, headers=auth("admin"))).json() == first.json()

    workbook = book(await client.get(path + ".xlsx", headers=auth("admin")))
    assert workbook.sheetnames == ["排名", "月度红榜", "月度黑榜", "问责"]
    ranking = rows(workbook["排名"])
    assert ranking[0] == ("排名范围", "层级", "名次", "区划代码", "名称", "综合得分", "上期名次", "名次变化")
    assert ranking[1] == ("即墨区", "村(居)", 1, VILLAGE, "前庄村", 95, 1, "持平")
    black = rows(workbook["月度黑榜"])
    assert black[0] == ("名次", "参评数", "区划代码", "名称", "综合得分", "事由")
    assert [r[2] for r in black[1:]] == [TOWN_VILLAGE, FAR_VILLAGE, FAR_VILLAGE_2]
    formula = workbook["月度黑榜"].cell(row=4, column=4)
    assert (formula.value, formula.data_type) == (FORMULA_NAME, "s")  # text, never a formula
    assert rows(workbook["问责"])[0] == ("规则", "区划代码", "名称", "连续期数", "措施", "对象", "事由")
    assert rows(workbook["问责"])[1][4] == "约谈、书面检查"


async def test_the_weekly_bulletin_reports_the_weeks_inspections_and_each_villages_rate(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues, count_rows: Count
) -> None:
    in_week = datetime(2026, 11, 17, 2, tzinfo=UTC)  # Tuesday 17 November, 10:00 in Shanghai
    late = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)  # Monday 30 November, 00:30 in Shanghai: next week
    inspected = await add_round(
        app, period="2026-11", window="first", scores=SCORES, closed_at=in_week, name="2026年11月上旬督查"
    )
    await add_round(app, period="2026-11", window="second", scores=SCORES, closed_at=late)
    issues.set_rates("village", {VILLAGE: (8, 7, 1), FAR_VILLAGE: (4, 1, 3)})
    week = {"week_start": "2026-11-16"}

    for body, status, code in (
        ({"week_start": "2026-11-17"}, 422, "not_a_monday"),
        ({"week_start": "2099-01-05"}, 409, "week_not_over"),
        ({"week_start": "2026-11-16", "scope": "370283"}, 404, "region_not_found"),
        ({"week_start": "16/11/2026"}, 422, "validation_failed"),
    ):
        assert_problem(
            await client.post("/v1/bulletins/weekly", json=body, headers=auth("admin")), status, code
        )
    refused = await client.post("/v1/bulletins/weekly", json=week, headers=auth("officer", TOWN))
    assert_problem(refused, 403, "insufficient_scope")
    issues.down = True
    assert_problem(
        await client.post("/v1/bulletins/weekly", json=week, headers=auth("admin")), 503, "issues_unavailable"
    )
    issues.down = False
    assert await count_rows(Bulletin) == 0

    issued = await client.post("/v1/bulletins/weekly", json=week, headers=auth("inspector"))
    assert issued.status_code == 201, issued.text
    bulletin = issued.json()
    assert bulletin["title"] == "即墨区2026年第47周人居环境整治通报（11月16日—11月22日）"
    assert (bulletin["kind"], bulletin["week_start"], bulletin["period"]) == ("weekly", "2026-11-16", None)
    [round_] = bulletin["body"]["inspections"]
    assert round_["round_id"] == inspected
    assert [(e["unit_code"], e["score"], e["deducted"]) for e in round_["entries"]] == [
        (VILLAGE, 95.0, 5.0),
        (NEIGHBOUR, 90.0, 10.0),
        (TOWN_VILLAGE, 80.0, 20.0),
        (FAR_VILLAGE, 75.0, 25.0),
        (FAR_VILLAGE_2, 60.0, 40.0),
    ]
    rates = {
        r["unit_code"]: (r["found"], r["fixed"], r["overdue"], r["rate"])
        for r in bulletin["body"]["rectification"]["rows"]
    }
    assert rates == {
        VILLAGE: (8, 7, 1, 0.875),
        NEIGHBOUR: (0, 0, 0, None),
        TOWN_VILLAGE: (0, 0, 0, None),
        FAR_VILLAGE: (4, 1, 3, 0.25),
        FAR_VILLAGE_2: (0, 0, 0, None),
    }
    assert bulletin["body"]["rectification"]["from"] == "2026-01-01T00:00:00+08:00"
    assert bulletin["body"]["rectification"]["to"] == "2026-11-23T00:00:00+08:00"

    issues.set_rates("village", {VILLAGE: (9, 9, 0)})
    again = await client.post("/v1/bulletins/weekly", json=week, headers=auth("admin"))
    assert again.status_code == 200 and again.json() == bulletin  # frozen: the first issue's figures
    assert await count_rows(Bulletin) == 1

    workbook = book(await client.get(f"/v1/bulletins/{bulletin['id']}.xlsx", headers=auth("admin")))
    assert workbook.sheetnames == ["2026年11月上旬督查", "整改率"]
    assert rows(workbook["整改率"])[0] == ("区划代码", "名称", "发现问题", "已整改", "逾期未销号", "整改率")
    assert rows(workbook["2026年11月上旬督查"])[1] == (VILLAGE, "前庄村", 95, 100, 5)


async def test_a_reader_below_the_scope_sees_only_its_own_rows(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, issues: FakeIssues
) -> None:
    await add_month(app, "2026-11", SCORES)
    published = await client.post("/v1/periods/2026-11/publish", headers=auth("admin"))
    path = f"/v1/bulletins/{published.json()['bulletin_id']}"

    village = await client.get(path, headers=auth("village", VILLAGE))
    assert village.status_code == 200 and village.json()["partial"] is True
    body = village.json()["body"]
    assert [[e["unit_code"] for e in g["entries"]] for g in body["rankings"]] == [[VILLAGE]]
    assert {lst["code"]: [e["unit_code"] for e in lst["entries"]] for lst in body["lists"]} == {
        "red-monthly": [VILLAGE],
        "black-monthly": [],
    }
    other = await client.get(path, headers=auth("officer", OTHER_TOWN))
    assert {e["unit_code"] for g in other.json()["body"]["rankings"] for e in g["entries"]} == {
        FAR_VILLAGE,
        FAR_VILLAGE_2,
    }
    sheet = book(await client.get(path + ".xlsx", headers=auth("village", VILLAGE)))["排名"]
    assert [r[3] for r in rows(sheet)[1:]] == [VILLAGE]
    assert_problem(await client.get(path, headers=auth("citizen", VILLAGE)), 403, "insufficient_scope")
    assert_problem(await client.get("/v1/bulletins/999", headers=auth("admin")), 404, "bulletin_not_found")
    listed = await client.get("/v1/bulletins", params={"kind": "weekly"}, headers=auth("admin"))
    assert listed.json()["items"] == []

    # A town's own publication: outside the other town's region altogether.
    await add_month(app, "2026-11", {VILLAGE: "90", NEIGHBOUR: "80", TOWN_VILLAGE: "70"}, scope=TOWN)
    town = await client.post("/v1/periods/2026-11/publish", json={"scope": TOWN}, headers=auth("admin"))
    assert town.status_code == 201, town.text
    town_path = f"/v1/bulletins/{town.json()['bulletin_id']}"
    assert (await client.get(town_path, headers=auth("officer", TOWN))).json()["partial"] is False
    assert_problem(
        await client.get(town_path, headers=auth("officer", OTHER_TOWN)), 404, "bulletin_not_found"
    )
    assert_problem(
        await client.get(town_path + ".xlsx", headers=auth("officer", OTHER_TOWN)), 404, "bulletin_not_found"
    )
    town_period = await client.get(
        "/v1/periods/2026-11", params={"scope": TOWN}, headers=auth("officer", OTHER_TOWN)
    )
    assert_problem(town_period, 404, "period_not_published")
    seen = await client.get("/v1/bulletins", headers=auth("officer", OTHER_TOWN))
    assert [b["scope"]["code"] for b in seen.json()["items"]] == [COUNTY]
