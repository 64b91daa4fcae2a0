"""The three services as real processes on loopback ports, one stack per backend (SQLite, PostgreSQL).

The stack is session-scoped: tests that stop or restart a service bring it back before they finish,
and tests that sign tokens read the issuer's newest key from disk each time. The issues database holds
the tests' own tree and users (tests/support/builders.py), seeded before the services start, not the
demo data the launcher would add.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.devserver import Stack, spawn_service, stack_environment, start_stack, stop_stack, wait_ready
from services.issues.auth.keys import SigningKey, load_key
from services.kit.db import Database
from services.kit.identity import ROLE_SCOPES, Role, Subject
from services.kit.jwt import TOKEN_USE, sign
from services.kit.migrations import upgrade
from services.kit.settings import DEV_SERVICE_SECRET
from tests.databases import _pg, pg_url
from tests.support.apps import seed_issues
from tests.support.builders import TEST_PASSWORD, TOWN, region_path
from tests.support.ports import free_port

HOST = "127.0.0.1"
SERVICES = ("issues", "scoring", "media")
CALLER_PATHS = {"issues": "/v1/auth/caller", "scoring": "/v1/scoring/caller", "media": "/v1/media/caller"}
# Consumers refetch the JWKS on an unknown kid at most every 5 s by default; zero makes the rotation
# test deterministic instead of depending on how long ago the last refetch happened.
STACK_ENV = {
    "HUANZHI_SCORING_JWKS_MIN_REFRESH_SECONDS": "0",
    "HUANZHI_MEDIA_JWKS_MIN_REFRESH_SECONDS": "0",
    # Revocations reach the consumers within a second here (20 s by default), so the test waits little.
    "HUANZHI_SCORING_REVOCATION_CACHE_SECONDS": "1",
    "HUANZHI_MEDIA_REVOCATION_CACHE_SECONDS": "1",
    # One browser front end, to test CORS on the running services.
    "HUANZHI_ISSUES_CORS_ALLOWED_ORIGINS": "https://zhengzhi.jimo.example",
    "HUANZHI_SCORING_CORS_ALLOWED_ORIGINS": "https://zhengzhi.jimo.example",
    "HUANZHI_MEDIA_CORS_ALLOWED_ORIGINS": "https://zhengzhi.jimo.example",
    # The tests' tree instead of the demo's; password hashes at the cost tests use.
    "HUANZHI_ISSUES_SEED_DEMO": "false",
    "HUANZHI_ISSUES_ENVIRONMENT": "test",
    # The services' output goes to pytest's capture: only warnings and errors, shown with a failing test.
    "HUANZHI_ISSUES_LOG_LEVEL": "WARNING",
    "HUANZHI_SCORING_LOG_LEVEL": "WARNING",
    "HUANZHI_MEDIA_LOG_LEVEL": "WARNING",
}


# The subject of the tokens tests sign themselves (no such user is stored: the services do not look).
TEST_SUBJECT = Subject.user(4242)


def seed_test_tree(url: str) -> None:
    """Migrate the issues database and put the tests' tree and users in it."""
    upgrade("issues", url)

    async def seed() -> None:
        database = Database(url)
        try:
            async with database.transaction() as session:
                await seed_issues(session)
        finally:
            await database.dispose()

    asyncio.run(seed())


@dataclass
class LiveStack:
    """A running stack plus what tests need to reach into it: restart one service, sign tokens."""

    backend: str
    stack: Stack
    ports: dict[str, int]
    env: dict[str, str]

    @property
    def urls(self) -> dict[str, str]:
        return self.stack.urls

    @property
    def issuer(self) -> str:
        return self.urls["issues"]

    @property
    def keys_dir(self) -> Path:
        return self.stack.data_dir / "keys"

    def signing_key(self) -> SigningKey:
        """The key the issuer signs with now: the last PEM file by name."""
        return load_key(sorted(self.keys_dir.glob("*.pem"))[-1])

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Claims of a valid ten-minute officer token; a change to None removes that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": "huanzhi",
            "sub": str(TEST_SUBJECT),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "token_use": TOKEN_USE,
            "role": Role.officer,
            "region": TOWN,
            "region_path": region_path(TOWN),
            "scope": " ".join(sorted(ROLE_SCOPES[Role.officer])),
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], *, key: SigningKey | None = None, kid: str | None = None) -> str:
        """An ES256 token signed with `key` (default: the issuer's current key) under `kid`."""
        key = key or self.signing_key()
        return sign(claims, key.private_pem, kid or key.kid)

    def login(self, client: httpx.Client, username: str) -> str:
        r = client.post(
            self.issuer + "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": TEST_PASSWORD},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def service_token(self, client: httpx.Client, client_id: str = "svc-scoring") -> str:
        r = client.post(
            self.issuer + "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": DEV_SERVICE_SECRET,
            },
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def caller(self, client: httpx.Client, service: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return client.get(self.urls[service] + CALLER_PATHS[service], headers=headers)

    def stop_service(self, service: str) -> None:
        process = self.stack.processes[service]
        process.terminate()
        process.wait(timeout=10)

    def start_service(self, service: str) -> None:
        """Start one service again with the stack's environment and wait until it is ready."""
        self.stack.processes[service] = spawn_service(service, HOST, self.ports[service], self.env)
        one = Stack(
            {service: self.urls[service]}, {service: self.stack.processes[service]}, self.stack.data_dir
        )
        wait_ready(one, timeout=30)

    def restart_service(self, service: str) -> None:
        self.stop_service(service)
        self.start_service(service)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything here starts or talks to processes: slow, and crossservice whether or not a module says so.
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.crossservice)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live_stack(
    request: pytest.FixtureRequest, have_postgres: bool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """issues, scoring and media on free loopback ports with the test tree, on SQLite files or PostgreSQL."""
    backend = str(request.param)
    extra = dict(STACK_ENV)
    databases: list[str] = []
    data_dir = tmp_path_factory.mktemp(f"stack-{backend}")
    if backend == "postgres":
        if not have_postgres:
            pytest.skip("PostgreSQL not reachable")
        prefix = f"hz_cs_{uuid.uuid4().hex[:8]}"
        for service in SERVICES:
            name = f"{prefix}_{service}"
            asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
            databases.append(name)
            extra[f"HUANZHI_{service.upper()}_DATABASE_URL"] = pg_url(name)
    else:
        extra["HUANZHI_ISSUES_DATABASE_URL"] = f"sqlite+aiosqlite:///{data_dir.resolve() / 'issues.db'}"
    ports = {service: free_port() for service in SERVICES}
    try:
        seed_test_tree(extra["HUANZHI_ISSUES_DATABASE_URL"])
        stack = start_stack(data_dir, ports, host=HOST, extra_env=extra, quiet=False)
        try:
            yield LiveStack(backend, stack, ports, stack_environment(data_dir, ports, HOST, extra))
        finally:
            stop_stack(stack)
    finally:
        for name in databases:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(autouse=True)
def _stack_still_running(live_stack: LiveStack) -> None:
    """Fail clearly, not with connection errors, when a service process has died since the last test."""
    dead = {s: p.returncode for s, p in live_stack.stack.processes.items() if p.poll() is not None}
    if dead:
        pytest.fail(f"service processes exited before this test (exit codes): {dead}")
