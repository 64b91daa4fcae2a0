"""Password and client-credentials logins through the token endpoint."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import col

from services.issues.clients.models import ApiClient
from services.issues.users.models import User
from services.kit.errors import Unauthorized
from services.kit.identity import ROLE_SCOPES, Role
from services.kit.jwt import JWKSCache, TokenVerifier
from services.kit.settings import DEV_SERVICE_SECRET
from services.kit.state import state_of
from tests.issues.api import TOKEN, password_form, user_id
from tests.support import problems
from tests.support.builders import TEST_PASSWORD, TOWN, VILLAGE, region_path
from tests.support.tokens import jwt_header

pytestmark = pytest.mark.asyncio


async def verified_claims(client: httpx.AsyncClient, app: FastAPI, token: str) -> dict[str, Any]:
    """Verify the token as scoring or media would: with the JWKS fetched over HTTP."""

    async def fetch() -> dict[str, Any]:
        document: dict[str, Any] = (await client.get("/.well-known/jwks.json")).json()
        return document

    settings = state_of(app).settings
    verifier = TokenVerifier(JWKSCache(fetch), issuer=settings.token_issuer, audience=settings.token_audience)
    return await verifier.verify(token)


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A problem, and never a token in it."""
    body = problems.assert_problem(r, status, code)
    assert "access_token" not in body
    return body


async def test_password_login_returns_a_token_the_service_accepts(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN, data=password_form())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert r.headers["cache-control"] == "no-store"
    me = await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "officer"
    assert me.json()["region"] == TOWN
    assert me.json()["region_path"] == region_path(TOWN)


async def test_password_login_accepts_a_json_body(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN, json=password_form("village"))
    assert r.status_code == 200, r.text
    me = await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["role"] == "village" and me.json()["region"] == VILLAGE


async def test_the_token_carries_the_users_claims_and_names_a_published_key(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    r = await client.post(TOKEN, data=password_form("officer"))
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    claims = await verified_claims(client, app, token)
    officer_id = await user_id(app, "officer")
    settings = state_of(app).settings
    expected_scope = " ".join(sorted(ROLE_SCOPES[Role.officer]))
    assert claims["sub"] == f"user:{officer_id}"
    assert claims["role"] == "officer"
    assert claims["region"] == TOWN
    assert claims["region_path"] == region_path(TOWN)
    assert claims["scope"] == expected_scope == r.json()["scope"]
    assert claims["iss"] == settings.token_issuer == "http://issues.test"
    assert claims["aud"] == settings.token_audience
    assert claims["token_use"] == "access"
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    assert claims["exp"] - int(claims["iat"]) == 3600
    header = jwt_header(token)
    assert header["alg"] == "ES256"
    kids = [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]]
    assert header["kid"] in kids


async def test_every_token_gets_its_own_jti(client: httpx.AsyncClient, app: FastAPI) -> None:
    first = (await client.post(TOKEN, data=password_form())).json()["access_token"]
    second = (await client.post(TOKEN, data=password_form())).json()["access_token"]
    jtis = {(await verified_claims(client, app, t))["jti"] for t in (first, second)}
    assert len(jtis) == 2


async def test_scope_parameter_narrows_the_token(client: httpx.AsyncClient, app: FastAPI) -> None:
    r = await client.post(TOKEN, data=password_form(scope="regions:read  issues:read"))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "issues:read regions:read"
    claims = await verified_claims(client, app, r.json()["access_token"])
    assert claims["scope"] == "issues:read regions:read"
    me = await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["scopes"] == ["issues:read", "regions:read"]


@pytest.mark.parametrize(
    ("username", "scope"),
    [("citizen", "regions:write"), ("officer", "issues:read photos:attach"), ("viewer", "no-such:scope")],
)
async def test_asking_for_a_scope_the_role_lacks_is_invalid_scope(
    client: httpx.AsyncClient, count_rows: Callable[..., Any], username: str, scope: str
) -> None:
    users_before = await count_rows(User)
    r = await client.post(TOKEN, data=password_form(username, scope=scope))
    body = assert_problem(r, 400, "invalid_scope")
    assert body["error"] == "invalid_scope"
    assert await count_rows(User) == users_before


async def test_a_wrong_user_and_a_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient, count_rows: Callable[..., Any]
) -> None:
    users_before = await count_rows(User)
    no_user = await client.post(TOKEN, data=password_form("nobody-here"))
    bad_password = await client.post(TOKEN, data=password_form("officer", "not-the-password"))
    for r in (no_user, bad_password):
        body = assert_problem(r, 401, "invalid_credentials")
        assert body["detail"] == "wrong username or password"
        assert body["error"] == "invalid_grant"

    def without_request_id(r: httpx.Response) -> bytes:
        return r.content.replace(r.json()["request_id"].encode(), b"<id>")

    assert without_request_id(no_user) == without_request_id(bad_password)
    headers = [{k: v for k, v in r.headers.items() if k != "x-request-id"} for r in (no_user, bad_password)]
    assert headers[0] == headers[1]
    assert await count_rows(User) == users_before


