"""Staff accounts through /v1/users: creation, reading, changes, disabling, and their limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.issues.auth.passwords import verify_secret
from services.issues.users.models import User
from services.kit.identity import Subject
from tests.issues.api import bearer_of, sign_in, stored_user, user_id
from tests.support.builders import (
    FAR_VILLAGE,
    GRID,
    NEIGHBOUR,
    OTHER_TOWN,
    TEST_USERS,
    TOWN,
    USERS_BY_NAME,
    VILLAGE,
    new_user,
    users_under,
)
from tests.support.problems import assert_problem
from tests.support.tokens import subject_for

pytestmark = pytest.mark.asyncio

Auth = Callable[..., dict[str, str]]
Count = Callable[..., Any]

NEW_USER = new_user()
TREE_USER_COUNT = len(TEST_USERS)


# --- creating ---------------------------------------------------------------------------------


async def test_officer_creates_a_village_user_stored_with_a_hash_only(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, app: FastAPI
) -> None:
    r = await client.post("/v1/users", json=NEW_USER, headers=auth("officer", TOWN))
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/v1/users/{body['id']}"
    assert {k: body[k] for k in ("username", "display_name", "phone", "role", "region_code")} == {
        k: NEW_USER[k] for k in ("username", "display_name", "phone", "role", "region_code")
    }
    assert body["disabled"] is False
    assert body["created_at"] == body["updated_at"]
    assert "password" not in body and "password_hash" not in body
    assert await count_rows(User) == TREE_USER_COUNT + 1
    stored = await stored_user(app, "zhang.wei")
    assert stored is not None and stored.id == body["id"]
    assert stored.created_by == str(subject_for("officer", TOWN))
    assert stored.password_hash and NEW_USER["password"] not in stored.password_hash
    assert verify_secret(stored.password_hash, NEW_USER["password"])


async def test_created_user_signs_in_and_sees_their_own_account(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    created = await client.post("/v1/users", json=NEW_USER, headers=auth("admin"))
    assert created.status_code == 201, created.text
    login = await sign_in(client, "zhang.wei", NEW_USER["password"])
    assert login.status_code == 200, login.text
    me = await client.get("/v1/users/me", headers=bearer_of(login))
    assert me.status_code == 200, me.text
    assert me.json() == created.json()


async def test_me_without_a_user_subject_is_not_found(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/users/me", headers=auth("integration", TOWN, scopes=["issues:read"]))
    assert_problem(r, 404, "user_not_found")


async def test_me_needs_no_users_scope(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    citizen_id = await user_id(app, "citizen")
    r = await client.get("/v1/users/me", headers=auth("citizen", VILLAGE, subject=Subject.user(citizen_id)))
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "citizen" and r.json()["region_code"] == VILLAGE


async def test_disabled_user_cannot_sign_in_until_enabled(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    village_id = await user_id(app, "village")
    officer = auth("officer", TOWN)
    r = await client.post(f"/v1/users/{village_id}/disable", headers=officer)
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True
    again = await client.post(f"/v1/users/{village_id}/disable", headers=officer)
    assert again.status_code == 200 and again.json() == r.json()  # idempotent, updated_at untouched
    stored = await stored_user(app, "village")
    assert stored is not None and stored.disabled

    refused = await sign_in(client, "village")
    assert_problem(refused, 401, "invalid_credentials")

    enabled = await client.post(f"/v1/users/{village_id}/enable", headers=officer)
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert (await sign_in(client, "village")).status_code == 200


# --- reading ----------------------------------------------------------------------------------


async def test_officer_reads_a_user_of_its_subtree(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    grid_id = await user_id(app, "grid")
    r = await client.get(f"/v1/users/{grid_id}", headers=auth("officer", TOWN))
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "grid"
    assert r.json()["role"] == "grid"
    assert r.json()["region_code"] == GRID


async def test_list_shows_only_the_callers_subtree(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/users", headers=auth("officer", TOWN))
    assert r.status_code == 200, r.text
    assert {u["username"] for u in r.json()["items"]} == users_under(TOWN)
    assert r.json()["next_cursor"] is None
    county = await client.get("/v1/users", headers=auth("viewer"))
    assert len(county.json()["items"]) == TREE_USER_COUNT


async def test_list_pages_by_id_without_gaps_or_repeats(client: httpx.AsyncClient, auth: Auth) -> None:
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/v1/users", params=params, headers=auth("admin"))
        assert r.status_code == 200, r.text
        seen += [u["id"] for u in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == TREE_USER_COUNT
    assert seen == sorted(seen)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"role": "officer"}, {"officer", "officer2"}),
        ({"region_code": VILLAGE}, {"village", "grid", "citizen"}),
        ({"region_code": OTHER_TOWN}, {"officer2"}),
        ({"q": "网格"}, {"grid"}),
        ({"q": "OFFICER"}, {"officer", "officer2"}),
        ({"disabled": "true"}, set()),
        ({"role": "village", "region_code": TOWN}, {"village"}),
    ],
)
async def test_list_filters(
    client: httpx.AsyncClient, auth: Auth, params: dict[str, str], expected: set[str]
) -> None:
    r = await client.get("/v1/users", params=params, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert {u["username"] for u in r.json()["items"]} == expected


async def test_list_by_a_region_outside_the_subtree_is_not_found(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    r = await client.get("/v1/users", params={"region_code": OTHER_TOWN}, headers=auth("officer", TOWN))
    assert_problem(r, 404, "region_not_found")


# --- region scope -----------------------------------------------------------------------------


async def test_officer_cannot_see_or_touch_users_of_another_town(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    other = await user_id(app, "officer2")
    officer = auth("officer", TOWN)
    assert_problem(await client.get(f"/v1/users/{other}", headers=officer), 404, "user_not_found")
    assert_problem(
        await client.patch(f"/v1/users/{other}", json={"display_name": "x"}, headers=officer),
        404,
        "user_not_found",
    )
    assert_problem(await client.post(f"/v1/users/{other}/disable", headers=officer), 404, "user_not_found")
    assert_problem(await client.post(f"/v1/users/{other}/enable", headers=officer), 404, "user_not_found")
    stored = await stored_user(app, "officer2")
    assert (
        stored is not None
        and stored.display_name == USERS_BY_NAME["officer2"].display_name
        and not stored.disabled
    )


async def test_officer_cannot_create_a_user_in_another_town(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    r = await client.post(
        "/v1/users", json={**NEW_USER, "region_code": OTHER_TOWN}, headers=auth("officer", TOWN)
    )
    assert_problem(r, 404, "region_not_found")
    assert await count_rows(User) == TREE_USER_COUNT


async def test_officer_cannot_move_a_user_to_another_town(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    village_id = await user_id(app, "village")
    r = await client.patch(
        f"/v1/users/{village_id}", json={"region_code": FAR_VILLAGE}, headers=auth("officer", TOWN)
    )
    assert_problem(r, 404, "region_not_found")
    moved = await client.patch(
        f"/v1/users/{village_id}", json={"region_code": NEIGHBOUR}, headers=auth("officer", TOWN)
    )
    assert moved.status_code == 200 and moved.json()["region_code"] == NEIGHBOUR


# --- role ceiling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granter", "region", "role"),
    [("village", VILLAGE, "officer"), ("officer", TOWN, "admin")],
)
async def test_nobody_creates_a_role_above_their_own(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, granter: str, region: str, role: str
) -> None:
    r = await client.post(
        "/v1/users", json={**NEW_USER, "role": role, "region_code": region}, headers=auth(granter, region)
    )
    assert_problem(r, 403, "role_not_grantable")
    assert await count_rows(User) == TREE_USER_COUNT


async def test_officer_cannot_promote_a_user_to_inspector(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    village_id = await user_id(app, "village")
    r = await client.patch(
        f"/v1/users/{village_id}", json={"role": "inspector"}, headers=auth("officer", TOWN)
    )
    assert_problem(r, 403, "role_not_grantable")
    stored = await stored_user(app, "village")
    assert stored is not None and stored.role == "village"


async def test_officer_promotes_a_village_user_to_officer(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    village_id = await user_id(app, "village")
    r = await client.patch(f"/v1/users/{village_id}", json={"role": "officer"}, headers=auth("officer", TOWN))
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "officer"
    assert r.json()["updated_at"] > r.json()["created_at"]
    stored = await stored_user(app, "village")
    assert stored is not None and stored.role == "officer"


async def test_officer_cannot_change_a_user_ranked_above_it(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    created = await client.post(
        "/v1/users",
        json={**NEW_USER, "role": "inspector", "region_code": TOWN},
        headers=auth("admin"),
    )
    assert created.status_code == 201, created.text
    inspector_id = created.json()["id"]
    officer = auth("officer", TOWN)
    r = await client.patch(f"/v1/users/{inspector_id}", json={"password": "taken-over-2026"}, headers=officer)
    assert_problem(r, 403, "user_outranks_caller")
    assert_problem(
        await client.post(f"/v1/users/{inspector_id}/disable", headers=officer), 403, "user_outranks_caller"
    )
    stored = await stored_user(app, "zhang.wei")
    assert stored is not None and not stored.disabled
    assert verify_secret(stored.password_hash, NEW_USER["password"])


async def test_nobody_changes_their_own_role_or_disables_themselves(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    me = await user_id(app, "officer")
    headers = auth("officer", TOWN, subject=Subject.user(me))
    assert_problem(
        await client.patch(f"/v1/users/{me}", json={"role": "village"}, headers=headers), 403, "own_role"
    )
    assert_problem(await client.post(f"/v1/users/{me}/disable", headers=headers), 403, "own_account")
    renamed = await client.patch(f"/v1/users/{me}", json={"display_name": "蓝村街道 王主任"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    stored = await stored_user(app, "officer")
    assert stored is not None
    assert (stored.role, stored.disabled, stored.display_name) == ("officer", False, "蓝村街道 王主任")


# --- changing ---------------------------------------------------------------------------------


async def test_patch_changes_only_the_given_fields_and_resets_the_password(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    village_id = await user_id(app, "village")
    r = await client.patch(
        f"/v1/users/{village_id}",
        json={"phone": "13900001111", "password": "new-secret-2026"},
        headers=auth("officer", TOWN),
    )
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "13900001111"
    assert r.json()["display_name"] == USERS_BY_NAME["village"].display_name
    assert r.json()["role"] == "village"
    assert (await sign_in(client, "village", "new-secret-2026")).status_code == 200
    cleared = await client.patch(
        f"/v1/users/{village_id}", json={"phone": None}, headers=auth("officer", TOWN)
    )
    assert cleared.status_code == 200 and cleared.json()["phone"] is None
    stored = await stored_user(app, "village")
    assert stored is not None and stored.phone is None


BAD_CHANGES: list[dict[str, Any]] = [
    {"display_name": None},
    {"role": None},
    {"disabled": "maybe"},
    {"role": "integration"},
    {"password": "short"},
    {"username": "renamed"},
]


async def test_patch_rejects_bad_changes(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    village_id = await user_id(app, "village")
    before = await stored_user(app, "village")
    for body in BAD_CHANGES:
        r = await client.patch(f"/v1/users/{village_id}", json=body, headers=auth("officer", TOWN))
        assert_problem(r, 422, "validation_failed")
    after = await stored_user(app, "village")
    assert before is not None and after is not None
    assert before.model_dump() == after.model_dump()


# --- bad input and missing credentials --------------------------------------------------------


# (body, the field named in `errors`): each is refused with nothing stored.
INVALID_CREATES: list[tuple[dict[str, Any], str]] = [
    ({**NEW_USER, "role": 7}, "body.role"),
    ({**NEW_USER, "display_name": ["a"]}, "body.display_name"),
    ({k: v for k, v in NEW_USER.items() if k != "password"}, "body.password"),
    ({k: v for k, v in NEW_USER.items() if k != "username"}, "body.username"),
    ({**NEW_USER, "password": "2026short"}, "body.password"),
    ({**NEW_USER, "username": "张伟"}, "body.username"),
    ({**NEW_USER, "username": "zw"}, "body.username"),
    ({**NEW_USER, "username": "zhang wei"}, "body.username"),
    ({**NEW_USER, "role": "integration"}, "body.role"),
    ({**NEW_USER, "role": "service"}, "body.role"),
    ({**NEW_USER, "phone": "call me"}, "body.phone"),
    ({**NEW_USER, "display_name": "   "}, "body.display_name"),
    ({**NEW_USER, "password": "x" * 257}, "body.password"),
]


async def test_create_rejects_invalid_fields(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    for body, field in INVALID_CREATES:
        r = await client.post("/v1/users", json=body, headers=auth("admin"))
        assert_problem(r, 422, "validation_failed")
        assert field in {e["field"] for e in r.json()["errors"]}, (body, r.text)
    assert await count_rows(User) == TREE_USER_COUNT


@pytest.mark.parametrize("username", ["officer", "Officer"])
async def test_create_with_a_taken_username_conflicts(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, username: str
) -> None:
    r = await client.post("/v1/users", json={**NEW_USER, "username": username}, headers=auth("admin"))
    assert_problem(r, 409, "username_taken")
    assert await count_rows(User) == TREE_USER_COUNT


async def test_create_in_an_unknown_region_is_not_found(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    r = await client.post("/v1/users", json={**NEW_USER, "region_code": "999999"}, headers=auth("admin"))
    assert_problem(r, 404, "region_not_found")
    assert await count_rows(User) == TREE_USER_COUNT


async def test_malformed_and_oversized_bodies_are_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    headers = {**auth("admin"), "Content-Type": "application/json"}
    assert_problem(
        await client.post("/v1/users", content=b'{"username": ', headers=headers), 400, "malformed_json"
    )
    huge = b'{"username": "zhang.wei", "display_name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert_problem(await client.post("/v1/users", content=huge, headers=headers), 413, "payload_too_large")
    assert await count_rows(User) == TREE_USER_COUNT


async def test_requests_without_a_valid_token_are_unauthorized(
    client: httpx.AsyncClient, count_rows: Count
) -> None:
    for headers, code in [({}, "missing_token"), ({"Authorization": "Bearer not-a-token"}, "invalid_token")]:
        for method, path in [("POST", "/v1/users"), ("GET", "/v1/users"), ("GET", "/v1/users/me")]:
            r = await client.request(
                method, path, json=NEW_USER if method == "POST" else None, headers=headers
            )
            assert_problem(r, 401, code)
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert await count_rows(User) == TREE_USER_COUNT


async def test_writing_users_needs_the_users_write_scope(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, app: FastAPI
) -> None:
    viewer = auth("viewer")
    assert_problem(await client.post("/v1/users", json=NEW_USER, headers=viewer), 403, "insufficient_scope")
    village_id = await user_id(app, "village")
    assert_problem(
        await client.post(f"/v1/users/{village_id}/disable", headers=viewer), 403, "insufficient_scope"
    )
    grid = auth("grid", GRID)
    assert_problem(await client.get("/v1/users", headers=grid), 403, "insufficient_scope")
    assert await count_rows(User) == TREE_USER_COUNT


async def test_a_refused_change_keeps_none_of_the_changes_before_it(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    """One transaction per request: the disable is applied (and flushed by the region lookup) before the
    move is refused, and must not survive the refusal."""
    village = await user_id(app, "village")
    before = await stored_user(app, "village")
    assert before is not None and not before.disabled
    r = await client.patch(
        f"/v1/users/{village}",
        json={"disabled": True, "display_name": "改了", "region_code": FAR_VILLAGE},  # another town
        headers=auth("officer", TOWN),
    )
    assert_problem(r, 404, "region_not_found")
    after = await stored_user(app, "village")
    assert after is not None
    assert (after.disabled, after.display_name, after.region_id, after.updated_at) == (
        False,
        before.display_name,
        before.region_id,
        before.updated_at,
    )
    signed_in = await sign_in(client, "village")
    assert signed_in.status_code == 200
