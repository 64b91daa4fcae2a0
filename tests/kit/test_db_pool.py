"""kit.db's pool on PostgreSQL: a connection idle for a while is checked on checkout, one used a moment ago
is not, and a server that dropped its connections costs at most the requests already holding one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from services.kit.db import PING_AFTER_IDLE_SECONDS, Database
from tests.databases import _pg, scratch_postgres


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _pid(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _two_pooled(database: Database) -> set[int]:
    """Two connections opened and returned to the pool; their backends' ids."""
    pids = set()
    async with database.transaction() as first, database.transaction() as second:
        for session in (first, second):
            pids.add(int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
    assert len(pids) == 2
    return pids


async def _drop_backends(database: Database) -> None:
    name = database.engine.url.database
    await _pg(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


@asynccontextmanager
async def _pool_the_server_dropped(have_postgres: bool) -> AsyncIterator[tuple[Database, Clock, set[int]]]:
    """A database whose two pooled connections the server has just ended, its clock, and their backends."""
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    clock = Clock()
    async with scratch_postgres("hz_ping", clock=clock) as database:
        pids = await _two_pooled(database)
        await _drop_backends(database)
        yield database, clock, pids


class _Counting:
    """An asyncpg connection that notes each simple-protocol query it is sent (the ping's way)."""

    def __init__(self, driver: Any, sent: list[str]) -> None:
        self._driver, self._sent = driver, sent

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._sent.append(query)
        return await self._driver.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)


def _count_pings(database: Database) -> list[str]:
    """The checkout pings sent from now on: each pooled connection's driver is wrapped at its next checkout,
    before the ping (SQLAlchemy's events see no query sent by the driver itself)."""
    sent: list[str] = []

    @event.listens_for(database.engine.sync_engine, "checkout", insert=True)
    def wrap(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if not isinstance(dbapi_connection._connection, _Counting):
            dbapi_connection._connection = _Counting(dbapi_connection._connection, sent)

    return sent


async def test_a_connection_the_server_dropped_is_replaced_before_a_request_uses_it(
    have_postgres: bool,
) -> None:
    """Pooled connections idle for the ping window are checked on checkout (one query): after the server
    ends every backend — a restart, a failover — the next request gets a fresh connection, not an error."""
    async with _pool_the_server_dropped(have_postgres) as (database, clock, pids):
        clock.now += PING_AFTER_IDLE_SECONDS
        for opened in (database.transaction, database.reading):
            async with opened() as session:
                pid = int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                assert pid not in pids


async def test_a_connection_used_a_moment_ago_is_not_pinged_and_one_idle_longer_is(
    have_postgres: bool,
) -> None:
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    clock = Clock()
    async with scratch_postgres("hz_ping", clock=clock) as database:
        await _pid(database)  # a fresh connection, pinged once on its first checkout
        pings = _count_pings(database)
        for _ in range(3):
            clock.now += PING_AFTER_IDLE_SECONDS / 2
            await _pid(database)
        assert pings == []
        clock.now += PING_AFTER_IDLE_SECONDS
        await _pid(database)
        assert pings == ["SELECT 1"]


async def test_every_checkout_is_pinged_with_no_window(have_postgres: bool) -> None:
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    async with scratch_postgres("hz_ping", ping_after_idle=0) as database:
        await _pid(database)
        pings = _count_pings(database)
        for _ in range(3):
            await _pid(database)
        assert pings == ["SELECT 1"] * 3


async def test_a_server_that_dropped_connections_used_a_moment_ago_fails_one_request_then_the_pool_is_new(
    have_postgres: bool,
) -> None:
    """Inside the window the dropped connection is not found out before use: that request fails with the
    connection marked invalid (503 `database_unavailable` at the API), and SQLAlchemy renews the pool with
    it, so the requests after it get fresh connections without waiting for the window."""
    async with _pool_the_server_dropped(have_postgres) as (database, _, pids):
        with pytest.raises(DBAPIError) as failed:
            await _pid(database)
        assert failed.value.connection_invalidated
        fresh = {await _pid(database) for _ in range(2)}
        assert not fresh & pids


async def test_the_pools_connections_compile_no_statement_just_in_time(have_postgres: bool) -> None:
    """The services' statements take milliseconds; JIT compiling one the planner misjudges takes longer."""
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    async with scratch_postgres("hz_jit") as database:
        for opened in (database.transaction, database.reading):
            async with opened() as session:
                assert (await session.execute(text("SHOW jit"))).scalar_one() == "off"
