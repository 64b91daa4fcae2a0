"""Shared fixtures: apps on real migrated databases (SQLite and PostgreSQL), tokens, row counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.issues.app import create_app as create_issues_app
from services.issues.auth.passwords import hash_secret
from services.issues.auth.rules import ROLE_SCOPES, Role
from services.issues.auth.tokens import mint_access_token
from services.issues.demo import DEMO_PASSWORD, DEMO_REGIONS, DEMO_USERS, seed_demo_data
from services.issues.models import metadata as issues_metadata
from services.issues.regions.rules import child_path
from services.issues.settings import IssuesSettings
from services.kit.db import Database
from tests.databases import Templates, postgres_available

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def have_postgres() -> bool:
    return postgres_available()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("templates"))
    yield t
    t.drop_templates()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, have_postgres: bool) -> str:
    if request.param == "postgres" and not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    return str(request.param)


_DEMO_HASH = hash_secret(DEMO_PASSWORD)


async def reseed_issues(session: AsyncSession) -> None:
    await seed_demo_data(session, password_hash=_DEMO_HASH)


def _seed_issues(url: str) -> None:
    async def run() -> None:
        database = Database(url)
        async with database.sessionmaker() as session, session.begin():
            await reseed_issues(session)
        await database.dispose()

    asyncio.run(run())


@pytest.fixture
async def issues_db_url(backend: str, templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated issues database holding the demo tree and users (see services/issues/demo.py)."""
    template = await asyncio.to_thread(templates.template, "issues", backend, _seed_issues)
    url, drop = await templates.copy(
        "issues", backend, template, tmp_path, metadata=issues_metadata, reseed=reseed_issues
    )
    yield url
    await drop()


def issues_settings(url: str, tmp_path: Path, **overrides: Any) -> IssuesSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": url,
        "data_dir": tmp_path / "data",
        "media_url": "",
        "log_json": False,
        "log_level": "WARNING",
        "token_issuer": "http://issues.test",
        "jwks_url": "http://issues.test/.well-known/jwks.json",
    }
    values.update(overrides)
    return IssuesSettings(**values)


@pytest.fixture
def issues_overrides() -> dict[str, Any]:
    """Override in a test module to change the issues app's settings."""
    return {}


@pytest.fixture
async def issues_app(
    issues_db_url: str, tmp_path: Path, issues_overrides: dict[str, Any]
) -> AsyncIterator[FastAPI]:
    app = create_issues_app(issues_settings(issues_db_url, tmp_path, **issues_overrides))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(issues_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=issues_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://issues.test") as c:
        yield c


REGION_PATHS: dict[str, str] = {}
for _code, _name, _level, _parent in DEMO_REGIONS:
    REGION_PATHS[_code] = child_path(REGION_PATHS[_parent] if _parent else None, _code)

DEMO_ROLES = {username: (role, region) for username, _, role, region in DEMO_USERS}


@pytest.fixture
def token(issues_app: FastAPI) -> Callable[..., str]:
    """Mint a token signed by the app's key: `token("officer", "370282103")`, `token(..., scopes=[...])`."""

    def make(
        role: str,
        region: str = "370282",
        *,
        scopes: list[str] | None = None,
        subject: str | None = None,
        **claims: Any,
    ) -> str:
        settings: IssuesSettings = issues_app.state.settings
        return mint_access_token(
            issues_app.state.keyring,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            lifetime_seconds=600,
            subject=subject or f"test:{role}",
            role=role,
            region=region,
            region_path=REGION_PATHS[region] if region != "*" else "/",
            scopes=scopes if scopes is not None else ROLE_SCOPES[Role(role)],
            name=f"test {role}",
        ).access_token

    return make


@pytest.fixture
def auth(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Authorization headers: `auth("officer", "370282103")`."""

    def headers(role: str, region: str = "370282", **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(role, region, **kwargs)}"}

    return headers


@pytest.fixture
def count_rows(issues_app: FastAPI) -> Callable[[Any], Any]:
    """`await count_rows(Region)`: rows now in the app's database."""

    async def count(model: Any, *where: Any) -> int:
        async with issues_app.state.database.sessionmaker() as session:
            return int(
                (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
            )

    return count