async def test_a_disabled_user_gets_the_same_answer_as_a_wrong_password(
    client: httpx.AsyncClient, app: FastAPI, count_rows: Callable[..., Any]
) -> None:
    async with state_of(app).database.transaction() as session:
        await session.execute(update(User).where(col(User.username) == "officer").values(disabled=True))
    users_before = await count_rows(User)
    disabled = await client.post(TOKEN, data=password_form("officer"))
    wrong = await client.post(TOKEN, data=password_form("officer2", "not-the-password"))
    assert_problem(disabled, 401, "invalid_credentials")
    assert disabled.content.replace(disabled.json()["request_id"].encode(), b"") == wrong.content.replace(
        wrong.json()["request_id"].encode(), b""
    )
    assert await count_rows(User) == users_before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"grant_type=password", "text/plain"),
        (b"<grant_type>password</grant_type>", "application/xml"),
        (b"grant_type=password", None),
    ],
)
async def test_a_token_request_in_another_format_is_refused(
    client: httpx.AsyncClient, count_rows: Callable[..., Any], content: bytes, content_type: str | None
) -> None:
    users_before = await count_rows(User)
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post(TOKEN, content=content, headers=headers)
    assert_problem(r, 415, "unsupported_media_type")
    assert await count_rows(User) == users_before


async def test_malformed_json_token_request_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        TOKEN, content=b'{"grant_type": "password",', headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, "malformed_json")


@pytest.mark.parametrize(
    ("form", "fields"),
    [
        ({"grant_type": "password"}, ["body.username", "body.password"]),
        ({"grant_type": "password", "username": "officer"}, ["body.password"]),
        ({"grant_type": "password", "username": "", "password": "x"}, ["body.username"]),
        ({"grant_type": "client_credentials", "client_id": "svc-scoring"}, ["body.client_secret"]),
        ({"username": "officer", "password": TEST_PASSWORD}, ["body"]),
    ],
)
async def test_missing_fields_are_422_with_an_error_per_field(
    client: httpx.AsyncClient, count_rows: Callable[..., Any], form: dict[str, str], fields: list[str]
) -> None:
    users_before = await count_rows(User)
    for send in ({"data": form}, {"json": form}):
        r = await client.post(TOKEN, **send)  # type: ignore[arg-type]
        body = assert_problem(r, 422, "validation_failed")
        assert [e["field"] for e in body["errors"]] == fields
        assert all(e["message"] and e["type"] for e in body["errors"])
    assert await count_rows(User) == users_before


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token", "PASSWORD", ""])
async def test_an_unknown_grant_type_is_422(client: httpx.AsyncClient, grant_type: str) -> None:
    r = await client.post(TOKEN, data=password_form(grant_type=grant_type))
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "body"
    assert body["errors"][0]["type"] == "union_tag_invalid"


async def test_a_service_signs_in_with_client_credentials(client: httpx.AsyncClient, app: FastAPI) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "svc-scoring",
        "client_secret": DEV_SERVICE_SECRET,
    }
    r = await client.post(TOKEN, data=form)
    assert r.status_code == 200, r.text
    claims = await verified_claims(client, app, r.json()["access_token"])
    assert claims["sub"] == "client:svc-scoring"
    assert claims["role"] == "service"
    assert claims["region"] == "*" and claims["region_path"] == "/"
    assert set(claims["scope"].split()) == ROLE_SCOPES[Role.service]
    as_json = await client.post(TOKEN, json=form)
    assert as_json.status_code == 200, as_json.text


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        ("svc-scoring", "wrong-secret"),
        ("svc-media", DEV_SERVICE_SECRET),  # media calls no other service: it has no credentials at all
        ("cli_unknown", "whatever"),
    ],
)
async def test_wrong_client_credentials_are_401(
    client: httpx.AsyncClient, count_rows: Callable[..., Any], client_id: str, secret: str
) -> None:
    users_before, clients_before = await count_rows(User), await count_rows(ApiClient)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    body = assert_problem(await client.post(TOKEN, data=form), 401, "invalid_credentials")
    assert body["detail"] == "wrong client id or secret"
    assert (await count_rows(User), await count_rows(ApiClient)) == (users_before, clients_before)


async def test_the_token_cannot_be_verified_by_another_audience(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    token = (await client.post(TOKEN, data=password_form())).json()["access_token"]

    async def fetch() -> dict[str, Any]:
        document: dict[str, Any] = (await client.get("/.well-known/jwks.json")).json()
        return document

    verifier = TokenVerifier(JWKSCache(fetch), issuer="http://issues.test", audience="someone-else")
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_password_hashing_runs_off_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Argon2 takes tens of milliseconds; on the loop it would stall every other request meanwhile.
    from services.issues.auth import service

    loop_thread = threading.get_ident()
    seen: list[int] = []
    real_verify = service.verify_secret

    def spying_verify(stored_hash: str | None, secret: str, *rest: Any) -> bool:
        seen.append(threading.get_ident())
        return real_verify(stored_hash, secret, *rest)

    monkeypatch.setattr(service, "verify_secret", spying_verify)
    assert (await client.post(TOKEN, data=password_form())).status_code == 200
    assert (await client.post(TOKEN, data=password_form("nobody", "x"))).status_code == 401
    assert len(seen) == 2
    assert loop_thread not in seen
