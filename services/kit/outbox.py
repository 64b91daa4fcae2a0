"""A transactional outbox: effects that must not be lost are written in the request's own transaction.

`Outbox.enqueue` adds a row beside the request's other changes, so the effect exists exactly when the
change does. Once the transaction has committed, the outbox tries to carry it out straight away; a row
whose effect fails (the store is down, a peer answers 503) stays and is retried with growing delays by
`run_due`, which the service calls periodically. Effects run at least once: handlers must be idempotent.
Several replicas may share one database: a row is claimed by moving its `due_at` forward before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.db import Database, UTCDateTime, after_commit, utcnow

logger = logging.getLogger("huanzhi.outbox")

Handler = Callable[[dict[str, Any]], Awaitable[None]]


def outbox_table(metadata: MetaData) -> Table:
    """The table each service keeps its pending effects in (its own database, its own migration)."""
    return Table(
        "outbox",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("kind", String(64), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("due_at", UTCDateTime(), nullable=False, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", String(500), nullable=True),
    )


def retry_delay(attempts: int, *, base_seconds: float = 5.0, max_seconds: float = 3600.0) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling from `base`, capped at `max`."""
    return float(min(max_seconds, base_seconds * 2 ** max(0, min(attempts - 1, 20))))


class Outbox:
    def __init__(
        self,
        database: Database,
        table: Table,
        handlers: Mapping[str, Handler],
        *,
        lease_seconds: float = 300.0,
        retry_base_seconds: float = 5.0,
        retry_max_seconds: float = 3600.0,
    ) -> None:
        self.database = database
        self.table = table
        self.handlers = dict(handlers)
        self.lease = timedelta(seconds=lease_seconds)
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds

    async def enqueue(
        self, session: AsyncSession, kind: str, payload: dict[str, Any], *, delay_seconds: float = 0.0
    ) -> int:
        """Record `kind(payload)` in the session's transaction; it runs after the commit (or later)."""
        self.check_kind(kind)
        now = utcnow()
        row_id = (
            await session.execute(
                insert(self.table)
                .values(
                    kind=kind,
                    payload=payload,
                    created_at=now,
                    due_at=now + timedelta(seconds=delay_seconds),
                    attempts=0,
                )
                .returning(self.table.c.id)
            )
        ).scalar_one()
        if delay_seconds <= 0:
            self.deliver_after_commit(session, int(row_id))
        return int(row_id)

    def check_kind(self, kind: str) -> None:
        """A kind this outbox has a handler for, or `ValueError` (for rows a caller writes itself, inside a
        statement of its own: then `deliver_after_commit` with the new row's id)."""
        if kind not in self.handlers:
            raise ValueError(f"no outbox handler for {kind!r}")

    def deliver_after_commit(self, session: AsyncSession, row_id: int) -> None:
        async def deliver_now() -> None:
            await self.deliver(row_id)

        after_commit(session, deliver_now)

    async def deliver(self, row_id: int) -> bool:
        """Carry out one pending effect if it is due and nobody else holds it; True when it is done."""
        t = self.table
        now = utcnow()
        async with self.database.transaction() as session:
            claimed = await session.execute(
                update(t).where(t.c.id == row_id, t.c.due_at <= now).values(due_at=now + self.lease)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return False
            row = (
                await session.execute(select(t.c.kind, t.c.payload, t.c.attempts).where(t.c.id == row_id))
            ).one()
        try:
            await self.handlers[row.kind](dict(row.payload))
        except Exception as exc:
            attempts = row.attempts + 1
            delay = retry_delay(attempts, base_seconds=self.retry_base, max_seconds=self.retry_max)
            logger.warning(
                "outbox %s #%d failed (attempt %d), retrying in %.0f s: %r",
                row.kind,
                row_id,
                attempts,
                delay,
                exc,
            )
            async with self.database.transaction() as session:
                await session.execute(
                    update(t)
                    .where(t.c.id == row_id)
                    .values(
                        attempts=attempts,
                        due_at=utcnow() + timedelta(seconds=delay),
                        last_error=f"{type(exc).__name__}: {exc}"[:500],
                    )
                )
            return False
        async with self.database.transaction() as session:
            await session.execute(delete(t).where(t.c.id == row_id))
        return True

    async def run_due(self, limit: int = 100) -> int:
        """Carry out up to `limit` due effects, oldest first; returns how many are done."""
        t = self.table
        async with self.database.transaction() as session:
            due = (
                await session.execute(
                    select(t.c.id).where(t.c.due_at <= utcnow()).order_by(t.c.due_at).limit(limit)
                )
            ).scalars()
            row_ids = list(due)
        done = 0
        for row_id in row_ids:
            done += await self.deliver(row_id)
        return done

    async def pending(self) -> int:
        """How many effects are waiting (a gauge for metrics and tests)."""
        async with self.database.transaction() as session:
            return int((await session.execute(select(func.count()).select_from(self.table))).scalar_one())

    @asynccontextmanager
    async def retrying(self, interval_seconds: float) -> AsyncIterator[None]:
        """Retry due effects every `interval_seconds` in the background while the block runs (a service's
        lifespan), stopping the loop when it ends."""
        task = asyncio.create_task(self.run_forever(interval_seconds))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_forever(self, interval_seconds: float) -> None:
        """Retry due effects every `interval_seconds` until cancelled."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.run_due()
            except Exception:
                logger.warning("running the outbox failed", exc_info=True)
