"""Each service's migrations: up, in step with the models, down and up again — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from services.kit.migrations import alembic_config
from tests.databases import _pg, pg_url

SERVICES = ["issues", "scoring", "media"]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path, have_postgres: bool) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    name = f"hz_mig_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    yield pg_url(name)
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models_and_go_down_and_up_again(service: str, empty_database: str) -> None:
    config = alembic_config(service, empty_database)
    command.upgrade(config, "head")
    command.check(config)  # raises if the models hold a change no migration makes
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
