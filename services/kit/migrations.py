"""Alembic glue shared by the three `env.py` files, and a programmatic `upgrade` for launchers and tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.kit.db import ensure_sqlite_folder

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config(service: str, url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI), ini_section=service)
    if url:
        config.attributes["url"] = url
    return config


def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Bring `service`'s database at `url` to `revision` (call outside a running event loop)."""
    command.upgrade(alembic_config(service, url), revision)


def run_env(metadata: MetaData, version_table: str, default_url: Callable[[], str]) -> None:
    """The body of each service's `env.py`: offline SQL or online async migrations, batch mode on both."""
    config = context.config
    url = (
        config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url") or default_url()
    )
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": version_table,
        "render_as_batch": True,  # SQLite ALTERs; needed in both configure calls
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        ensure_sqlite_folder(url)
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(online())
