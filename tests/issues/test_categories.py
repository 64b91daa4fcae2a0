"""Categories over HTTP: the shipped taxonomy, reading it from anywhere in the county, and the county office
alone creating and changing it — each refusal with its status, its code and nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col

from services.issues.categories.models import Category
from services.kit.state import state_of
from tests.support import rows
from tests.support.builders import GRID, TOWN, VILLAGE
from tests.support.problems import assert_problem, assert_unauthorized

pytestmark = pytest.mark.asyncio

Auth = Callable[..., dict[str, str]]
Count = Callable[..., Any]

# What the migration ships: code, name, group, (minor, normal, serious) working days.
SHIPPED = {
    "luan-dui-fang": ("乱堆乱放", "六乱", (3, 5, 10)),
    "luan-reng-dao": ("乱扔乱倒", "六乱", (3, 5, 10)),
    "luan-da-jian": ("乱搭乱建", "六乱", (10, 15, 30)),
    "luan-ting-fang": ("乱停乱放", "六乱", (3, 5, 10)),
    "luan-tie-hua": ("乱贴乱画", "六乱", (3, 5, 10)),
    "luan-pai-fang": ("乱排乱放", "六乱", (5, 10, 15)),
    "sheng-huo-la-ji": ("生活垃圾", "垃圾", (2, 3, 5)),
    "jian-zhu-la-ji": ("建筑垃圾", "垃圾", (5, 10, 15)),
    "wu-shui-hei-chou": ("污水/黑臭水体", "污水", (10, 15, 30)),
    "hu-ce-gai-ce": ("户厕/改厕", "厕所", (10, 15, 30)),
    "ting-yuan": ("庭院", "庭院", (3, 5, 10)),
    "dao-lu-yan-xian": ("道路沿线", "道路", (3, 5, 10)),
    "lv-hua-luo-tu": ("绿化/裸土", "绿化", (5, 10, 20)),
    "xiao-guang-gao": ("小广告", "广告", (2, 3, 5)),
    "chu-qin-fen-wu": ("畜禽粪污", "畜禽", (5, 10, 15)),
}
LIU_LUAN = sorted(code for code, (_, group, _) in SHIPPED.items() if group == "六乱")


def new_category(**changes: Any) -> dict[str, Any]:
    """A valid POST /v1/categories body: 秸秆焚烧 with one choice field."""
    return {
        "code": "jie-gan-fen-shao",
        "name": "秸秆焚烧",
        "group": "大气",
        "deadline_days": {"minor": 1, "normal": 2, "serious": 3},
        "fields": [
            {
                "key": "crop",
                "label": "作物",
                "type": "choice",
                "required": True,
                "choices": ["小麦", "玉米", "其他"],
            },
            {"key": "burned_at", "label": "焚烧时间", "type": "datetime", "required": False, "choices": None},
        ],
        "active": True,
        **changes,
    }


async def walk(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every category a paged list answers, following `next_cursor` to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/categories", headers=headers, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= page["limit"]
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


async def stored(app: FastAPI, code: str) -> Category | None:
    return await rows.stored(state_of(app).database, Category, col(Category.code) == code)


# ---- the shipped taxonomy ----


async def test_the_migration_ships_the_common_categories(app: FastAPI, count_rows: Count) -> None:
    assert await count_rows(Category) == len(SHIPPED)
    for code, (name, group, (minor, normal, serious)) in SHIPPED.items():
        category = await stored(app, code)
        assert category is not None, code
        assert (category.name, category.group, category.active) == (name, group, True)
        days = (category.deadline_minor_days, category.deadline_normal_days, category.deadline_serious_days)
        assert days == (minor, normal, serious)
        assert 1 <= minor <= normal <= serious <= 365


async def test_shipped_toilet_category_asks_for_the_toilet_type(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    r = await client.get("/v1/categories/hu-ce-gai-ce", headers=auth("village", VILLAGE))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "户厕/改厕"
    assert body["deadline_days"] == {"minor": 10, "normal": 15, "serious": 30}
    toilet = body["fields"][0]
    assert toilet == {
        "key": "toilet_type",
        "label": "厕所类型",
        "type": "choice",
        "required": True,
        "choices": ["水冲式", "三格化粪池", "双瓮漏斗式"],
    }
    assert body["fields"][1]["type"] == "multi_choice"


async def test_shipped_extra_fields(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("admin")
    waste = (await client.get("/v1/categories/jian-zhu-la-ji", headers=headers)).json()
    assert [(f["key"], f["type"]) for f in waste["fields"]] == [("volume_m3", "number")]
    manure = (await client.get("/v1/categories/chu-qin-fen-wu", headers=headers)).json()
    animal = manure["fields"][0]
    assert (animal["key"], animal["type"], animal["required"]) == ("animal", "choice", True)
    assert "猪" in animal["choices"]


# ---- reading: everyone in the county, whatever their region ----


async def test_list_is_every_category_by_code_across_pages(client: httpx.AsyncClient, auth: Auth) -> None:
    items = await walk(client, auth("admin"), limit=4)
    assert [item["code"] for item in items] == sorted(SHIPPED)
    first = next(item for item in items if item["code"] == "luan-dui-fang")
    assert first["name"] == "乱堆乱放"
    assert first["group"] == "六乱"
    assert first["deadline_days"] == {"minor": 3, "normal": 5, "serious": 10}
    assert first["fields"] == []
    assert first["active"] is True
    assert first["created_at"].endswith("Z") or first["created_at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("role", "region"),
    [("citizen", VILLAGE), ("grid", GRID), ("village", VILLAGE), ("officer", TOWN), ("viewer", "370282")],
)
async def test_categories_are_county_wide_for_every_reader(
    client: httpx.AsyncClient, auth: Auth, role: str, region: str
) -> None:
    items = await walk(client, auth(role, region), limit=200)
    assert [item["code"] for item in items] == sorted(SHIPPED)
    r = await client.get("/v1/categories/ting-yuan", headers=auth(role, region))
    assert r.status_code == 200
    assert r.json()["name"] == "庭院"


async def test_list_filters_by_group_and_active(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    headers = auth("admin")
    assert [item["code"] for item in await walk(client, headers, group="六乱")] == LIU_LUAN
    assert [item["code"] for item in await walk(client, headers, group="垃圾")] == [
        "jian-zhu-la-ji",
        "sheng-huo-la-ji",
    ]
    assert await walk(client, headers, group="没有") == []
    assert await walk(client, headers, active="false") == []

    r = await client.patch("/v1/categories/luan-tie-hua", json={"active": False}, headers=headers)
    assert r.status_code == 200, r.text
    assert [item["code"] for item in await walk(client, headers, active="false")] == ["luan-tie-hua"]
    active = [item["code"] for item in await walk(client, headers, active="true", group="六乱")]
    assert active == [code for code in LIU_LUAN if code != "luan-tie-hua"]


@pytest.mark.parametrize("params", [{"active": "yes"}, {"active": "1"}, {"group": ""}, {"limit": "0"}])
async def test_list_refuses_bad_filters(
    client: httpx.AsyncClient, auth: Auth, params: dict[str, str]
) -> None:
    r = await client.get("/v1/categories", headers=auth("admin"), params=params)
    assert_problem(r, 422, "validation_failed")


async def test_list_refuses_a_forged_cursor(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/categories", headers=auth("admin"), params={"cursor": "bm90LWEtY3Vyc29y"})
    assert_problem(r, 400, "invalid_cursor")


@pytest.mark.parametrize("code", ["no-such-category", "LUAN-DUI-FANG", "luan dui fang", "x" * 40])
async def test_unknown_category_is_not_found(client: httpx.AsyncClient, auth: Auth, code: str) -> None:
    r = await client.get(f"/v1/categories/{code}", headers=auth("admin"))
    body = assert_problem(r, 404, "category_not_found")
    assert code in body["detail"]


async def test_reading_needs_issues_read(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("integration", TOWN, scopes=["regions:read"])
    assert_problem(await client.get("/v1/categories", headers=headers), 403, "insufficient_scope")
    assert_problem(await client.get("/v1/categories/ting-yuan", headers=headers), 403, "insufficient_scope")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/categories"),
        ("POST", "/v1/categories"),
        ("GET", "/v1/categories/ting-yuan"),
        ("PATCH", "/v1/categories/ting-yuan"),
    ],
)
async def test_every_route_needs_a_token(
    client: httpx.AsyncClient, count_rows: Count, method: str, url: str
) -> None:
    body = new_category() if method == "POST" else {"name": "改名"} if method == "PATCH" else None
    r = await client.request(method, url, json=body)
    assert_unauthorized(r, "missing_token")
    r = await client.request(method, url, json=body, headers={"Authorization": "Bearer not.a.token"})
    assert_unauthorized(r)
    assert await count_rows(Category) == len(SHIPPED)
    assert await count_rows(Category, col(Category.name) == "改名") == 0


# ---- create: the county office alone ----


async def test_admin_creates_a_category(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Count
) -> None:
    r = await client.post("/v1/categories", json=new_category(name="  秸秆焚烧 "), headers=auth("admin"))
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/categories/jie-gan-fen-shao"
    body = r.json()
    expected = new_category()
    assert {k: body[k] for k in expected} == expected
    assert body["created_at"] == body["updated_at"]
    assert await count_rows(Category) == len(SHIPPED) + 1

    category = await stored(app, "jie-gan-fen-shao")
    assert category is not None
    assert (category.name, category.group, category.active) == ("秸秆焚烧", "大气", True)
    assert (category.deadline_minor_days, category.deadline_normal_days, category.deadline_serious_days) == (
        1,
        2,
        3,
    )
    assert category.fields == expected["fields"]

    again = await client.get("/v1/categories/jie-gan-fen-shao", headers=auth("citizen", VILLAGE))
    assert again.status_code == 200
    assert again.json() == body


async def test_fields_and_active_may_be_left_out(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    body = {k: v for k, v in new_category().items() if k not in ("fields", "active")}
    r = await client.post("/v1/categories", json=body, headers=auth("admin"))
    assert r.status_code == 201, r.text
    assert (r.json()["fields"], r.json()["active"]) == ([], True)
    category = await stored(app, "jie-gan-fen-shao")
    assert category is not None and category.fields == [] and category.active is True


async def test_a_retired_category_may_be_created(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    r = await client.post("/v1/categories", json=new_category(active=False), headers=auth("admin"))
    assert r.status_code == 201, r.text
    assert r.json()["active"] is False
    category = await stored(app, "jie-gan-fen-shao")
    assert category is not None and category.active is False


@pytest.mark.parametrize(
    ("role", "region"),
    [("inspector", "370282"), ("officer", TOWN), ("village", VILLAGE), ("grid", GRID), ("citizen", VILLAGE)],
)
async def test_only_the_county_office_creates(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, role: str, region: str
) -> None:
    r = await client.post("/v1/categories", json=new_category(), headers=auth(role, region))
    body = assert_problem(r, 403, "category_admin_only")
    assert "admin" in body["detail"]
    assert await count_rows(Category) == len(SHIPPED)


async def test_a_non_admin_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    r = await client.post("/v1/categories", json={"code": ""}, headers=auth("officer", TOWN))
    assert_problem(r, 403, "category_admin_only")
    assert await count_rows(Category) == len(SHIPPED)


async def test_an_integration_client_with_issues_write_is_not_the_office(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    headers = auth("integration", "370282", scopes=["issues:read", "issues:write"])
    assert_problem(
        await client.post("/v1/categories", json=new_category(), headers=headers), 403, "category_admin_only"
    )
    assert await count_rows(Category) == len(SHIPPED)


async def test_an_admin_token_without_issues_write_may_not_create(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    headers = auth("admin", scopes=["issues:read"])
    r = await client.post("/v1/categories", json=new_category(), headers=headers)
    assert_problem(r, 403, "insufficient_scope")
    assert await count_rows(Category) == len(SHIPPED)


@pytest.mark.parametrize("code", ["luan-dui-fang", "Luan-Dui-Fang", "TING-YUAN"])
async def test_a_taken_code_is_refused_whatever_its_case(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Count, code: str
) -> None:
    r = await client.post("/v1/categories", json=new_category(code=code), headers=auth("admin"))
    body = assert_problem(r, 409, "category_code_taken")
    assert code in body["detail"]
    assert await count_rows(Category) == len(SHIPPED)
    kept = await stored(app, code.lower())
    assert kept is not None and kept.name == SHIPPED[code.lower()][0]


def _field(**changes: Any) -> dict[str, Any]:
    return {"key": "crop", "label": "作物", "type": "string", "required": False, "choices": None, **changes}


BAD_BODIES: dict[str, dict[str, Any]] = {
    "code with a space": new_category(code="jie gan"),
    "code too long": new_category(code="x" * 33),
    "code in Chinese": new_category(code="秸秆"),
    "code starting with -": new_category(code="-jie"),
    "no code": {k: v for k, v in new_category().items() if k != "code"},
    "blank name": new_category(name="   "),
    "name too long": new_category(name="名" * 51),
    "name turning text around": new_category(name="秸秆\u202e焚烧"),
    "no group": {k: v for k, v in new_category().items() if k != "group"},
    "a severity missing": new_category(deadline_days={"minor": 1, "normal": 2}),
    "an unknown severity": new_category(deadline_days={"minor": 1, "normal": 2, "serious": 3, "urgent": 1}),
    "zero days": new_category(deadline_days={"minor": 0, "normal": 2, "serious": 3}),
    "366 days": new_category(deadline_days={"minor": 1, "normal": 2, "serious": 366}),
    "days as text": new_category(deadline_days={"minor": "1", "normal": 2, "serious": 3}),
    "days as a fraction": new_category(deadline_days={"minor": 1.5, "normal": 2, "serious": 3}),
    "days as a boolean": new_category(deadline_days={"minor": True, "normal": 2, "serious": 3}),
    "choice without choices": new_category(fields=[_field(type="choice")]),
    "multi_choice with no choices": new_category(fields=[_field(type="multi_choice", choices=[])]),
    "string with choices": new_category(fields=[_field(choices=["a"])]),
    "a repeated choice": new_category(fields=[_field(type="choice", choices=["小麦", "小麦"])]),
    "an unknown field type": new_category(fields=[_field(type="photo")]),
    "a key in capitals": new_category(fields=[_field(key="Crop")]),
    "a key with a dash": new_category(fields=[_field(key="crop-type")]),
    "21 fields": new_category(fields=[_field(key=f"f{i}") for i in range(21)]),
    "a blank label": new_category(fields=[_field(label=" ")]),
    "required as text": new_category(fields=[_field(required="true")]),
    "an unknown field property": new_category(fields=[_field(default="x")]),
    "fields null": new_category(fields=None),
    "active as text": new_category(active="true"),
    "active null": new_category(active=None),
    "an unknown property": new_category(sort=1),
}


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_bad_bodies_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, body: dict[str, Any]
) -> None:
    r = await client.post("/v1/categories", json=body, headers=auth("admin"))
    problem = assert_problem(r, 422, "validation_failed")
    assert problem["errors"], problem
    assert all(error["field"].startswith("body") for error in problem["errors"])
    assert await count_rows(Category) == len(SHIPPED)


async def test_two_fields_with_one_key_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, app: FastAPI
) -> None:
    fields = [_field(), _field(label="另一个"), _field(key="area"), _field(key="area", type="number")]
    r = await client.post("/v1/categories", json=new_category(fields=fields), headers=auth("admin"))
    problem = assert_problem(r, 422, "field_key_repeated")
    assert "'area', 'crop'" in problem["detail"]
    assert await count_rows(Category) == len(SHIPPED)

    before = await stored(app, "ting-yuan")
    r = await client.patch("/v1/categories/ting-yuan", json={"fields": fields[:2]}, headers=auth("admin"))
    assert_problem(r, 422, "field_key_repeated")
    after = await stored(app, "ting-yuan")
    assert before is not None and after is not None and after.model_dump() == before.model_dump()


async def test_twenty_fields_are_the_most(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    fields = [_field(key=f"f{i}") for i in range(20)]
    r = await client.post("/v1/categories", json=new_category(fields=fields), headers=auth("admin"))
    assert r.status_code == 201, r.text
    category = await stored(app, "jie-gan-fen-shao")
    assert category is not None and len(category.fields) == 20


async def test_malformed_json_is_refused(client: httpx.AsyncClient, auth: Auth, count_rows: Count) -> None:
    headers = {**auth("admin"), "Content-Type": "application/json"}
    r = await client.post("/v1/categories", content=b'{"code": ', headers=headers)
    assert_problem(r, 400, "malformed_json")
    assert await count_rows(Category) == len(SHIPPED)


async def test_a_retried_create_gets_the_first_answer(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    headers = {**auth("admin"), "Idempotency-Key": "cat-create-0001"}
    first = await client.post("/v1/categories", json=new_category(), headers=headers)
    again = await client.post("/v1/categories", json=new_category(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert await count_rows(Category) == len(SHIPPED) + 1


# ---- change: the county office alone ----


async def test_admin_changes_a_category(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    before = await stored(app, "luan-dui-fang")
    assert before is not None
    change = {
        "name": "乱堆乱放（柴草杂物）",
        "group": "六乱整治",
        "deadline_days": {"minor": 2, "normal": 4, "serious": 7},
        "fields": [
            _field(key="material", label="堆放物", type="multi_choice", choices=["柴草", "杂物", "粪堆"])
        ],
    }
    r = await client.patch("/v1/categories/luan-dui-fang", json=change, headers=auth("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in change} == change
    assert body["code"] == "luan-dui-fang"
    assert body["active"] is True
    assert body["created_at"] != body["updated_at"]

    after = await stored(app, "luan-dui-fang")
    assert after is not None
    assert (after.name, after.group) == ("乱堆乱放（柴草杂物）", "六乱整治")
    assert (after.deadline_minor_days, after.deadline_normal_days, after.deadline_serious_days) == (2, 4, 7)
    assert after.fields == change["fields"]
    assert after.created_at == before.created_at
    assert after.updated_at > before.updated_at


async def test_retiring_keeps_the_category_readable(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    r = await client.patch("/v1/categories/xiao-guang-gao", json={"active": False}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    r = await client.get("/v1/categories/xiao-guang-gao", headers=auth("citizen", VILLAGE))
    assert r.status_code == 200 and r.json()["active"] is False
    category = await stored(app, "xiao-guang-gao")
    assert category is not None and category.active is False and category.name == "小广告"

    back = await client.patch("/v1/categories/xiao-guang-gao", json={"active": True}, headers=auth("admin"))
    assert back.json()["active"] is True


async def test_an_empty_change_changes_nothing(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    before = await stored(app, "ting-yuan")
    r = await client.patch("/v1/categories/ting-yuan", json={}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    after = await stored(app, "ting-yuan")
    assert before is not None and after is not None
    assert after.updated_at == before.updated_at
    assert r.json()["name"] == "庭院"


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"group": None},
        {"deadline_days": None},
        {"fields": None},
        {"active": None},
        {"active": "false"},
        {"code": "ting-yuan-2"},
        {"deadline_days": {"minor": 3}},
        {"deadline_days": {"minor": 3, "normal": 5, "serious": 400}},
        {"fields": [_field(type="choice")]},
        {"name": ""},
    ],
    ids=lambda body: ",".join(f"{k}={v}" for k, v in body.items())[:40],
)
async def test_bad_changes_are_refused_and_nothing_changes(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, body: dict[str, Any]
) -> None:
    before = await stored(app, "ting-yuan")
    r = await client.patch("/v1/categories/ting-yuan", json=body, headers=auth("admin"))
    assert_problem(r, 422, "validation_failed")
    after = await stored(app, "ting-yuan")
    assert before is not None and after is not None
    assert after.model_dump() == before.model_dump()


async def test_changing_an_unknown_category_is_not_found(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    r = await client.patch("/v1/categories/no-such", json={"name": "新的"}, headers=auth("admin"))
    assert_problem(r, 404, "category_not_found")
    assert await count_rows(Category) == len(SHIPPED)
    assert await count_rows(Category, col(Category.name) == "新的") == 0


@pytest.mark.parametrize(
    ("role", "region"), [("inspector", "370282"), ("officer", TOWN), ("village", VILLAGE)]
)
async def test_only_the_county_office_changes(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, role: str, region: str
) -> None:
    before = await stored(app, "ting-yuan")
    r = await client.patch("/v1/categories/ting-yuan", json={"active": False}, headers=auth(role, region))
    assert_problem(r, 403, "category_admin_only")
    after = await stored(app, "ting-yuan")
    assert before is not None and after is not None
    assert after.model_dump() == before.model_dump()


async def test_an_admin_token_without_issues_write_may_not_change(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    r = await client.patch(
        "/v1/categories/ting-yuan", json={"active": False}, headers=auth("admin", scopes=["issues:read"])
    )
    assert_problem(r, 403, "insufficient_scope")
    category = await stored(app, "ting-yuan")
    assert category is not None and category.active is True
