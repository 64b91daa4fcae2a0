"""The region tree over HTTP: create, read, rename, move, children, subtree and lists, all within the caller's subtree."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlmodel import col

from services.issues.regions.models import Region
from tests.support.builders import TEST_REGIONS, TOWN, VILLAGE, codes_under
from tests.support.problems import assert_problem

pytestmark = pytest.mark.asyncio

Auth = Callable[..., dict[str, str]]

# The tree under 蓝村街道 (370282103), the town officer's home.
LANCUN = codes_under(TOWN)
ALL_CODES = [region.code for region in TEST_REGIONS]


async def walk(client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any) -> list[str]:
    """Every code a paged list answers, following `next_cursor` to the end."""
    codes: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(url, headers=headers, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        if "limit" in params:
            assert len(page["items"]) <= params["limit"]
        codes += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return codes
    raise AssertionError("the pages never ended")


async def stored_paths(count_rows: Callable[..., Any], prefix: str) -> int:
    return int(await count_rows(Region, col(Region.path).startswith(prefix)))


# ---- create ----


async def test_officer_creates_a_village_in_its_town(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    body = {"code": "370282103204", "name": "  北庄村 ", "level": "village", "parent_code": "370282103"}
    r = await client.post("/v1/regions", json=body, headers=auth("officer", TOWN))
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/regions/370282103204"
    created = r.json()
    assert created["code"] == "370282103204"
    assert created["name"] == "北庄村"
    assert created["level"] == "village"
    assert created["parent_code"] == "370282103"
    assert created["path"] == "/37/3702/370282/370282103/370282103204/"
    assert created["depth"] == 4
    assert isinstance(created["id"], int)
    assert created["created_at"] == created["updated_at"]
    assert await count_rows(Region) == before + 1
    assert await count_rows(Region, col(Region.code) == "370282103204", col(Region.name) == "北庄村") == 1

    again = await client.get("/v1/regions/370282103204", headers=auth("officer", TOWN))
    assert again.status_code == 200
    assert again.json() == created


async def test_grid_with_a_local_code_nests_under_a_village(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    body = {
        "code": "370282103202-W01",
        "name": "后庄村第一网格",
        "level": "grid",
        "parent_code": "370282103202",
    }
    r = await client.post("/v1/regions", json=body, headers=auth("admin"))
    assert r.status_code == 201, r.text
    assert r.json()["path"] == "/37/3702/370282/370282103/370282103-GQ01/370282103202/370282103202-W01/"
    assert (
        await count_rows(Region, col(Region.parent_id).is_not(None), col(Region.code) == "370282103202-W01")
        == 1
    )


async def test_caller_over_the_whole_tree_may_create_a_root(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    headers = auth("service", "*", scopes=["regions:read", "regions:write"])
    r = await client.post(
        "/v1/regions",
        json={"code": "11", "name": "北京市", "level": "province", "parent_code": None},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["path"] == "/11/"
    assert r.json()["parent_code"] is None
    assert r.json()["depth"] == 0
    assert await count_rows(Region, col(Region.code) == "11", col(Region.parent_id).is_(None)) == 1


async def test_a_county_admin_may_not_create_a_root(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    r = await client.post(
        "/v1/regions",
        json={"code": "11", "name": "北京市", "level": "province", "parent_code": None},
        headers=auth("admin"),
    )
    assert_problem(r, 403, "cannot_create_root")
    assert await count_rows(Region) == before


# ---- read, children, subtree, list ----


async def test_get_region_shows_parent_path_and_depth(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions/370282103201", headers=auth("viewer"))
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "前庄村"
    assert body["level"] == "village"
    assert body["parent_code"] == "370282103-GQ01"
    assert body["path"] == "/37/3702/370282/370282103/370282103-GQ01/370282103201/"
    assert body["depth"] == 5


async def test_unknown_region_is_not_found(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions/370282999", headers=auth("admin"))
    body = assert_problem(r, 404, "region_not_found")
    assert "370282999" in body["detail"]


async def test_children_are_the_direct_children_by_code(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions/370282103/children", headers=auth("officer", TOWN))
    assert r.status_code == 200
    page = r.json()
    assert [item["code"] for item in page["items"]] == ["370282103-GQ01", "370282103203"]
    assert page["next_cursor"] is None
    assert all(item["parent_code"] == "370282103" for item in page["items"])


async def test_subtree_lists_every_descendant_parents_first(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions/370282103/subtree", headers=auth("officer", TOWN))
    assert r.status_code == 200
    items = r.json()["items"]
    codes = [item["code"] for item in items]
    assert set(codes) == LANCUN - {"370282103"}
    assert len(codes) == len(set(codes))
    position = {code: i for i, code in enumerate(codes)}
    for item in items:
        if item["parent_code"] in position:
            assert position[item["parent_code"]] < position[item["code"]]


async def test_subtree_filters_by_level(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions/370282/subtree", headers=auth("admin"), params={"level": "grid"})
    assert r.status_code == 200
    assert {item["code"] for item in r.json()["items"]} == {
        "370282103201-W01",
        "370282103201-W02",
        "370282104201-W01",
    }


async def test_list_filters_by_level_parent_and_name(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("admin")
    villages = await walk(client, "/v1/regions", headers, level="village")
    assert villages == ["370282103201", "370282103202", "370282103203", "370282104201", "370282104202"]
    assert await walk(client, "/v1/regions", headers, parent_code="370282") == ["370282103", "370282104"]
    assert await walk(client, "/v1/regions", headers, q="后庄") == ["370282103202"]
    assert await walk(client, "/v1/regions", headers, q="前庄村第") == [
        "370282103201-W01",
        "370282103201-W02",
    ]
    r = await client.get("/v1/regions", headers=headers, params={"parent_code": "nowhere"})
    assert_problem(r, 404, "region_not_found")


async def test_list_rejects_an_unknown_level(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions", headers=auth("admin"), params={"level": "hamlet"})
    assert_problem(r, 422, "validation_failed")


# ---- scope: the caller's subtree and nothing else ----


@pytest.mark.parametrize("code", ["370282104", "370282104201", "370282104201-W01", "370282", "37"])
async def test_town_officer_cannot_see_outside_its_town(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any], code: str
) -> None:
    headers = auth("officer", TOWN)
    for url in (
        f"/v1/regions/{code}",
        f"/v1/regions/{code}/children",
        f"/v1/regions/{code}/subtree",
        f"/v1/regions?parent_code={code}",
    ):
        body = assert_problem(await client.get(url, headers=headers), 404, "region_not_found")
        assert body["detail"] == f"region {code} not found"
    r = await client.patch(f"/v1/regions/{code}", json={"name": "改名"}, headers=headers)
    assert_problem(r, 404, "region_not_found")
    assert await count_rows(Region, col(Region.name) == "改名") == 0


async def test_town_officer_cannot_create_under_another_town(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    body = {"code": "370282104203", "name": "新村", "level": "village", "parent_code": "370282104"}
    r = await client.post("/v1/regions", json=body, headers=auth("officer", TOWN))
    # The same answer as for a parent that does not exist at all.
    assert assert_problem(r, 404, "region_not_found")["detail"] == "region 370282104 not found"
    assert await count_rows(Region) == before


async def test_town_officer_lists_only_its_subtree(client: httpx.AsyncClient, auth: Auth) -> None:
    codes = await walk(client, "/v1/regions", auth("officer", TOWN))
    assert set(codes) == LANCUN
    assert len(codes) == len(LANCUN)


async def test_village_user_sees_only_its_village_and_grids(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("village", VILLAGE)
    assert await walk(client, "/v1/regions", headers) == [
        "370282103201",
        "370282103201-W01",
        "370282103201-W02",
    ]
    assert (await client.get("/v1/regions/370282103201-W02", headers=headers)).status_code == 200
    assert_problem(await client.get("/v1/regions/370282103202", headers=headers), 404, "region_not_found")
    assert_problem(await client.get("/v1/regions/370282103", headers=headers), 404, "region_not_found")


async def test_officer_cannot_move_a_village_into_another_town(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    r = await client.patch(
        "/v1/regions/370282103203", json={"parent_code": "370282104"}, headers=auth("officer", TOWN)
    )
    assert_problem(r, 404, "region_not_found")
    assert await stored_paths(count_rows, "/37/3702/370282/370282103/370282103203/") == 1


async def test_officer_cannot_move_its_home_region(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    r = await client.patch("/v1/regions/370282103", json={"parent_code": "37"}, headers=auth("officer", TOWN))
    assert_problem(r, 403, "cannot_move_home_region")
    assert await stored_paths(count_rows, "/37/3702/370282/370282103/") == len(LANCUN)


# ---- update and move ----


async def test_rename_changes_name_and_updated_at(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    headers = auth("officer", TOWN)
    old = (await client.get("/v1/regions/370282103", headers=headers)).json()
    r = await client.patch("/v1/regions/370282103", json={"name": " 蓝村街道办事处 "}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "蓝村街道办事处"
    assert body["path"] == old["path"]
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(old["updated_at"])
    assert body["created_at"] == old["created_at"]
    assert await count_rows(Region, col(Region.name) == "蓝村街道办事处") == 1


async def test_level_may_change_when_it_still_nests(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    r = await client.patch("/v1/regions/370282103203", json={"level": "zone"}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["level"] == "zone"
    assert await count_rows(Region, col(Region.code) == "370282103203", col(Region.level) == "zone") == 1


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("370282103201", "grid"),  # it has grids below it
        ("370282103", "county"),  # its parent is a county
        ("370282103-GQ01", "village"),  # its villages would sit beside it
    ],
)
async def test_level_change_that_breaks_nesting_is_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any], code: str, level: str
) -> None:
    r = await client.patch(f"/v1/regions/{code}", json={"level": level}, headers=auth("admin"))
    assert_problem(r, 422, "level_does_not_nest")
    assert await count_rows(Region, col(Region.code) == code, col(Region.level) == level) == 0


async def test_moving_a_zone_rewrites_the_paths_of_its_whole_subtree(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    headers = auth("admin")
    r = await client.patch("/v1/regions/370282103-GQ01", json={"parent_code": "370282104"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["parent_code"] == "370282104"
    assert r.json()["path"] == "/37/3702/370282/370282104/370282103-GQ01/"

    moved = {"370282103-GQ01", "370282103201", "370282103202", "370282103201-W01", "370282103201-W02"}
    assert await stored_paths(count_rows, "/37/3702/370282/370282104/370282103-GQ01/") == len(moved)
    assert await stored_paths(count_rows, "/37/3702/370282/370282103/") == 2  # the town and 西河村
    assert await count_rows(Region) == before

    grid = (await client.get("/v1/regions/370282103201-W02", headers=headers)).json()
    assert grid["path"] == "/37/3702/370282/370282104/370282103-GQ01/370282103201/370282103201-W02/"
    assert grid["parent_code"] == "370282103201"
    subtree = await walk(client, "/v1/regions/370282104/subtree", headers)
    assert moved <= set(subtree)
    children = await walk(client, "/v1/regions/370282103/children", headers)
    assert children == ["370282103203"]
    # The town officer no longer sees what moved away.
    gone = await client.get("/v1/regions/370282103201", headers=auth("officer", TOWN))
    assert_problem(gone, 404, "region_not_found")


async def test_officer_moves_a_village_inside_its_town(client: httpx.AsyncClient, auth: Auth) -> None:
    headers = auth("officer", TOWN)
    r = await client.patch(
        "/v1/regions/370282103203", json={"parent_code": "370282103-GQ01"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/37/3702/370282/370282103/370282103-GQ01/370282103203/"
    children = await walk(client, "/v1/regions/370282103-GQ01/children", headers)
    assert children == ["370282103201", "370282103202", "370282103203"]


@pytest.mark.parametrize("target", ["370282103-GQ01", "370282103201", "370282103201-W01"])
async def test_moving_a_region_into_itself_or_below_itself_is_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any], target: str
) -> None:
    r = await client.patch("/v1/regions/370282103-GQ01", json={"parent_code": target}, headers=auth("admin"))
    assert_problem(r, 422, "move_into_own_subtree")
    assert await stored_paths(count_rows, "/37/3702/370282/370282103/370282103-GQ01/") == 5


async def test_move_under_a_region_of_the_same_level_is_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    r = await client.patch(
        "/v1/regions/370282103203", json={"parent_code": "370282103201"}, headers=auth("admin")
    )
    assert_problem(r, 422, "level_does_not_nest")
    assert await stored_paths(count_rows, "/37/3702/370282/370282103/370282103203/") == 1


async def test_a_county_admin_may_not_make_a_region_a_root(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    r = await client.patch("/v1/regions/370282103", json={"parent_code": None}, headers=auth("admin"))
    assert_problem(r, 403, "cannot_create_root")
    assert await stored_paths(count_rows, "/37/3702/370282/370282103/") == len(LANCUN)


async def test_keeping_the_same_parent_is_not_a_move(client: httpx.AsyncClient, auth: Auth) -> None:
    # The officer names its home region's current parent: nothing moves, so nothing is refused.
    r = await client.patch(
        "/v1/regions/370282103",
        json={"parent_code": "370282", "name": "蓝村"},
        headers=auth("officer", TOWN),
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "蓝村"
    assert r.json()["path"] == "/37/3702/370282/370282103/"


# ---- bad input: problem+json and nothing stored ----

GOOD = {"code": "370282103204", "name": "北庄村", "level": "village", "parent_code": "370282103"}


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "code": 370282103204},
        {**GOOD, "name": 5},
        {**GOOD, "level": "hamlet"},
        {**GOOD, "parent_code": ["370282103"]},
        {},
        {k: v for k, v in GOOD.items() if k != "parent_code"},
        {k: v for k, v in GOOD.items() if k != "name"},
        {**GOOD, "code": "3702 82"},
        {**GOOD, "code": "370282/103"},
        {**GOOD, "code": "北庄"},
        {**GOOD, "code": "-370282"},
        {**GOOD, "code": "3" * 33},
        {**GOOD, "name": "   "},
        {**GOOD, "name": "村" * 101},
        {**GOOD, "name": "北\u0000庄村"},
        {**GOOD, "extra": 1},
        [GOOD],
    ],
    ids=[
        "code-int",
        "name-int",
        "level-unknown",
        "parent-list",
        "empty",
        "no-parent",
        "no-name",
        "code-space",
        "code-slash",
        "code-chinese",
        "code-leading-dash",
        "code-too-long",
        "name-blank",
        "name-too-long",
        "name-nul",
        "extra-field",
        "array",
    ],
)
async def test_invalid_create_bodies_are_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any], body: Any
) -> None:
    before = await count_rows(Region)
    r = await client.post("/v1/regions", json=body, headers=auth("admin"))
    problem = assert_problem(r, 422, "validation_failed")
    assert problem["errors"]
    assert await count_rows(Region) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**GOOD, "parent_code": "370282199"}, 404, "region_not_found"),
        ({**GOOD, "code": "370282103201"}, 409, "region_code_taken"),
        ({**GOOD, "code": "370282104201"}, 409, "region_code_taken"),
        ({**GOOD, "level": "town", "parent_code": "370282103201"}, 422, "level_does_not_nest"),
        ({**GOOD, "level": "town", "parent_code": "370282103"}, 422, "level_does_not_nest"),
        ({**GOOD, "level": "county", "parent_code": "370282103"}, 422, "level_does_not_nest"),
    ],
    ids=[
        "unknown-parent",
        "code-taken",
        "code-taken-elsewhere",
        "town-under-village",
        "town-under-town",
        "up",
    ],
)
async def test_create_conflicting_with_the_tree_is_refused(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Callable[..., Any],
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = await count_rows(Region)
    r = await client.post("/v1/regions", json=body, headers=auth("admin"))
    assert_problem(r, status, code)
    assert await count_rows(Region) == before


async def test_a_ten_megabyte_body_is_too_large(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    huge = b'{"code": "370282103204", "name": "' + b"x" * (10 * 1_048_576) + b'"}'
    headers = {**auth("admin"), "Content-Type": "application/json"}
    r = await client.post("/v1/regions", content=huge, headers=headers)
    assert_problem(r, 413, "payload_too_large")
    assert await count_rows(Region) == before


async def test_malformed_json_is_a_bad_request(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    headers = {**auth("admin"), "Content-Type": "application/json"}
    r = await client.post("/v1/regions", content=b'{"code": "370282103204", "name":', headers=headers)
    assert_problem(r, 400, "malformed_json")
    assert await count_rows(Region) == before


async def test_missing_token_is_unauthorized(
    client: httpx.AsyncClient, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    assert_problem(await client.post("/v1/regions", json=GOOD), 401, "missing_token")
    assert_problem(await client.get("/v1/regions"), 401, "missing_token")
    assert_problem(await client.get("/v1/regions/370282"), 401, "missing_token")
    assert await count_rows(Region) == before


async def test_viewer_may_read_but_not_write(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    before = await count_rows(Region)
    headers = auth("viewer")
    assert_problem(await client.post("/v1/regions", json=GOOD, headers=headers), 403, "insufficient_scope")
    r = await client.patch("/v1/regions/370282103", json={"name": "改名"}, headers=headers)
    assert_problem(r, 403, "insufficient_scope")
    assert await count_rows(Region) == before
    assert await count_rows(Region, col(Region.name) == "改名") == 0
    assert (await client.get("/v1/regions/370282103", headers=headers)).status_code == 200


async def test_a_token_without_regions_read_cannot_list(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions", headers=auth("admin", scopes=["issues:read"]))
    assert_problem(r, 403, "insufficient_scope")


@pytest.mark.parametrize(
    "body",
    [{"name": None}, {"level": None}, {"name": ""}, {"level": "hamlet"}, {"code": "x"}, {"parent_code": 5}],
    ids=["name-null", "level-null", "name-empty", "level-unknown", "code-not-editable", "parent-int"],
)
async def test_invalid_update_bodies_are_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any], body: dict[str, Any]
) -> None:
    r = await client.patch("/v1/regions/370282103", json=body, headers=auth("admin"))
    assert_problem(r, 422, "validation_failed")
    assert await count_rows(Region, col(Region.code) == "370282103", col(Region.name) == "蓝村街道") == 1


# ---- pagination ----


@pytest.mark.parametrize("limit", [1, 3, 5])
async def test_walking_pages_yields_every_region_once_in_code_order(
    client: httpx.AsyncClient, auth: Auth, limit: int
) -> None:
    codes = await walk(client, "/v1/regions", auth("admin"), limit=limit)
    under_county = sorted(code for code in ALL_CODES if code.startswith("370282"))
    assert codes == under_county


async def test_walking_subtree_and_children_pages_yields_each_once(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    headers = auth("admin")
    for i in range(7):
        body = {
            "code": f"37028210420{i + 3}",
            "name": f"新村{i}",
            "level": "village",
            "parent_code": "370282104",
        }
        assert (await client.post("/v1/regions", json=body, headers=headers)).status_code == 201
    children = await walk(client, "/v1/regions/370282104/children", headers, limit=2)
    assert children == sorted(["370282104201", "370282104202", *(f"37028210420{i + 3}" for i in range(7))])
    subtree = await walk(client, "/v1/regions/370282/subtree", headers, limit=4)
    assert len(subtree) == len(set(subtree)) == len(ALL_CODES) - 3 + 7


async def test_a_forged_cursor_is_a_bad_request(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/regions", headers=auth("admin"), params={"cursor": "not-a-cursor"})
    assert_problem(r, 400, "invalid_cursor")


async def test_malformed_codes_and_filters_never_reach_the_database(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    headers = auth("admin")
    assert_problem(await client.get("/v1/regions/37%0002", headers=headers), 404, "region_not_found")
    assert_problem(await client.get("/v1/regions/a%20b/children", headers=headers), 404, "region_not_found")
    r = await client.get("/v1/regions", headers=headers, params={"q": "庄\x00"})
    assert_problem(r, 422, "validation_failed")
    r = await client.get("/v1/regions", headers=headers, params={"parent_code": "37\x0002"})
    assert_problem(r, 422, "validation_failed")
