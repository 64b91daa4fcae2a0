"""WeChat mini-program login against a local fake of `jscode2session`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import col

from services.issues.users.models import User
from services.kit.state import state_of
from tests.support.builders import COUNTY, region_path
from tests.support.problems import assert_problem
from tests.wechat_fake import APPID, SECRET, SESSION_KEY, FakeWeChat, running_fake_wechat

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def fake_wechat_server() -> Iterator[FakeWeChat]:
    with running_fake_wechat() as fake:
        yield fake


@pytest.fixture
def fake_wechat(fake_wechat_server: FakeWeChat) -> FakeWeChat:
    fake_wechat_server.requests.clear()
    return fake_wechat_server


@pytest.fixture
def overrides(request: pytest.FixtureRequest, fake_wechat: FakeWeChat) -> dict[str, Any]:
    values: dict[str, Any] = {
        "wechat_base_url": fake_wechat.url,
        "wechat_appid": APPID,
        "wechat_secret": SECRET,
        "wechat_timeout_seconds": 0.5,
    }
    values.update(getattr(request, "param", {}))
    return values


async def login(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post("/v1/auth/wechat", json={"code": code})


async def citizens(count_rows: Callable[..., Any]) -> int:
    return int(await count_rows(User, col(User.wechat_openid).is_not(None)))


async def test_first_login_creates_a_citizen_in_the_home_county(
    client: httpx.AsyncClient, count_rows: Callable[..., Any], fake_wechat: FakeWeChat
) -> None:
    users_before = await count_rows(User)
    r = await login(client, "good-alice")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] is True and body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert r.headers["cache-control"] == "no-store"
    assert await count_rows(User) == users_before + 1
    assert await count_rows(User, col(User.wechat_openid) == "o_alice", col(User.role) == "citizen") == 1
    assert await count_rows(User, col(User.id) == body["user_id"], col(User.wechat_openid) == "o_alice") == 1

    me = await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "citizen"
    assert me.json()["region"] == COUNTY
    assert me.json()["region_path"] == region_path(COUNTY)
    assert me.json()["subject"] == f"user:{body['user_id']}"
    # The service asked WeChat the way jscode2session wants to be asked.
    assert fake_wechat.requests == [
        {"appid": APPID, "secret": SECRET, "js_code": "good-alice", "grant_type": "authorization_code"}
    ]


async def test_second_login_with_the_same_openid_finds_the_same_citizen(
    client: httpx.AsyncClient, count_rows: Callable[..., Any]
) -> None:
    first = await login(client, "good-bob")
    assert first.status_code == 200, first.text
    users_after_first = await count_rows(User)
    second = await login(client, "good-bob")
    assert second.status_code == 200, second.text
    assert second.json()["created"] is False
    assert second.json()["user_id"] == first.json()["user_id"]
    assert second.json()["access_token"] != first.json()["access_token"]
    assert await count_rows(User) == users_after_first


async def test_two_simultaneous_first_logins_make_one_citizen(
    client: httpx.AsyncClient, count_rows: Callable[..., Any]
) -> None:
    # A mini-program that calls wx.login twice on start races two first logins for one openid.
    users_before = await count_rows(User)
    answers = await asyncio.gather(login(client, "good-carol"), login(client, "good-carol"))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json()["user_id"] == answers[1].json()["user_id"]
    assert sorted(a.json()["created"] for a in answers) == [False, True]
    assert await count_rows(User) == users_before + 1


async def test_session_key_and_app_secret_never_reach_the_answer_or_the_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    huanzhi = logging.getLogger("huanzhi")  # does not propagate to the root, so hand it caplog's handler
    huanzhi.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="huanzhi"), caplog.at_level(logging.DEBUG, logger="httpx"):
            caplog.set_level(logging.DEBUG, logger="httpcore")
            ok = await login(client, "good-dave")
            refused = await login(client, "bad")
    finally:
        huanzhi.removeHandler(caplog.handler)
    assert ok.status_code == 200 and refused.status_code == 400
    assert any(r.name == "httpx" for r in caplog.records), "httpx logged nothing: the check proves nothing"
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for answer in (ok, refused):
        assert SESSION_KEY not in answer.text and SECRET not in answer.text
    assert SESSION_KEY not in logged
    assert SECRET not in logged


@pytest.mark.parametrize(
    ("code", "status", "problem_code", "retry_after"),
    [
        ("bad", 400, "wechat_invalid_code", False),
        ("used", 400, "wechat_code_used", False),
        ("limited", 429, "wechat_rate_limited", True),
        ("busy", 503, "wechat_busy", True),
        ("slow", 504, "wechat_timeout", False),
        ("garbage", 502, "wechat_bad_response", False),
        ("noopenid", 502, "wechat_bad_response", False),
        ("http500", 503, "wechat_busy", True),
    ],
)
async def test_wechat_failures_answer_their_problem_and_create_no_user(
    client: httpx.AsyncClient,
    count_rows: Callable[..., Any],
    code: str,
    status: int,
    problem_code: str,
    retry_after: bool,
) -> None:
    users_before = await count_rows(User)
    r = await login(client, code)
    assert_problem(r, status, problem_code)
    assert SESSION_KEY not in r.text
    if retry_after:
        assert int(r.headers["retry-after"]) > 0
    else:
        assert "retry-after" not in r.headers
    assert await count_rows(User) == users_before


async def test_a_wechat_refusal_names_wechats_errcode(client: httpx.AsyncClient) -> None:
    r = await login(client, "bad")
    assert assert_problem(r, 400, "wechat_invalid_code")["wechat_errcode"] == 40029


@pytest.mark.parametrize("overrides", [{"wechat_secret": "wrong-secret"}], indirect=True)
async def test_a_wrong_app_secret_is_a_bad_gateway_not_the_callers_fault(
    client: httpx.AsyncClient, count_rows: Callable[..., Any]
) -> None:
    users_before = await count_rows(User)
    r = await login(client, "good-erin")
    assert assert_problem(r, 502, "wechat_error")["wechat_errcode"] == 40125
    assert "wrong-secret" not in r.text
    assert await count_rows(User) == users_before


@pytest.mark.parametrize("overrides", [{"wechat_appid": ""}], indirect=True)
async def test_wechat_login_without_an_appid_is_not_configured(
    client: httpx.AsyncClient, count_rows: Callable[..., Any], fake_wechat: FakeWeChat
) -> None:
    users_before = await count_rows(User)
    r = await login(client, "good-frank")
    assert_problem(r, 503, "wechat_not_configured")
    assert fake_wechat.requests == []
    assert await count_rows(User) == users_before


@pytest.mark.parametrize("payload", [{}, {"code": ""}, {"code": None}, {"code": "x" * 129}])
async def test_a_missing_or_empty_code_is_a_validation_error(
    client: httpx.AsyncClient,
    count_rows: Callable[..., Any],
    fake_wechat: FakeWeChat,
    payload: dict[str, Any],
) -> None:
    users_before = await count_rows(User)
    r = await client.post("/v1/auth/wechat", json=payload)
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in r.json()["errors"]] == ["body.code"]
    assert fake_wechat.requests == []
    assert await count_rows(User) == users_before


async def test_a_disabled_citizen_cannot_sign_in_again(
    client: httpx.AsyncClient, app: FastAPI, count_rows: Callable[..., Any]
) -> None:
    first = await login(client, "good-gina")
    assert first.status_code == 200
    async with state_of(app).database.transaction() as session:
        await session.execute(update(User).where(col(User.wechat_openid) == "o_gina").values(disabled=True))
    users_before = await count_rows(User)
    r = await login(client, "good-gina")
    assert "access_token" not in assert_problem(r, 401, "account_disabled")
    assert await count_rows(User) == users_before
