"""Talking to the issues service in tests: logins at the token endpoint, and what it stored."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlmodel import col

from services.issues.clients.models import ApiClient
from services.issues.users.models import User
from services.kit.state import state_of
from tests.support import rows
from tests.support.builders import TEST_PASSWORD

TOKEN = "/v1/auth/token"


def password_form(username: str = "officer", password: str = TEST_PASSWORD, **extra: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password, **extra}


async def sign_in(client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD) -> httpx.Response:
    return await client.post(TOKEN, data=password_form(username, password))


async def login(client: httpx.AsyncClient, username: str = "officer", password: str = TEST_PASSWORD) -> str:
    """A tree user's access token (failing the test when the login fails)."""
    r = await sign_in(client, username, password)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def client_token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post(
        TOKEN, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )


def bearer_of(response: httpx.Response) -> dict[str, str]:
    """Authorization headers with the token a 200 token answer carries."""
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def caller(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {token}"})


async def stored_user(app: FastAPI, username: str) -> User | None:
    return await rows.stored(state_of(app).database, User, col(User.username) == username)


async def user_id(app: FastAPI, username: str) -> int:
    user = await stored_user(app, username)
    assert user is not None and user.id is not None
    return user.id


async def stored_client(app: FastAPI, client_id: str) -> ApiClient | None:
    return await rows.stored(state_of(app).database, ApiClient, col(ApiClient.client_id) == client_id)


def without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in names}
