"""Test databases built by the Alembic migrations, on SQLite and on a real PostgreSQL.

Each service gets one migrated (and, for issues, seeded with the tests' tree) database per backend per
test session. Each test starts from that state: on SQLite from a copy of the file; on PostgreSQL in the
same database, whose rows are put back as they were when it was built (CREATE/DROP DATABASE costs ~1.5 s
a test here; emptying the tables and copying the template's rows back in, one transaction on one kept
connection, a few milliseconds).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import MetaData

from services.kit.db import Database
from services.kit.migrations import upgrade

PG_HOST = os.environ.get("HUANZHI_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HUANZHI_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("HUANZHI_TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

Rows = tuple[list[str], list[tuple[Any, ...]]]


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


@asynccontextmanager
async def scratch_postgres(prefix: str, **options: Any) -> AsyncIterator[Database]:
    """A new, empty PostgreSQL database for one test, as a kit `Database` (built with `options`); dropped
    afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await _pg(f'CREATE DATABASE "{name}"')
    database = Database(pg_url(name), **options)
    try:
        yield database
    finally:
        await database.dispose()
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available() -> bool:
    try:
        asyncio.run(_pg("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = (
            f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable ({exc!r}): the PostgreSQL leg is skipped"
        )
        if IN_CI:
            raise RuntimeError(message + " — but CI must run it") from exc
        warnings.warn(message, stacklevel=1)
        return False
    return True


class PostgresSnapshot:
    """A template database's rows as built, and the connection that puts them back before each test."""

    def __init__(self, conn: asyncpg.Connection, tables: list[str], rows: dict[str, Rows]) -> None:
        self.conn = conn
        self.tables = tables
        self.rows = rows
        # Children first; one round trip for all of them.
        self.empty_all = "; ".join(f'DELETE FROM "{name}"' for name in reversed(tables))

    @classmethod
    async def take(cls, url: str, metadata: MetaData) -> PostgresSnapshot:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=url.rsplit("/", 1)[1], timeout=5
        )
        tables = [table.name for table in metadata.sorted_tables]
        rows: dict[str, Rows] = {}
        for name in tables:
            records = await conn.fetch(f'SELECT * FROM "{name}"')
            if records:
                rows[name] = (list(records[0].keys()), [tuple(r) for r in records])
        return cls(conn, tables, rows)

    async def restore(self) -> None:
        """Every table as it was when the snapshot was taken (ids included; sequences only move on)."""
        async with self.conn.transaction():
            await self.conn.execute(self.empty_all)
            for name in self.tables:  # parents first
                if name in self.rows:
                    columns, records = self.rows[name]
                    await self.conn.copy_records_to_table(name, records=records, columns=columns)

    async def close(self) -> None:
        await self.conn.close()


class Templates:
    """Migrated template databases, built once per (service, backend) and copied per test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"hz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._built: dict[tuple[str, str], str] = {}
        self._pg_databases: list[str] = []
        self._snapshots: dict[str, PostgresSnapshot] = {}

    def template(self, service: str, backend: str, seed: Callable[[str], None] | None = None) -> str:
        key = (service, backend)
        if key not in self._built:
            if backend == "sqlite":
                path = self.root / f"template-{service}.db"
                url = f"sqlite+aiosqlite:///{path}"
            else:
                name = f"{self.prefix}_tmpl_{service}"
                asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
                self._pg_databases.append(name)
                url = pg_url(name)
            upgrade(service, url)
            if seed is not None:
                seed(url)
            self._built[key] = url
        return self._built[key]

    async def copy(
        self,
        service: str,
        backend: str,
        template_url: str,
        folder: Path,
        *,
        metadata: MetaData,
    ) -> str:
        """A database in the template's state for one test: on SQLite a copy in `folder`, on PostgreSQL
        the template itself with its rows put back (the first call takes the snapshot)."""
        if backend == "sqlite":
            source = Path(template_url.split(":///", 1)[1])
            target = folder / f"{service}.db"
            shutil.copyfile(source, target)
            return f"sqlite+aiosqlite:///{target}"
        snapshot = self._snapshots.get(template_url)
        if snapshot is None:
            snapshot = self._snapshots[template_url] = await PostgresSnapshot.take(template_url, metadata)
        await snapshot.restore()
        return template_url

    async def drop_templates(self) -> None:
        for snapshot in self._snapshots.values():
            await snapshot.close()
        for name in self._pg_databases:
            await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
