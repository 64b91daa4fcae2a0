"""Effects after commit: `after_commit` hooks and the transactional outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import MetaData, select, update

from services.kit.db import Database, after_commit, utcnow
from services.kit.outbox import Outbox, outbox_table, retry_delay
from tests.databases import _pg, pg_url, postgres_available

metadata = MetaData()
outbox_rows = outbox_table(metadata)


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
        name = None
    else:
        if not await asyncio.to_thread(postgres_available):
            pytest.skip("PostgreSQL not reachable")
        name = f"hz_outbox_{uuid.uuid4().hex[:10]}"
        await _pg(f'CREATE DATABASE "{name}"')
        db = Database(pg_url(name))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()
    if name is not None:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Recorder:
    """An outbox handler that records what it was asked to do and fails while told to."""

    def __init__(self) -> None:
        self.done: list[dict[str, Any]] = []
        self.failing = False
        self.entered = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def __call__(self, payload: dict[str, Any]) -> None:
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        if self.failing:
            raise ConnectionError("the store is down")
        self.done.append(payload)


async def rows(database: Database) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        return [dict(r) for r in (await session.execute(select(outbox_rows))).mappings()]


# ---- after_commit ----


async def test_an_effect_runs_once_the_transaction_has_committed(database: Database) -> None:
    seen: list[str] = []

    async def effect() -> None:
        seen.append("ran")

    async with database.transaction() as session:
        after_commit(session, effect)
        assert seen == []  # not before the commit
    assert seen == ["ran"]


async def test_an_effect_never_runs_when_the_transaction_rolls_back(database: Database) -> None:
    seen: list[str] = []

    async def effect() -> None:
        seen.append("ran")

    async def refused_request() -> None:
        async with database.transaction() as session:
            after_commit(session, effect)
            raise RuntimeError("the route refused")

    with pytest.raises(RuntimeError, match="refused"):
        await refused_request()
    assert seen == []


async def test_a_failing_effect_leaves_the_commit_standing(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise ConnectionError("peer down")

    outbox = Outbox(database, outbox_rows, {"noop": Recorder()})
    async with database.transaction() as session:
        await outbox.enqueue(session, "noop", {"n": 1}, delay_seconds=60)
        after_commit(session, broken)
    assert len(await rows(database)) == 1
    assert "after-commit effect failed" in caplog.text


# ---- the outbox ----


async def test_an_enqueued_effect_is_carried_out_after_the_commit_and_forgotten(database: Database) -> None:
    handler = Recorder()
    outbox = Outbox(database, outbox_rows, {"delete": handler})
    async with database.transaction() as session:
        await outbox.enqueue(session, "delete", {"keys": ["a", "b"]})
        assert handler.done == []
    assert handler.done == [{"keys": ["a", "b"]}]
    assert await rows(database) == []


async def test_an_effect_of_a_rolled_back_transaction_never_exists(database: Database) -> None:
    handler = Recorder()
    outbox = Outbox(database, outbox_rows, {"delete": handler})

    async def refused_request() -> None:
        async with database.transaction() as session:
            await outbox.enqueue(session, "delete", {"keys": ["a"]})
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await refused_request()
    assert await outbox.run_due() == 0
    assert handler.done == [] and await rows(database) == []


async def test_a_failed_effect_stays_and_is_retried_when_due(database: Database) -> None:
    handler = Recorder()
    handler.failing = True
    outbox = Outbox(database, outbox_rows, {"delete": handler}, retry_base_seconds=30)
    async with database.transaction() as session:
        await outbox.enqueue(session, "delete", {"keys": ["a"]})
    [row] = await rows(database)
    assert row["attempts"] == 1 and "ConnectionError" in row["last_error"]
    assert row["due_at"] > utcnow() + timedelta(seconds=25)

    handler.failing = False
    assert await outbox.run_due() == 0  # not due yet: nothing runs early
    assert handler.done == []
    async with database.transaction() as session:
        await session.execute(update(outbox_rows).values(due_at=utcnow() - timedelta(seconds=1)))
    assert await outbox.run_due() == 1
    assert handler.done == [{"keys": ["a"]}]
    assert await rows(database) == []


async def test_an_unknown_kind_is_refused_before_anything_is_written(database: Database) -> None:
    outbox = Outbox(database, outbox_rows, {"delete": Recorder()})
    async with database.transaction() as session:
        with pytest.raises(ValueError, match="no outbox handler"):
            await outbox.enqueue(session, "launch_missiles", {})
    assert await rows(database) == []


async def test_two_workers_never_run_the_same_effect_twice(database: Database) -> None:
    handler = Recorder()
    handler.release = asyncio.Event()
    outbox = Outbox(database, outbox_rows, {"delete": handler})
    async with database.transaction() as session:
        row_id = await outbox.enqueue(session, "delete", {"keys": ["a"]}, delay_seconds=60)
        await session.execute(update(outbox_rows).values(due_at=utcnow() - timedelta(seconds=1)))
    first = asyncio.create_task(outbox.deliver(row_id))
    await handler.entered.wait()  # the first worker holds the row and is running the effect
    assert await outbox.deliver(row_id) is False  # a second worker (another replica) finds it claimed
    handler.release.set()
    assert await first is True
    assert handler.done == [{"keys": ["a"]}]
    assert await outbox.pending() == 0


@given(st.integers(min_value=1, max_value=200))
def test_retry_delays_grow_and_stay_capped(attempts: int) -> None:
    delay = retry_delay(attempts, base_seconds=5, max_seconds=3600)
    assert 5 <= delay <= 3600
    assert retry_delay(attempts + 1, base_seconds=5, max_seconds=3600) >= delay
