"""kit.db.Database.reading: a read-only session sends no BEGIN and COMMIT, and reads what is committed."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from tests.databases import PG_HOST, PG_PORT, PG_USER, scratch_postgres


async def _state_of(backend_pid: int, database: str) -> str:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database, timeout=5)
    try:
        return str(await conn.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", backend_pid))
    finally:
        await conn.close()


async def test_a_reading_session_leaves_no_transaction_open_between_statements(have_postgres: bool) -> None:
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    async with scratch_postgres("hz_reading") as database:
        name = str(database.engine.url.database)
        async with database.reading() as session:
            pid = int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            # Each statement on its own: the backend is idle, not "idle in transaction" (no BEGIN was sent).
            assert await _state_of(pid, name) == "idle"
            await session.execute(text("CREATE TABLE seen (n int)"))
        async with database.transaction() as session:
            pid = int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            assert await _state_of(pid, name) == "idle in transaction"  # what `reading` saves
            await session.execute(text("INSERT INTO seen VALUES (1)"))
        async with database.reading() as session:
            assert (await session.execute(text("SELECT count(*) FROM seen"))).scalar_one() == 1
        async with database.transaction() as session:  # the pool's connections still begin transactions
            pid = int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            assert await _state_of(pid, name) == "idle in transaction"
