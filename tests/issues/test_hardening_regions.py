"""Region text a person could misread or a spreadsheet could run: refused, or exported as plain text."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col

from services.issues.regions.models import Region
from services.kit.exports import FORMULA_TRIGGERS, csv_safe
from services.kit.text import is_plain_text
from tests.support.builders import COUNTY, FAR_VILLAGE, OTHER_TOWN, TOWN, VILLAGE, new_region
from tests.support.problems import assert_problem

# ---- 5. bidirectional control characters ----

BIDI = [
    "\u202e",
    "\u202d",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200f",
    "\u061c",
]


@pytest.mark.parametrize("mark", BIDI, ids=[f"U+{ord(m):04X}" for m in BIDI])
async def test_a_name_with_a_direction_changing_character_is_refused_and_nothing_stored(
    mark: str, client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Callable[..., Any]
) -> None:
    body = new_region(code="370282103290", name=f"村{mark}gpj.exe")
    body_of_the_problem = assert_problem(
        await client.post("/v1/regions", json=body, headers=auth("admin")), 422, "validation_failed"
    )
    assert body_of_the_problem["errors"][0]["field"] == "body.name"
    assert await count_rows(Region, col(Region.code) == "370282103290") == 0


async def test_direction_characters_are_refused_in_user_and_client_names_and_imports(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Callable[..., Any]
) -> None:
    admin = auth("admin")
    user = {
        "username": "bidi.user",
        "password": "a-long-password-1",
        "display_name": "张\u202e伟",
        "role": "village",
        "region_code": VILLAGE,
    }
    assert_problem(await client.post("/v1/users", json=user, headers=admin), 422, "validation_failed")
    api_client = {"name": "热线\u2066系统", "region_code": COUNTY, "scopes": ["issues:read"]}
    assert_problem(await client.post("/v1/clients", json=api_client, headers=admin), 422, "validation_failed")
    csv_body = f"code,name,level,parent_code\n370282103291,村\u202egpj.exe,village,{TOWN}\n".encode()
    report = await client.post(
        "/v1/regions/import", content=csv_body, headers={**admin, "Content-Type": "text/csv"}
    )
    assert report.status_code == 422, report.text
    assert report.json()["rows"][0]["error_code"] == "invalid_name"
    assert await count_rows(Region, col(Region.code) == "370282103291") == 0


@given(st.text(max_size=30))
def test_plain_text_holds_no_control_or_direction_character(text: str) -> None:
    if is_plain_text(text):
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)
        assert not any(ch in text for ch in BIDI)


# ---- 6. codes that differ only in case ----


async def test_a_code_that_differs_only_in_case_is_taken(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Callable[..., Any]
) -> None:
    admin = auth("admin")
    first = new_region(code=f"{VILLAGE}-W09", name="第九网格", level="grid", parent_code=VILLAGE)
    assert (await client.post("/v1/regions", json=first, headers=admin)).status_code == 201
    again = {**first, "code": f"{VILLAGE}-w09", "name": "第九网格（小写）"}
    assert_problem(await client.post("/v1/regions", json=again, headers=admin), 409, "region_code_taken")
    csv_body = f"code,name,level,parent_code\n{VILLAGE}-w09,小写网格,grid,{VILLAGE}\n".encode()
    report = await client.post(
        "/v1/regions/import", content=csv_body, headers={**admin, "Content-Type": "text/csv"}
    )
    assert report.status_code == 422 and report.json()["rows"][0]["error_code"] == "region_code_taken"
    two_in_one_file = (
        f"code,name,level,parent_code\n{VILLAGE}-W10,甲,grid,{VILLAGE}\n{VILLAGE}-w10,乙,grid,{VILLAGE}\n"
    ).encode()
    report = await client.post(
        "/v1/regions/import", content=two_in_one_file, headers={**admin, "Content-Type": "text/csv"}
    )
    assert [row["error_code"] for row in report.json()["rows"]] == [None, "duplicate_in_file"]
    assert (
        await count_rows(Region, col(Region.code).in_([f"{VILLAGE}-w09", f"{VILLAGE}-W10", f"{VILLAGE}-w10"]))
        == 0
    )


# ---- 11. exports never turn text into formulas ----

FORMULAS = ['=HYPERLINK("http://evil.example","点我")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"]


@given(st.text(max_size=20))
def test_a_csv_cell_never_starts_like_a_formula(text: str) -> None:
    cell = csv_safe(text)
    assert not cell.startswith(FORMULA_TRIGGERS)
    assert cell == text or (cell == "'" + text and text.startswith(FORMULA_TRIGGERS))


async def _with_formula_names(client: httpx.AsyncClient, admin: dict[str, str]) -> list[str]:
    codes = []
    for n, name in enumerate(FORMULAS):
        code = f"37028210328{n}"
        body = new_region(code=code, name=name)
        assert (await client.post("/v1/regions", json=body, headers=admin)).status_code == 201
        codes.append(code)
    return codes


async def test_a_csv_export_keeps_formula_like_names_as_text(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    admin = auth("admin")
    codes = await _with_formula_names(client, admin)
    answer = await client.get("/v1/exports/regions", params={"format": "csv", "region": TOWN}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeff区划代码,名称,层级")
    rows = {row[0]: row for row in csv.reader(io.StringIO(text.lstrip("\ufeff")))}
    for code, name in zip(codes, FORMULAS, strict=True):
        assert rows[code][1] == "'" + name
        assert rows[code][3] == TOWN
    assert all(not cell.startswith(FORMULA_TRIGGERS) for row in rows.values() for cell in row)


async def test_an_xlsx_export_holds_no_formula_and_shows_the_names_unchanged(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    admin = auth("admin")
    codes = await _with_formula_names(client, admin)
    answer = await client.get("/v1/exports/regions", params={"region": TOWN}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert (
        answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    with zipfile.ZipFile(io.BytesIO(answer.content)) as package:
        sheet_xml = package.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml  # no formula anywhere
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    sheet = book.active
    assert sheet is not None
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:4] == ["区划代码", "名称", "层级", "上级代码"]
    by_code = {row[0]: row for row in values[1:]}
    for code, name in zip(codes, FORMULAS, strict=True):
        assert by_code[code][1] == name  # shown as written, stored as text
        assert sheet.cell(row=list(by_code).index(code) + 2, column=2).data_type == "s"
    assert set(by_code) >= {TOWN, VILLAGE} and OTHER_TOWN not in by_code


async def test_an_export_holds_only_the_callers_subtree(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    officer = auth("officer", TOWN)
    answer = await client.get("/v1/exports/regions", params={"format": "csv"}, headers=officer)
    codes = {row[0] for row in csv.reader(io.StringIO(answer.content.decode().lstrip("\ufeff")))}
    assert TOWN in codes and VILLAGE in codes
    assert OTHER_TOWN not in codes and FAR_VILLAGE not in codes and COUNTY not in codes
    outside = await client.get("/v1/exports/regions", params={"region": OTHER_TOWN}, headers=officer)
    assert_problem(outside, 404, "region_not_found")
    assert_problem(await client.get("/v1/exports/regions"), 401, "missing_token")
