"""Failed logins: stopped per account and address, slowed per account, capped per address; nobody can
lock somebody else's account from elsewhere.

The limits are small here (the rules are the same at any limit, and each failure is a real login); the
defaults the README promises are checked on the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from services.issues.deps import IssuesState
from services.issues.settings import IssuesSettings
from services.issues.users.models import User
from services.kit.state import state_of, typed_state
from tests.issues.api import TOKEN, password_form
from tests.support.problems import assert_problem

PER_PAIR = 3  # one account from one address
DELAY_AFTER = 4  # one account from anywhere: slowed past this
PER_ACCOUNT = 7  # one account from anywhere: the ceiling
PER_ADDRESS = 7


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {
        "login_max_failures": PER_PAIR,
        "login_max_failures_per_account": PER_ACCOUNT,
        "login_delay_after_failures": DELAY_AFTER,
        "login_max_failures_per_address": PER_ADDRESS,
        "login_max_delay_seconds": 600,
    }


def test_the_default_limits() -> None:
    defaults = IssuesSettings(environment="test")
    assert (defaults.login_max_failures, defaults.login_max_failures_per_account) == (5, 50)
    assert defaults.login_delay_after_failures == 10
    assert (defaults.login_max_failures_per_address, defaults.login_max_delay_seconds) == (30, 60)
    assert defaults.login_failure_window_seconds == 900


async def test_failures_from_one_address_stop_that_account_there_and_only_there(
    client_at: Callable[[str], Any], count_rows: Callable[..., Any], app: FastAPI
) -> None:
    assert state_of(app).settings.login_max_failures == PER_PAIR
    users_before = await count_rows(User)
    async with client_at("10.0.0.1") as c:
        for n in range(PER_PAIR):
            r = await c.post(TOKEN, data=password_form("Officer" if n % 2 else "officer", "wrong"))
            assert_problem(r, 401, "invalid_credentials")
        blocked = await c.post(TOKEN, data=password_form("officer"))  # the right password, too late here
        body = assert_problem(blocked, 429, "login_throttled")
        assert "access_token" not in body and body["error"] == "invalid_grant"
        assert 0 < int(blocked.headers["retry-after"]) <= 900
        assert (await c.post(TOKEN, data=password_form("officer2"))).status_code == 200  # another account
    async with client_at("10.0.0.2") as c:
        # The review's finding: failures from anywhere locked the account from every address.
        signed_in = await c.post(TOKEN, data=password_form("officer"))
        assert signed_in.status_code == 200, signed_in.text
    assert await count_rows(User) == users_before


async def test_guessing_at_one_account_from_many_addresses_is_slowed_then_capped(
    client_at: Callable[[str], Any], app: FastAPI
) -> None:
    """Past a few failures from anywhere each attempt waits 1 s, 2 s, 4 s …; the ceiling stops it all."""
    now = [1000.0]
    throttle = typed_state(app, IssuesState).login_throttle
    throttle._clock = lambda: now[0]  # the test's clock: waits are checked, never slept
    address = iter(f"10.0.1.{n}" for n in range(1, 200))

    async def attempt(secret: str = "wrong") -> Any:  # noqa: S107 - a wrong password on purpose
        async with client_at(next(address)) as c:
            return await c.post(TOKEN, data=password_form("inspector", secret))

    for _ in range(DELAY_AFTER):
        assert_problem(await attempt(), 401, "invalid_credentials")
    waits = []
    for _ in range(PER_ACCOUNT - DELAY_AFTER):
        slowed = await attempt("the right one would wait too")
        assert_problem(slowed, 429, "login_throttled")
        waits.append(int(slowed.headers["retry-after"]))
        now[0] += waits[-1]
        assert_problem(await attempt(), 401, "invalid_credentials")  # allowed once the wait is over
    assert waits == [2, 3, 5]  # pauses of 1, 2 and 4 s, told in whole seconds rounded up
    capped = await attempt()
    assert_problem(capped, 429, "login_throttled")
    assert int(capped.headers["retry-after"]) > 800  # the ceiling holds for the window


async def test_one_address_is_blocked_after_its_own_higher_limit(client_at: Callable[[str], Any]) -> None:
    """A village's phones share one carrier address: guessing at many accounts from it blocks the address."""
    async with client_at("10.0.2.1") as c:
        for n in range(PER_ADDRESS):
            assert_problem(
                await c.post(TOKEN, data=password_form(f"guess{n}", "x")), 401, "invalid_credentials"
            )
        blocked = await c.post(TOKEN, data=password_form("admin"))
        assert "access_token" not in assert_problem(blocked, 429, "login_throttled")
    async with client_at("10.0.2.2") as c:
        assert (await c.post(TOKEN, data=password_form("admin"))).status_code == 200


async def test_a_successful_login_clears_the_accounts_failures(client_at: Callable[[str], Any]) -> None:
    async with client_at("10.0.3.1") as c:
        for _ in range(PER_PAIR - 1):
            assert_problem(
                await c.post(TOKEN, data=password_form("grid", "wrong")), 401, "invalid_credentials"
            )
        assert (await c.post(TOKEN, data=password_form("grid"))).status_code == 200
        for _ in range(PER_PAIR - 1):
            assert_problem(
                await c.post(TOKEN, data=password_form("grid", "wrong")), 401, "invalid_credentials"
            )
        r = await c.post(TOKEN, data=password_form("grid"))
        assert r.status_code == 200, r.text
