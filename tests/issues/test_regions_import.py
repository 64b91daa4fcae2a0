"""CSV import of regions: all-or-nothing by default, partial on request, dry runs, per-row reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlmodel import col

from services.issues.regions.models import Region
from services.issues.regions.service import MAX_IMPORT_ROWS
from tests.support.builders import OTHER_TOWN, TOWN
from tests.support.problems import assert_problem

pytestmark = pytest.mark.asyncio

Auth = Callable[..., dict[str, str]]
HEADER = "code,name,level,parent_code\n"
URL = "/v1/regions/import"


def csv_body(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(f"{row}\n" for row in rows)).encode()


async def post_csv(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **params: Any
) -> httpx.Response:
    return await client.post(
        URL, content=data, headers={**headers, "Content-Type": "text/csv; charset=utf-8"}, params=params
    )


def statuses(rows: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(row["code"], row["status"], row["error_code"]) for row in rows]


# A village under 蓝村街道, a grid under it (a row earlier in the file), and a grid under a stored village.
GOOD_ROWS = (
    "370282103204,北庄村,village,370282103",
    "370282103204-W01,北庄村第一网格,grid,370282103204",
    "370282103202-W01,后庄村第一网格,grid,370282103202",
)


async def test_import_stores_every_row_and_reports_each(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    r = await post_csv(client, auth("officer", TOWN), csv_body(*GOOD_ROWS))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report == {
        "dry_run": False,
        "partial": False,
        "valid": 3,
        "created": 3,
        "refused": 0,
        "rows": [
            {
                "row": 1,
                "line": 2,
                "code": "370282103204",
                "status": "created",
                "error_code": None,
                "detail": None,
            },
            {
                "row": 2,
                "line": 3,
                "code": "370282103204-W01",
                "status": "created",
                "error_code": None,
                "detail": None,
            },
            {
                "row": 3,
                "line": 4,
                "code": "370282103202-W01",
                "status": "created",
                "error_code": None,
                "detail": None,
            },
        ],
    }
    assert await count_rows(Region) == before + 3
    grid = await client.get("/v1/regions/370282103204-W01", headers=auth("officer", TOWN))
    assert grid.status_code == 200
    assert grid.json()["path"] == "/37/3702/370282/370282103/370282103204/370282103204-W01/"
    assert grid.json()["level"] == "grid"
    children = await client.get("/v1/regions/370282103204/children", headers=auth("admin"))
    assert [item["code"] for item in children.json()["items"]] == ["370282103204-W01"]


async def test_one_bad_row_refuses_the_whole_file(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    data = csv_body(*GOOD_ROWS, "370282103205,南庄村,hamlet,370282103")
    r = await post_csv(client, auth("officer", TOWN), data)
    problem = assert_problem(r, 422, "import_rejected")
    assert (problem["valid"], problem["created"], problem["refused"]) == (3, 0, 1)
    assert statuses(problem["rows"]) == [
        ("370282103204", "valid", None),
        ("370282103204-W01", "valid", None),
        ("370282103202-W01", "valid", None),
        ("370282103205", "error", "invalid_level"),
    ]
    assert problem["rows"][3]["row"] == 4
    assert "hamlet" in problem["rows"][3]["detail"]
    assert await count_rows(Region) == before


async def test_partial_import_stores_the_good_rows(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    data = csv_body("370282103205,南庄村,hamlet,370282103", *GOOD_ROWS)
    r = await post_csv(client, auth("officer", TOWN), data, partial="true")
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["partial"], report["valid"], report["created"], report["refused"]) == (True, 3, 3, 1)
    assert statuses(report["rows"]) == [
        ("370282103205", "error", "invalid_level"),
        ("370282103204", "created", None),
        ("370282103204-W01", "created", None),
        ("370282103202-W01", "created", None),
    ]
    assert await count_rows(Region) == before + 3
    assert await count_rows(Region, col(Region.code) == "370282103205") == 0


async def test_dry_run_reports_and_stores_nothing(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    data = csv_body(*GOOD_ROWS, "370282103201,前庄村,village,370282103")
    r = await post_csv(client, auth("officer", TOWN), data, dry_run="true")
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["dry_run"], report["valid"], report["created"], report["refused"]) == (True, 3, 0, 1)
    assert statuses(report["rows"]) == [
        ("370282103204", "valid", None),
        ("370282103204-W01", "valid", None),
        ("370282103202-W01", "valid", None),
        ("370282103201", "error", "region_code_taken"),
    ]
    assert await count_rows(Region) == before


async def test_every_kind_of_bad_row_is_named(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    data = csv_body(
        "370282103204,北庄村,village,370282103",  # fine
        "370282103205,南庄村,village,370282199",  # unknown parent
        "370282103206,东庄村,village,370282104",  # parent outside the officer's town
        "370282103201,前庄村,village,370282103",  # code stored already
        "370282103204,北庄村,village,370282103",  # code earlier in the file
        "370282103207,西庄村,hamlet,370282103",  # unknown level
        "370282103208,镇,town,370282103",  # a town under a town
        "3702 82,空格村,village,370282103",  # bad code
        "370282103209,  ,village,370282103",  # empty name
        "370282103210,多列村,village,370282103,extra",  # five fields
        "370282103211-W01,网格,grid,370282103211",  # parent later in the file
        "370282103211,后来村,village,370282103",  # fine
        "370282103212-W01,网格,grid,370282103207",  # parent was refused
        "36,江西省,province,",  # a root, but the officer is not over the whole tree
        "370282103213,空\x00字村,village,370282103",  # a control character in the name
    )
    r = await post_csv(client, auth("officer", TOWN), data, partial="true")
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [(row["row"], row["error_code"]) for row in rows] == [
        (1, None),
        (2, "unknown_parent"),
        (3, "unknown_parent"),
        (4, "region_code_taken"),
        (5, "duplicate_in_file"),
        (6, "invalid_level"),
        (7, "level_does_not_nest"),
        (8, "invalid_code"),
        (9, "invalid_name"),
        (10, "bad_row"),
        (11, "unknown_parent"),
        (12, None),
        (13, "parent_refused"),
        (14, "cannot_create_root"),
        (15, "invalid_name"),
    ]
    # A parent outside the caller's town reads exactly like one that does not exist.
    assert rows[2]["detail"] == rows[1]["detail"].replace("370282199", "370282104")
    assert r.json()["created"] == 2
    assert await count_rows(Region) == before + 2


async def test_a_byte_order_mark_and_crlf_lines_are_fine(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    data = "\ufeffcode,name,level,parent_code\r\n370282103204,北庄村,village,370282103\r\n\r\n".encode()
    r = await post_csv(client, auth("officer", TOWN), data)
    assert r.status_code == 200, r.text
    assert statuses(r.json()["rows"]) == [("370282103204", "created", None)]
    assert await count_rows(Region) == before + 1


async def test_multipart_upload_with_a_file_field(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    files = {"file": ("regions.csv", csv_body(*GOOD_ROWS), "text/csv")}
    r = await client.post(URL, files=files, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 3
    assert await count_rows(Region) == before + 3


async def test_multipart_without_a_file_field_is_a_bad_request(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    files = {"upload": ("regions.csv", csv_body(*GOOD_ROWS), "text/csv")}
    r = await client.post(URL, files=files, headers=auth("admin"))
    assert_problem(r, 400, "missing_file")
    assert await count_rows(Region) == before


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "bad_csv_header"),
        (csv_body(*GOOD_ROWS, header="code,name,level\n"), "bad_csv_header"),
        (csv_body(*GOOD_ROWS, header="name,code,level,parent_code\n"), "bad_csv_header"),
        (GOOD_ROWS[0].encode() + b"\n", "bad_csv_header"),
        ((HEADER + "370282103204,北庄村,village,370282103\n").encode("gbk"), "invalid_encoding"),
        (HEADER.encode() + b'370282103204,"unterminated,village,370282103\n', "malformed_csv"),
        (HEADER.encode() + b'370282103204,"quoted"text,village,370282103\n', "malformed_csv"),
    ],
    ids=[
        "empty",
        "three-columns",
        "wrong-order",
        "no-header",
        "gbk",
        "unterminated-quote",
        "text-after-quote",
    ],
)
async def test_a_file_that_cannot_be_read_is_a_bad_request(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any], data: bytes, code: str
) -> None:
    before = await count_rows(Region)
    r = await post_csv(client, auth("admin"), data, partial="true")
    assert_problem(r, 400, code)
    assert await count_rows(Region) == before


async def test_too_many_rows_is_refused_before_any_check(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    rows = [f"T{i},村{i},village,370282103" for i in range(MAX_IMPORT_ROWS + 1)]
    r = await post_csv(client, auth("admin"), csv_body(*rows), partial="true")
    assert_problem(r, 413, "too_many_rows")
    assert await count_rows(Region) == before


async def test_a_large_file_imports_in_one_go(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    rows: list[str] = []
    for v in range(300):
        village = f"370282104{300 + v}"
        rows.append(f"{village},村{v},village,370282104")
        rows += [f"{village}-W0{g},村{v}网格{g},grid,{village}" for g in (1, 2)]
    r = await post_csv(client, auth("officer", OTHER_TOWN), csv_body(*rows))
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 900
    assert await count_rows(Region) == before + 900
    assert (
        await count_rows(Region, col(Region.path).startswith("/37/3702/370282/370282104/370282104599/")) == 3
    )


async def test_unsupported_content_type_is_refused(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.post(URL, json={"rows": []}, headers=auth("admin"))
    assert_problem(r, 415, "unsupported_media_type")


async def test_import_needs_a_token_and_the_write_scope(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    data = csv_body(*GOOD_ROWS)
    r = await client.post(URL, content=data, headers={"Content-Type": "text/csv"})
    assert_problem(r, 401, "missing_token")
    r = await post_csv(client, auth("viewer"), data)
    assert_problem(r, 403, "insufficient_scope")
    assert await count_rows(Region) == before
