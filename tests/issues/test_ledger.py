"""The 整改台账 and the 负面清单 as spreadsheets, on SQLite and PostgreSQL: the columns, the list's filters and
scope, reporters' formula-like text kept as text (read back with openpyxl), batches, and every refusal."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from openpyxl.utils.escape import unescape

from services.issues.cases.models import Issue
from services.kit.exports import FORMULA_TRIGGERS
from services.kit.state import state_of
from tests.issues.issue_rows import T0, insert_issues, issue_row
from tests.issues.lifecycle import report
from tests.support.builders import (
    COUNTY,
    FAR_GRID,
    FAR_VILLAGE,
    GRID,
    NEIGHBOUR,
    OTHER_TOWN,
    TOWN,
    TOWN_VILLAGE,
    VILLAGE,
)
from tests.support.problems import assert_problem, assert_unauthorized
from tests.support.tokens import subject_for

Auth = Callable[..., dict[str, str]]
EXPORT = "/v1/issues/export"
HEADERS = [
    "编号",
    "问题类别",
    "所在村",
    "具体位置",
    "问题描述",
    "发现时间",
    "整改时限",
    "责任单位",
    "状态",
    "销号时间",
    "用时（天）",
    "退回次数",
    "整改前照片",
    "整改后照片",
]
MEDIA = "http://media.test"
P1, P2, P3 = "1" * 32, "2" * 32, "3" * 32
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def negative_list(code: str) -> str:
    return f"/v1/regions/{code}/negative-list"


def _csv(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == HEADERS
    return rows[1:]


def _xlsx(answer: httpx.Response) -> tuple[Any, list[list[Any]]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == XLSX
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    sheet = book.active
    assert sheet is not None
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == HEADERS
    return sheet, values[1:]


def _sheet_xml(answer: httpx.Response) -> str:
    with zipfile.ZipFile(io.BytesIO(answer.content)) as package:
        return package.read("xl/worksheets/sheet1.xml").decode()


def _three() -> list[dict[str, Any]]:
    """A fix in a grid of 前庄村 (closed after one return), an open problem in 七级村, a rejected report."""
    return [
        issue_row(
            1,
            region=GRID,
            status="closed",
            category="luan-reng-dao",
            responsible=VILLAGE,
            closed_at=T0 + timedelta(days=2, hours=12),
            rework_count=1,
            before=[P1, P2],
            after=[P3],
            description="网格内路边乱扔垃圾",
            address="前庄村第一网格 北街",
        ),
        issue_row(
            2, region=FAR_VILLAGE, responsible=OTHER_TOWN, description="七级村村口乱堆柴草", address=None
        ),
        issue_row(3, region=TOWN_VILLAGE, status="rejected", description="重复上报"),
    ]


# ---- the 整改台账 ----


@pytest.mark.parametrize("overrides", [{"media_url": MEDIA + "/"}])
async def test_the_ledger_has_one_row_an_issue_with_names_times_and_photo_links(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(app, _three())
    answer = await client.get(EXPORT, params={"format": "csv"}, headers=auth("admin"))
    rows = _csv(answer)
    assert rows == [
        [
            f"{COUNTY}-2026-000001",
            "乱扔乱倒",
            "前庄村",  # the grid's village
            "前庄村第一网格 北街",
            "网格内路边乱扔垃圾",
            "2026-03-02T09:00:00+08:00",
            "2026-03-09T09:00:00+08:00",
            "前庄村",
            "已销号",
            "2026-03-04T21:00:00+08:00",
            "2.5",
            "1",
            f"{MEDIA}/v1/photos/{P1}/content?variant=display\n{MEDIA}/v1/photos/{P2}/content?variant=display",
            f"{MEDIA}/v1/photos/{P3}/content?variant=display",
        ],
        [
            f"{COUNTY}-2026-000002",
            "乱堆乱放",
            "七级村",
            "",
            "七级村村口乱堆柴草",
            "2026-03-02T09:00:00+08:00",
            "2026-03-09T09:00:00+08:00",
            "移风店镇",
            "整改中",
            "",
            "",
            "0",
            "",
            "",
        ],
        [
            f"{COUNTY}-2026-000003",
            "乱堆乱放",
            "西河村",
            "村东首",
            "重复上报",
            "2026-03-02T09:00:00+08:00",
            "",
            "",
            "不予立案",
            "",
            "",
            "0",
            "",
            "",
        ],
    ]
    disposition = answer.headers["content-disposition"]
    assert (
        disposition.startswith("attachment;")
        and f"filename*=UTF-8''{quote('整改台账-' + COUNTY)}" in disposition
    )


async def test_the_ledger_as_xlsx_reads_back_with_beijing_times_and_numbers(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(app, _three())
    answer = await client.get(EXPORT, headers=auth("admin"))  # xlsx by default
    sheet, rows = _xlsx(answer)
    assert sheet.title == "整改台账"
    assert [r[0] for r in rows] == [f"{COUNTY}-2026-00000{n}" for n in (1, 2, 3)]
    closed = rows[0]
    assert closed[1:5] == ["乱扔乱倒", "前庄村", "前庄村第一网格 北街", "网格内路边乱扔垃圾"]
    assert closed[5] == datetime(2026, 3, 2, 9, 0) and closed[9] == datetime(2026, 3, 4, 21, 0)  # wall time
    assert closed[8] == "已销号" and closed[10] == 2.5 and closed[11] == 1
    assert closed[12].splitlines() == [f"/v1/photos/{p}/content?variant=display" for p in (P1, P2)]
    assert rows[1][8] == "整改中" and rows[1][9] is None and rows[1][10] is None
    assert "<f>" not in _sheet_xml(answer)
    assert list((state_of(app).settings.data_dir / "tmp").iterdir()) == []  # the scratch file is gone


async def test_the_ledger_is_the_list_for_the_same_filters(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    rows = [
        *_three(),
        issue_row(4, region=NEIGHBOUR, status="submitted", category="ting-yuan", description="庭院杂物堆放"),
        issue_row(5, region=FAR_GRID, status="closed", closed_at=T0 + timedelta(days=1), source="citizen"),
    ]
    await insert_issues(app, rows)
    admin = auth("admin")
    for params in (
        {"status": "closed"},
        {"status": ["assigned", "submitted"]},
        {"region": OTHER_TOWN},
        {"region": VILLAGE},
        {"category": "ting-yuan"},
        {"source": "citizen"},
        {"q": "杂物"},
        {
            "reported_from": (T0 - timedelta(days=1)).isoformat(),
            "closed_to": (T0 + timedelta(days=2)).isoformat(),
        },
        {},
    ):
        listed = await client.get("/v1/issues", params={**params, "limit": 200}, headers=admin)
        assert listed.status_code == 200, listed.text
        exported = _csv(await client.get(EXPORT, params={**params, "format": "csv"}, headers=admin))
        assert [r[0] for r in exported] == sorted(i["code"] for i in listed.json()["items"]), params
    assert [
        r[0]
        for r in _csv(await client.get(EXPORT, params={"format": "csv", "status": "closed"}, headers=admin))
    ] == [
        f"{COUNTY}-2026-000001",
        f"{COUNTY}-2026-000005",
    ]


async def test_the_ledger_holds_only_what_the_caller_may_see(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    citizen = subject_for("citizen", VILLAGE)
    await insert_issues(
        app, [*_three(), issue_row(4, region=VILLAGE, source="citizen", reporter=str(citizen))]
    )
    other_town = _csv(await client.get(EXPORT, params={"format": "csv"}, headers=auth("officer", OTHER_TOWN)))
    assert [r[0] for r in other_town] == [f"{COUNTY}-2026-000002"]
    town = _csv(await client.get(EXPORT, params={"format": "csv"}, headers=auth("officer", TOWN)))
    assert [r[0] for r in town] == [f"{COUNTY}-2026-000001", f"{COUNTY}-2026-000003", f"{COUNTY}-2026-000004"]
    own = _csv(await client.get(EXPORT, params={"format": "csv"}, headers=auth("citizen", VILLAGE)))
    assert [r[0] for r in own] == [f"{COUNTY}-2026-000004"]  # a citizen: its own reports, as in the list


async def test_an_issue_reported_through_the_api_is_in_the_ledger(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    made = await client.post("/v1/issues", json=report(address="=前庄村东首"), headers=auth("inspector"))
    assert made.status_code == 201, made.text
    (row,) = _csv(await client.get(EXPORT, params={"format": "csv"}, headers=auth("officer", TOWN)))
    issue = made.json()
    assert row[0] == issue["code"] and row[1:5] == [
        "乱堆乱放",
        "前庄村",
        "'=前庄村东首",
        issue["description"],
    ]
    assert datetime.fromisoformat(row[6]) == datetime.fromisoformat(issue["deadline"]).replace(microsecond=0)
    assert row[7] == "前庄村" and row[8] == "整改中" and row[11] == "0"


async def test_the_export_is_not_read_as_an_issue_id(client: httpx.AsyncClient, auth: Auth) -> None:
    admin = auth("admin")
    assert (await client.get(EXPORT, headers=admin)).status_code == 200
    assert_problem(await client.get("/v1/issues/12345", headers=admin), 404, "issue_not_found")


@pytest.mark.parametrize(
    ("params", "role", "status", "code"),
    [
        ({"region": OTHER_TOWN}, "officer", 404, "region_not_found"),
        ({"region": "no-such"}, "officer", 404, "region_not_found"),
        ({"format": "pdf"}, "officer", 422, "validation_failed"),
        ({"status": "done"}, "officer", 422, "validation_failed"),
        ({"reported_from": "2026-03-01"}, "officer", 422, "validation_failed"),  # the list's own rules
    ],
)
async def test_a_bad_export_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
    auth: Auth,
    app: FastAPI,
    count_rows: Callable[..., Any],
    params: dict[str, Any],
    role: str,
    status: int,
    code: str,
) -> None:
    await insert_issues(app, _three())
    answer = await client.get(EXPORT, params=params, headers=auth(role, TOWN))
    body = assert_problem(answer, status, code)
    assert "content-disposition" not in answer.headers and "编号" not in str(body)
    assert await count_rows(Issue) == 3
    scratch = state_of(app).settings.data_dir / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []


async def test_an_export_needs_a_token_with_issues_read(client: httpx.AsyncClient, auth: Auth) -> None:
    assert_unauthorized(await client.get(EXPORT), "missing_token")
    assert_unauthorized(await client.get(negative_list(VILLAGE)), "missing_token")
    no_scope = auth("inspector", scopes=["regions:read"])
    assert_problem(await client.get(EXPORT, headers=no_scope), 403, "insufficient_scope")
    assert_problem(await client.get(negative_list(VILLAGE), headers=no_scope), 403, "insufficient_scope")


# ---- reporters' text stays text ----

FORMULA_LIKE = [
    '=HYPERLINK("http://evil.example","点我")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


async def test_formula_like_descriptions_stay_text_in_xlsx_and_csv(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(
        app,
        [
            issue_row(n, description=text, address=text if n % 2 else "=A1")
            for n, text in enumerate(FORMULA_LIKE, start=1)
        ],
    )
    admin = auth("admin")
    book = await client.get(EXPORT, headers=admin)
    sheet, rows = _xlsx(book)
    assert "<f>" not in _sheet_xml(book) and "<f " not in _sheet_xml(book)  # no formula anywhere
    for number, (row, text) in enumerate(zip(rows, FORMULA_LIKE, strict=True), start=1):
        # Shown exactly as reported. A carriage return is written as the OOXML escape `_x000D_` (an XML
        # reader would turn a raw one into a line feed); Excel reads the escape back, openpyxl leaves it.
        assert unescape(row[4]) == text
        cell = sheet.cell(row=number + 1, column=5)
        assert cell.data_type == "s" and cell.quotePrefix, text  # a string, marked as text
        assert sheet.cell(row=number + 1, column=4).data_type == "s"
    csv_rows = _csv(await client.get(EXPORT, params={"format": "csv"}, headers=admin))
    for row, text in zip(csv_rows, FORMULA_LIKE, strict=True):
        assert row[4] == "'" + text
    assert all(not cell.startswith(FORMULA_TRIGGERS) for row in csv_rows for cell in row)
    negative = _csv(await client.get(negative_list(VILLAGE), params={"format": "csv"}, headers=admin))
    assert [row[4] for row in negative] == ["'" + text for text in FORMULA_LIKE]


# ---- volume: rows read in batches ----


async def test_a_county_year_streams_in_batches_every_row_once_in_order(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    count = 1234  # more than two batches of 500
    places = [VILLAGE, GRID, NEIGHBOUR, TOWN_VILLAGE, FAR_VILLAGE, FAR_GRID]
    await insert_issues(
        app,
        [
            issue_row(n, region=places[n % len(places)], reported_at=T0 + timedelta(minutes=n))
            for n in range(1, count + 1)
        ],
    )
    admin = auth("admin")
    rows = _csv(await client.get(EXPORT, params={"format": "csv"}, headers=admin))
    assert [r[0] for r in rows] == [f"{COUNTY}-2026-{n:06d}" for n in range(1, count + 1)]
    _, book_rows = _xlsx(await client.get(EXPORT, headers=admin))
    assert len(book_rows) == count and book_rows[-1][0] == f"{COUNTY}-2026-{count:06d}"


# ---- the 负面清单 ----


async def test_a_villages_negative_list_holds_its_open_problems(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    await insert_issues(
        app,
        [
            issue_row(1, region=VILLAGE, status="reported"),
            issue_row(2, region=GRID, status="assigned"),
            issue_row(3, region=VILLAGE, status="submitted"),
            issue_row(4, region=VILLAGE, status="closed", closed_at=T0 + timedelta(days=1)),
            issue_row(5, region=VILLAGE, status="rejected"),
            issue_row(6, region=NEIGHBOUR, status="assigned"),
        ],
    )
    village = auth("village", VILLAGE)
    answer = await client.get(negative_list(VILLAGE), params={"format": "csv"}, headers=village)
    rows = _csv(answer)
    assert [(r[0][-1], r[2], r[8]) for r in rows] == [
        ("1", "前庄村", "待立案"),
        ("3", "前庄村", "待验收"),
        ("2", "前庄村", "整改中"),
    ]
    assert f"filename*=UTF-8''{quote('负面清单-前庄村')}" in answer.headers["content-disposition"]
    sheet, book_rows = _xlsx(await client.get(negative_list(VILLAGE), headers=village))
    assert sheet.title == "负面清单" and [r[0] for r in book_rows] == [r[0] for r in rows]
    # A town's list: every village's open problems, village by village.
    town = _csv(
        await client.get(negative_list(TOWN), params={"format": "csv"}, headers=auth("officer", TOWN))
    )
    assert [r[0][-1] for r in town] == ["1", "3", "2", "6"]


@pytest.mark.parametrize(
    ("code", "role", "home", "status", "problem"),
    [
        (FAR_VILLAGE, "officer", TOWN, 404, "region_not_found"),
        (NEIGHBOUR, "village", VILLAGE, 404, "region_not_found"),
        ("370282999999", "admin", COUNTY, 404, "region_not_found"),
        ("bad%20code", "admin", COUNTY, 404, "region_not_found"),
    ],
)
async def test_a_negative_list_outside_the_callers_subtree_is_not_found(
    client: httpx.AsyncClient,
    auth: Auth,
    app: FastAPI,
    code: str,
    role: str,
    home: str,
    status: int,
    problem: str,
) -> None:
    await insert_issues(app, [issue_row(1, region=FAR_VILLAGE), issue_row(2, region=NEIGHBOUR)])
    answer = await client.get(negative_list(code), params={"format": "csv"}, headers=auth(role, home))
    assert_problem(answer, status, problem)
    assert "content-disposition" not in answer.headers


async def test_a_negative_list_in_another_format_is_refused(client: httpx.AsyncClient, auth: Auth) -> None:
    assert_problem(
        await client.get(negative_list(VILLAGE), params={"format": "pdf"}, headers=auth("admin")),
        422,
        "validation_failed",
    )
