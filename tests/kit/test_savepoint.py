"""kit.db.savepoint: what a savepoint writes is rolled back with the request's transaction, on SQLite too.

Python's sqlite3 begins a transaction only before a write, so a plain `begin_nested()` after reads alone is
itself the transaction, and its RELEASE commits the row although the request fails afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from services.kit.db import Database, savepoint
from tests.databases import scratch_postgres

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))


class Failed(Exception):
    pass


async def _count(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(things))).scalar_one())


async def _request(database: Database, *, nested: bool) -> None:
    async with database.transaction() as session:
        await session.execute(select(things.c.id))  # reads first, as a request does
        if nested:
            async with session.begin_nested():
                await session.execute(insert(things).values(name="plain"))
        else:
            async with savepoint(session, things):
                await session.execute(insert(things).values(name="kept?"))
        raise Failed  # the request fails after the savepoint


async def _read_then_write_then_fail(database: Database, *, nested: bool) -> None:
    with pytest.raises(Failed):
        await _request(database, nested=nested)


async def test_a_savepoints_row_goes_with_the_failed_transaction_on_sqlite(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        await _read_then_write_then_fail(database, nested=True)
        assert await _count(database) == 1  # the driver's behaviour the helper exists for
        await _read_then_write_then_fail(database, nested=False)
        assert await _count(database) == 1  # nothing more was kept
    finally:
        await database.dispose()


async def test_a_savepoints_row_goes_with_the_failed_transaction_on_postgresql(have_postgres: bool) -> None:
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    async with scratch_postgres("hz_savepoint") as database:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await _read_then_write_then_fail(database, nested=False)
        assert await _count(database) == 0
