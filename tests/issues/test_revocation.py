"""Revocation on the issuer: a disabled, demoted or moved user's tokens, a revoked client's, stop at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.builders import COUNTY, OTHER_TOWN, TEST_PASSWORD, TOWN, new_client
from tests.support.problems import assert_problem


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"revocation_cache_seconds": 0}


async def _login(client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    answer = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    me = await client.get("/v1/users/me", headers=headers)
    assert me.status_code == 200, me.text
    return int(me.json()["id"])


async def test_a_disabled_users_token_stops_at_once_and_a_new_login_after_enabling_works(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    admin = auth("admin")
    officer = await _login(client, "officer")
    officer_id = await _user_id(client, officer)
    assert (await client.get("/v1/regions", headers=officer)).status_code == 200

    assert (await client.post(f"/v1/users/{officer_id}/disable", headers=admin)).status_code == 200
    assert_problem(await client.get("/v1/regions", headers=officer), 401, "token_revoked")
    # The case the review found: a disabled officer still created a user.
    user = {
        "username": "late.user",
        "password": "a-long-password-1",
        "display_name": "晚到",
        "role": "village",
        "region_code": f"{TOWN}201",
    }
    assert_problem(await client.post("/v1/users", json=user, headers=officer), 401, "token_revoked")

    listed = (await client.get("/.well-known/revocations.json")).json()
    entry = next(e for e in listed["subjects"] if e["sub"] == f"user:{officer_id}")
    assert abs(entry["revoked_at"] - time.time()) < 60 and listed["window_seconds"] >= 3600

    assert (await client.post(f"/v1/users/{officer_id}/enable", headers=admin)).status_code == 200
    assert_problem(
        await client.get("/v1/regions", headers=officer), 401, "token_revoked"
    )  # still the old one
    fresh = await _login(client, "officer")
    assert (await client.get("/v1/regions", headers=fresh)).status_code == 200


async def test_a_demoted_or_moved_users_token_stops(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    admin = auth("admin")
    officer = await _login(client, "officer")
    officer_id = await _user_id(client, officer)
    moved = await client.patch(f"/v1/users/{officer_id}", json={"region_code": OTHER_TOWN}, headers=admin)
    assert moved.status_code == 200, moved.text
    assert_problem(await client.get("/v1/regions", headers=officer), 401, "token_revoked")

    viewer = await _login(client, "viewer")
    viewer_id = await _user_id(client, viewer)
    renamed = await client.patch(f"/v1/users/{viewer_id}", json={"display_name": "新名字"}, headers=admin)
    assert renamed.status_code == 200
    assert (await client.get("/v1/regions", headers=viewer)).status_code == 200  # a new name changes no right


async def test_a_revoked_clients_token_stops(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    admin = auth("admin")
    created = await client.post("/v1/clients", json=new_client(region_code=COUNTY), headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    token = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": body["client_id"],
            "client_secret": body["client_secret"],
        },
    )
    integration = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/v1/auth/caller", headers=integration)).status_code == 200
    assert (await client.post(f"/v1/clients/{body['client_id']}/revoke", headers=admin)).status_code == 200
    assert_problem(await client.get("/v1/auth/caller", headers=integration), 401, "token_revoked")
