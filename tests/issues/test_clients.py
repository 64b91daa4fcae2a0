"""API clients through /v1/clients: creation with a one-time secret, the tokens they get, revocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.issues.auth.passwords import verify_secret
from services.issues.clients.models import ApiClient
from tests.issues.api import client_token, stored_client
from tests.support.builders import COUNTY, FAR_VILLAGE, OTHER_TOWN, TOWN, VILLAGE, new_client, region_path
from tests.support.problems import assert_problem
from tests.support.tokens import subject_for

pytestmark = pytest.mark.asyncio

Auth = Callable[..., dict[str, str]]
Count = Callable[..., Any]

NEW_CLIENT = new_client()


async def create(client: httpx.AsyncClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    r = await client.post("/v1/clients", json=new_client(**changes), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_officer_creates_a_client_whose_secret_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, app: FastAPI
) -> None:
    r = await client.post("/v1/clients", json=NEW_CLIENT, headers=auth("officer", TOWN))
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/v1/clients/{body['client_id']}"
    assert r.headers["cache-control"] == "no-store"
    assert body["client_id"].startswith("cli_") and len(body["client_id"]) == 20
    assert len(body["client_secret"]) >= 40
    assert {k: body[k] for k in ("name", "role", "scopes", "region_code", "created_by", "revoked_at")} == {
        "name": NEW_CLIENT["name"],
        "role": "integration",
        "scopes": ["issues:read", "regions:read"],
        "region_code": TOWN,
        "created_by": str(subject_for("officer", TOWN)),
        "revoked_at": None,
    }
    assert await count_rows(ApiClient) == 1
    stored = await stored_client(app, body["client_id"])
    assert stored is not None
    assert stored.secret_hash != body["client_secret"] and body["client_secret"] not in stored.secret_hash
    assert verify_secret(stored.secret_hash, body["client_secret"])
    assert (stored.role, stored.scopes) == ("integration", "issues:read regions:read")

    read = await client.get(f"/v1/clients/{body['client_id']}", headers=auth("officer", TOWN))
    assert read.status_code == 200, read.text
    assert read.json() == {k: v for k, v in body.items() if k != "client_secret"}
    listed = await client.get("/v1/clients", headers=auth("admin"))
    assert listed.status_code == 200
    assert body["client_secret"] not in read.text + listed.text


async def test_created_client_gets_a_token_with_exactly_its_scopes_and_region(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    created = await create(client, auth("officer", TOWN), region_code=VILLAGE)
    login = await client_token(client, created["client_id"], created["client_secret"])
    assert login.status_code == 200, login.text
    assert login.json()["scope"] == "issues:read regions:read"
    caller = await client.get(
        "/v1/auth/caller", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert caller.status_code == 200, caller.text
    assert caller.json() == {
        "subject": f"client:{created['client_id']}",
        "role": "integration",
        "region": VILLAGE,
        "region_path": region_path(VILLAGE),
        "scopes": ["issues:read", "regions:read"],
        "name": NEW_CLIENT["name"],
    }


async def test_revoked_client_gets_no_token_and_revoking_again_changes_nothing(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    officer = auth("officer", TOWN)
    created = await create(client, officer)
    r = await client.post(f"/v1/clients/{created['client_id']}/revoke", headers=officer)
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    again = await client.post(f"/v1/clients/{created['client_id']}/revoke", headers=officer)
    assert again.status_code == 200 and again.json() == r.json()
    stored = await stored_client(app, created["client_id"])
    assert stored is not None and stored.revoked_at is not None

    refused = await client_token(client, created["client_id"], created["client_secret"])
    assert_problem(refused, 401, "invalid_credentials")
    assert "access_token" not in refused.json()


async def test_wrong_client_secret_gets_no_token(client: httpx.AsyncClient, auth: Auth) -> None:
    created = await create(client, auth("admin"))
    refused = await client_token(client, created["client_id"], created["client_secret"] + "x")
    assert_problem(refused, 401, "invalid_credentials")


async def test_list_shows_only_the_callers_subtree_and_filters_revoked(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mine = await create(client, auth("officer", TOWN))
    theirs = await create(client, auth("officer", OTHER_TOWN), region_code=FAR_VILLAGE)
    r = await client.get("/v1/clients", headers=auth("officer", TOWN))
    assert r.status_code == 200, r.text
    assert [c["client_id"] for c in r.json()["items"]] == [mine["client_id"]]
    county = await client.get("/v1/clients", params={"limit": 1}, headers=auth("admin"))
    assert [c["client_id"] for c in county.json()["items"]] == [mine["client_id"]]
    second = await client.get(
        "/v1/clients", params={"limit": 1, "cursor": county.json()["next_cursor"]}, headers=auth("admin")
    )
    assert [c["client_id"] for c in second.json()["items"]] == [theirs["client_id"]]
    assert second.json()["next_cursor"] is None

    await client.post(f"/v1/clients/{theirs['client_id']}/revoke", headers=auth("admin"))
    active = await client.get("/v1/clients", params={"revoked": "false"}, headers=auth("admin"))
    revoked = await client.get("/v1/clients", params={"revoked": "true"}, headers=auth("admin"))
    assert [c["client_id"] for c in active.json()["items"]] == [mine["client_id"]]
    assert [c["client_id"] for c in revoked.json()["items"]] == [theirs["client_id"]]


async def test_officer_cannot_see_or_revoke_clients_of_another_town(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    theirs = await create(client, auth("officer", OTHER_TOWN), region_code=OTHER_TOWN)
    officer = auth("officer", TOWN)
    assert_problem(
        await client.get(f"/v1/clients/{theirs['client_id']}", headers=officer), 404, "client_not_found"
    )
    assert_problem(
        await client.post(f"/v1/clients/{theirs['client_id']}/revoke", headers=officer),
        404,
        "client_not_found",
    )
    stored = await stored_client(app, theirs["client_id"])
    assert stored is not None and stored.revoked_at is None


async def test_officer_cannot_create_a_client_in_another_town(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    r = await client.post(
        "/v1/clients", json={**NEW_CLIENT, "region_code": OTHER_TOWN}, headers=auth("officer", TOWN)
    )
    assert_problem(r, 404, "region_not_found")
    assert await count_rows(ApiClient) == 0


@pytest.mark.parametrize(
    ("role", "region", "token_scopes", "requested"),
    [
        ("officer", TOWN, None, ["issues:read", "scoring:write"]),  # officers lack scoring:write
        ("admin", COUNTY, None, ["photos:attach"]),  # service-only
        ("officer", TOWN, ["clients:write", "issues:read"], ["regions:read"]),  # narrowed token
    ],
)
async def test_nobody_grants_a_scope_they_do_not_hold(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Count,
    role: str,
    region: str,
    token_scopes: list[str] | None,
    requested: list[str],
) -> None:
    r = await client.post(
        "/v1/clients",
        json={**NEW_CLIENT, "scopes": requested, "region_code": region},
        headers=auth(role, region, scopes=token_scopes),
    )
    assert_problem(r, 403, "scope_not_grantable")
    assert await count_rows(ApiClient) == 0


# (body, the field named in `errors`): each is refused with nothing stored.
INVALID_CREATES: list[tuple[dict[str, Any], str]] = [
    ({**NEW_CLIENT, "scopes": ["issues:read", "issues:destroy"]}, "body.scopes.1"),
    ({**NEW_CLIENT, "scopes": []}, "body.scopes"),
    ({**NEW_CLIENT, "scopes": "issues:read"}, "body.scopes"),
    ({**NEW_CLIENT, "name": ""}, "body.name"),
    ({**NEW_CLIENT, "name": 5}, "body.name"),
    ({k: v for k, v in NEW_CLIENT.items() if k != "region_code"}, "body.region_code"),
    ({**NEW_CLIENT, "role": "admin"}, "body.role"),
]


async def test_create_rejects_invalid_fields(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    for body, field in INVALID_CREATES:
        r = await client.post("/v1/clients", json=body, headers=auth("admin"))
        assert_problem(r, 422, "validation_failed")
        assert field in {e["field"] for e in r.json()["errors"]}, (body, r.text)
    assert await count_rows(ApiClient) == 0


async def test_create_in_an_unknown_region_is_not_found(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    r = await client.post("/v1/clients", json={**NEW_CLIENT, "region_code": "999999"}, headers=auth("admin"))
    assert_problem(r, 404, "region_not_found")
    assert await count_rows(ApiClient) == 0


async def test_unknown_client_is_not_found(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/clients/cli_0000000000000000", headers=auth("admin"))
    assert_problem(r, 404, "client_not_found")


async def test_malformed_and_oversized_bodies_are_refused(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    headers = {**auth("admin"), "Content-Type": "application/json"}
    assert_problem(await client.post("/v1/clients", content=b"{name", headers=headers), 400, "malformed_json")
    huge = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert_problem(await client.post("/v1/clients", content=huge, headers=headers), 413, "payload_too_large")
    assert await count_rows(ApiClient) == 0


async def test_requests_without_a_valid_token_are_unauthorized(
    client: httpx.AsyncClient, count_rows: Count
) -> None:
    for headers, code in [({}, "missing_token"), ({"Authorization": "Bearer not-a-token"}, "invalid_token")]:
        for method, path in [("POST", "/v1/clients"), ("GET", "/v1/clients")]:
            r = await client.request(
                method, path, json=NEW_CLIENT if method == "POST" else None, headers=headers
            )
            assert_problem(r, 401, code)
    assert await count_rows(ApiClient) == 0


@pytest.mark.parametrize(("role", "region"), [("village", VILLAGE), ("inspector", COUNTY)])
async def test_managing_clients_needs_the_clients_write_scope(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, role: str, region: str
) -> None:
    headers = auth(role, region)
    assert_problem(
        await client.post("/v1/clients", json={**NEW_CLIENT, "region_code": region}, headers=headers),
        403,
        "insufficient_scope",
    )
    assert_problem(await client.get("/v1/clients", headers=headers), 403, "insufficient_scope")
    assert await count_rows(ApiClient) == 0
