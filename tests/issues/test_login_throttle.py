"""Failed logins: a few per account, more per client address, then 429 `login_throttled` for a while.

The limits are small here (the rules are the same at any limit, and each failure is a real login); the
defaults the README promises are checked on the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from services.issues.settings import IssuesSettings
from services.issues.users.models import User
from services.kit.state import state_of
from tests.issues.api import TOKEN, password_form
from tests.support.problems import assert_problem

PER_ACCOUNT = 3
PER_ADDRESS = 7


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"login_max_failures": PER_ACCOUNT, "login_max_failures_per_address": PER_ADDRESS}


def test_the_default_limits_are_five_per_account_and_thirty_per_address() -> None:
    defaults = IssuesSettings(environment="test")
    assert (defaults.login_max_failures, defaults.login_max_failures_per_address) == (5, 30)
    assert defaults.login_failure_window_seconds == 900


async def test_failures_for_one_username_block_it_even_from_other_addresses(
    client_at: Callable[[str], Any], count_rows: Callable[..., Any], app: FastAPI
) -> None:
    assert state_of(app).settings.login_max_failures == PER_ACCOUNT
    users_before = await count_rows(User)
    for n in range(PER_ACCOUNT):
        async with client_at(f"10.0.0.{n + 1}") as c:
            r = await c.post(TOKEN, data=password_form("Officer" if n % 2 else "officer", "wrong"))
            assert_problem(r, 401, "invalid_credentials")
    async with client_at("10.0.1.1") as c:
        blocked = await c.post(TOKEN, data=password_form("officer"))  # the right password, too late
        body = assert_problem(blocked, 429, "login_throttled")
        assert "access_token" not in body
        assert 0 < int(blocked.headers["retry-after"]) <= 900
        assert body["error"] == "invalid_grant"
        other_user = await c.post(TOKEN, data=password_form("officer2"))
        assert other_user.status_code == 200, other_user.text
    assert await count_rows(User) == users_before


async def test_one_address_is_blocked_after_its_own_higher_limit(
    client_at: Callable[[str], Any], app: FastAPI
) -> None:
    """A village's phones share one carrier address: a few mistyped passwords there block only their own
    accounts; guessing at many accounts from it blocks the address."""
    settings = state_of(app).settings
    assert (settings.login_max_failures, settings.login_max_failures_per_address) == (
        PER_ACCOUNT,
        PER_ADDRESS,
    )
    async with client_at("10.0.2.1") as c:
        for n in range(PER_ADDRESS):
            assert_problem(
                await c.post(TOKEN, data=password_form(f"guess{n}", "x")), 401, "invalid_credentials"
            )
            if n == PER_ACCOUNT:  # past the per-account limit, counted over several accounts
                signed_in = await c.post(TOKEN, data=password_form("grid"))
                assert signed_in.status_code == 200, signed_in.text
        blocked = await c.post(TOKEN, data=password_form("admin"))
        assert "access_token" not in assert_problem(blocked, 429, "login_throttled")
    async with client_at("10.0.2.2") as c:
        assert (await c.post(TOKEN, data=password_form("admin"))).status_code == 200


async def test_a_successful_login_clears_the_usernames_failures(client_at: Callable[[str], Any]) -> None:
    for n in range(PER_ACCOUNT - 1):
        async with client_at(f"10.0.3.{n + 1}") as c:
            assert_problem(
                await c.post(TOKEN, data=password_form("grid", "wrong")), 401, "invalid_credentials"
            )
    async with client_at("10.0.3.100") as c:
        assert (await c.post(TOKEN, data=password_form("grid"))).status_code == 200
    async with client_at("10.0.3.101") as c:
        for _ in range(PER_ACCOUNT - 1):
            assert_problem(
                await c.post(TOKEN, data=password_form("grid", "wrong")), 401, "invalid_credentials"
            )
        r = await c.post(TOKEN, data=password_form("grid"))
        assert r.status_code == 200, r.text
