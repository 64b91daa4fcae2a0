"""Disabling a user or revoking a client stops its tokens on all three running services within seconds."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.crossservice.conftest import SERVICES, LiveStack
from tests.support.builders import COUNTY, TOWN

pytestmark = pytest.mark.crossservice

# The review's bound; the stack under test refreshes every second, production every 20 s by default.
WITHIN_SECONDS = 60


def _until_refused(live_stack: LiveStack, http: httpx.Client, service: str, token: str) -> float:
    """Seconds until `service` answers 401 token_revoked for `token` (polling, bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < WITHIN_SECONDS:
        answer = live_stack.caller(http, service, token)
        if answer.status_code == 401:
            assert answer.json()["code"] == "token_revoked", answer.text
            return time.monotonic() - started
        assert answer.status_code == 200, answer.text
        time.sleep(0.05)
    raise AssertionError(f"{service} still accepts the revoked token after {WITHIN_SECONDS} s")


def _admin(live_stack: LiveStack, http: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {live_stack.login(http, 'admin')}"}


def test_a_disabled_users_token_stops_on_every_service(live_stack: LiveStack, http: httpx.Client) -> None:
    admin = _admin(live_stack, http)
    username = f"rev-{uuid.uuid4().hex[:8]}"
    created = http.post(
        live_stack.issuer + "/v1/users",
        json={
            "username": username,
            "password": "a-long-password-1",
            "display_name": "将被停用的干部",
            "role": "officer",
            "region_code": TOWN,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    token = http.post(
        live_stack.issuer + "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": "a-long-password-1"},
    ).json()["access_token"]
    bystander = live_stack.login(http, "village")
    assert all(live_stack.caller(http, s, token).status_code == 200 for s in SERVICES)

    disabled = http.post(f"{live_stack.issuer}/v1/users/{created.json()['id']}/disable", headers=admin)
    assert disabled.status_code == 200, disabled.text
    waited = {service: _until_refused(live_stack, http, service, token) for service in SERVICES}
    assert waited["issues"] < 2.0  # the issuer reads its own database
    assert all(seconds < WITHIN_SECONDS for seconds in waited.values())
    assert all(live_stack.caller(http, s, bystander).status_code == 200 for s in SERVICES)


def test_a_revoked_clients_token_stops_on_every_service(live_stack: LiveStack, http: httpx.Client) -> None:
    admin = _admin(live_stack, http)
    created = http.post(
        live_stack.issuer + "/v1/clients",
        json={"name": "12345 热线", "scopes": ["regions:read", "photos:read"], "region_code": COUNTY},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    client = created.json()
    token = http.post(
        live_stack.issuer + "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    ).json()["access_token"]
    assert all(live_stack.caller(http, s, token).status_code == 200 for s in SERVICES)
    revoked = http.post(f"{live_stack.issuer}/v1/clients/{client['client_id']}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    for service in SERVICES:
        _until_refused(live_stack, http, service, token)
