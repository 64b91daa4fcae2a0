"""What every folder's tests share: the databases, the test keys, and the service under test.

A service folder's conftest names its service (`service` fixture) and may add settings of its own
(`service_values`); a test module changes settings with `overrides`. Then, for that service:
`app` (lifespan running), `client`, `client_at(address)`, `minter`, `token(...)`, `auth(...)` and
`count_rows(Model, *where)`; `backend` runs a test on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.issues.auth.keys import KeyRing
from services.kit.db import Database
from services.kit.settings import ServiceSettings
from services.kit.state import state_of
from tests.databases import Templates, postgres_available
from tests.support import rows
from tests.support.apps import AUDIENCE, ISSUER, AppPool, Service, client_for, running
from tests.support.tokens import TokenMinter

BACKENDS = ["sqlite", "postgres"]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `-n N`: each live stack's tests on one worker (tests/support/xdist.py)."""
    if config.getvalue("dist") != "load":
        return None
    from tests.support.xdist import LiveStackScheduling

    return LiveStackScheduling(config, log)


@pytest.fixture(scope="session")
def have_postgres() -> bool:
    return postgres_available()


@pytest.fixture(scope="session")
async def templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("templates"))
    yield t
    await t.drop_templates()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, have_postgres: bool) -> str:
    if request.param == "postgres" and not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    return str(request.param)


@pytest.fixture(scope="session")
def test_keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    """The keys tests sign with for scoring and media (the issues app signs with its own)."""
    return KeyRing.from_folder(tmp_path_factory.mktemp("test-keys"), generate_if_empty=True)


@pytest.fixture(scope="session")
def test_minter(test_keyring: KeyRing) -> TokenMinter:
    return TokenMinter(test_keyring, ISSUER, AUDIENCE)


@pytest.fixture(scope="session")
def app_pool(test_minter: TokenMinter) -> AppPool:
    return AppPool(test_minter)


# ---- the service under test ----


@pytest.fixture
def service() -> Service:
    """Which service a folder tests: each service folder's conftest overrides this."""
    raise pytest.UsageError("no service under test here: the folder's conftest names one")


@pytest.fixture
def service_values() -> dict[str, Any]:
    """Settings a folder's conftest gives its service (media: the object store)."""
    return {}


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize indirectly) to change the app's settings."""
    return {}


@pytest.fixture(scope="session")
def sqlite_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("databases")


@pytest.fixture
async def db_url(service: Service, backend: str, templates: Templates, sqlite_folder: Path) -> str:
    """The service's database, migrated and seeded, in its starting state (on SQLite a fresh copy)."""
    template = await asyncio.to_thread(templates.template, service.name, backend, _seeder(service))
    return await templates.copy(service.name, backend, template, sqlite_folder, metadata=service.metadata)


def _seeder(service: Service) -> Callable[[str], None] | None:
    if service.seed is None:
        return None
    seed = service.seed

    def run(url: str) -> None:
        async def seed_it() -> None:
            database = Database(url)
            try:
                async with database.transaction() as session:
                    await seed(session)
            finally:
                await database.dispose()

        asyncio.run(seed_it())

    return run


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def data_dir(service: Service, data_root: Path) -> Path:
    """The service's data folder, emptied for each test (keys, spool, local objects)."""
    folder = data_root / service.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


@pytest.fixture
def settings(
    service: Service,
    db_url: str,
    data_dir: Path,
    service_values: dict[str, Any],
    overrides: dict[str, Any],
) -> Any:
    values = {"database_url": db_url, "data_dir": data_dir, **service_values, **overrides}
    return service.settings(**values)


@pytest.fixture
async def app(service: Service, settings: ServiceSettings, app_pool: AppPool) -> AsyncIterator[FastAPI]:
    """The service's app with its lifespan running on this test's database and data folder."""
    async with running(app_pool.app(service, settings)) as running_app:
        yield running_app


@pytest.fixture
async def client(app: FastAPI, service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, service.base_url) as c:
        yield c


@pytest.fixture
def client_at(
    app: FastAPI, service: Service
) -> Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """A client whose requests come from the address `host`: `async with client_at("10.0.0.1") as c:`."""

    def make(host: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return client_for(app, service.base_url, address=host)

    return make


@pytest.fixture
def minter(app: FastAPI, service: Service, test_minter: TokenMinter) -> TokenMinter:
    """Signs tokens the running app accepts."""
    return service.minter(app, test_minter)


@pytest.fixture
def token(minter: TokenMinter) -> Callable[..., str]:
    """`token("officer", TOWN)`, `token("admin", scopes=[...])`, `token("village", VILLAGE, subject=...)`."""
    return minter.token


@pytest.fixture
def auth(minter: TokenMinter) -> Callable[..., dict[str, str]]:
    """Authorization headers: `auth("officer", TOWN)` (same arguments as `token`)."""
    return minter.headers


@pytest.fixture
def count_rows(app: FastAPI) -> Callable[..., Any]:
    """`await count_rows(Region, col(Region.code) == "37")`: rows now in the app's database."""

    async def count(model: Any, *where: Any) -> int:
        return await rows.count_rows(state_of(app).database, model, *where)

    return count
