"""Async database engine and one-transaction-per-request sessions (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
from pydantic_core import from_json
from sqlalchemy import ClauseElement, DateTime, Executable, MetaData, Table, event, false, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, NoResultFound
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_

logger = logging.getLogger("huanzhi.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_registry() -> registry:
    """A registry with its own MetaData, so each service's tables stay apart even in one process."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as UTC; always read back timezone-aware (SQLite forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A pooled connection used this recently is not checked again on checkout (HikariCP's `aliveBypassWindowMs`,
# 500 ms by default there too): under load every checkout would otherwise cost a round trip.
PING_AFTER_IDLE_SECONDS = 0.5
_CHECKED_IN = "huanzhi.checked_in"


class Database:
    """Owns the engine and session factory; built in the app's lifespan, disposed at shutdown."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # JSON columns decoded by pydantic-core (Rust): a page of 50 issues has 200 of them to read.
        kwargs: dict[str, Any] = {"echo": echo, "json_deserializer": from_json}
        asyncpg = url.startswith("postgresql+asyncpg")
        if url.startswith("sqlite"):
            # One writer at a time on SQLite: a bigger pool only adds lock waits.
            kwargs["connect_args"] = {"timeout": 15}
        else:
            # Up to 20 connections, each kept once opened: with an overflow above a smaller pool, every burst
            # past it closed its extra connections and the next opened them again, a connect per request
            # under steady load (bench.issues_lifecycle: 16 concurrent reports, 0.93-1.05x -> 1.19x the bare
            # ORM insert's throughput).
            kwargs.update(pool_size=20, max_overflow=0)
        if asyncpg:
            # No JIT compilation: the services' statements run in milliseconds, and the planner, which
            # cannot size a join on a path range, guesses them costly enough to spend longer compiling.
            kwargs["connect_args"] = {"server_settings": {"jit": "off"}}
        # asyncpg: `_Ping` instead, one round trip where SQLAlchemy's takes three, and only after idling.
        kwargs["pool_pre_ping"] = not asyncpg
        self.url = url
        ensure_sqlite_folder(url)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        if asyncpg:
            ping = _Ping(ping_after_idle, clock)
            event.listen(self.engine.sync_engine, "checkin", ping.checkin)
            event.listen(self.engine.sync_engine, "checkout", ping.checkout)
        self.sessionmaker = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # Same pool, each statement on its own: no BEGIN and COMMIT round trips (set on the client side).
        self._reader = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            class_=AsyncSession,
            expire_on_commit=False,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed when the block ends, rolled back if it raises.

        Effects registered with `after_commit` run once the commit has succeeded, never after a rollback.
        """
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
            await _run_after_commit(session)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for work that only reads, each statement committed on its own (autocommit).

        Two round trips fewer than `transaction()` (BEGIN and COMMIT). Under READ COMMITTED, PostgreSQL's
        default, each statement of a transaction sees a snapshot of its own anyway, so a read reads the same
        either way; what writes, or must read one snapshot across statements, uses `transaction()`.
        """
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncSession]:
        """A session for work whose writes are each one statement: on PostgreSQL each statement commits as
        it runs (autocommit: no BEGIN and COMMIT round trips), so a write that must be atomic is written as
        one statement (data-modifying CTEs); on SQLite, where such a write takes several statements, one
        transaction. Effects registered with `after_commit` run when the block ends without an error.
        """
        if self.engine.dialect.name != "postgresql":
            async with self.transaction() as session:
                yield session
            return
        async with self._reader() as session:
            yield session
        await _run_after_commit(session)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


class _Ping:
    """A pooled asyncpg connection idle for `after_idle` seconds or more is alive before a request uses it,
    or the pool is renewed.

    SQLAlchemy's own pre-ping for asyncpg wraps its query in BEGIN and ROLLBACK (for PgBouncer's transaction
    mode, which this service does not sit behind): three round trips on every checkout, a quarter of a
    small request's. This sends one query by the simple protocol, and only for a connection that has been
    idle: one returned a moment ago by a request that used it is alive but for a server that went away in
    that moment, and then the request fails once (503) and its connection is replaced. A connection that
    fails the ping is discarded with every pooled connection older than it (a server restart drops them
    all) and the checkout retried.
    """

    def __init__(self, after_idle: float, clock: Callable[[], float]) -> None:
        self.after_idle, self.clock = after_idle, clock

    def checkin(self, dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = self.clock()

    def checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if self.clock() - record.info.get(_CHECKED_IN, -math.inf) < self.after_idle:
            return
        try:
            await_(dbapi_connection.driver_connection.execute("SELECT 1"))
        except Exception as exc:
            raise InvalidatePoolError(f"connection lost: {exc!r}") from exc


class DriverStatement:
    """A Core statement for PostgreSQL, compiled once and sent by asyncpg itself on the session's connection.

    SQLAlchemy's `execute` of a statement from its compiled cache still looks it up, builds and processes
    each parameter in an execution context, hops through a greenlet and wraps the row: ~0.2 ms a statement
    on this machine (a report's two were a quarter of its CPU). For a route's hottest statements `first()` sends the
    compiled text (with SQLAlchemy's casts) and the parameters in its order, each through its type's bind
    processor, and reads the row back through the columns' result processors: the same values `execute`
    gives. On a connection in a transaction (the idempotency middleware's session) it uses `execute`, so
    that the statement joins the transaction SQLAlchemy begins; on SQLite too. The statement may not hold
    expanding (`IN`-list) parameters; a connection the driver finds broken is invalidated.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: tuple[Dialect, str, list[tuple[str, Any, Any]], list[Any]] | None = None

    def _for(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any, Any]], list[Any]]:
        if self._compiled is None or self._compiled[0] is not dialect:
            compiled: Any = cast(ClauseElement, self.statement).compile(dialect=dialect)
            if compiled.post_compile_params:
                raise ValueError("a DriverStatement cannot hold expanding or literal-execute parameters")
            binds = []  # name, bind processor, the value written into the statement (None if required)
            for name in compiled.positiontup:
                bind = compiled.binds[name]
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                binds.append((name, process, None if bind.required else bind.effective_value))
            columns = getattr(self.statement, "exported_columns", ())
            results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
            self._compiled = (dialect, compiled.string, binds, results)
        return self._compiled[1:]

    async def first(self, session: AsyncSession, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The statement's first row (None if it returns none)."""
        connection = await session.connection()
        dialect = connection.dialect
        raw = await connection.get_raw_connection()
        driver, dbapi = raw.driver_connection, raw.dbapi_connection
        if (
            dialect.driver != "asyncpg"
            or driver is None
            or dbapi is None
            or not dialect.detect_autocommit_setting(dbapi)
        ):
            row = (await connection.execute(self.statement, dict(params))).first()
            return None if row is None else tuple(row)
        sql, binds, results = self._for(dialect)
        values = ((params.get(n, fixed), process) for n, process, fixed in binds)
        args = [v if process is None else process(v) for v, process in values]
        try:
            found = await driver.fetchrow(sql, *args)
        except Exception as exc:
            if isinstance(exc, asyncpg.PostgresError | asyncpg.DataError) and not driver.is_closed():
                raise  # refused by the server, or a value the driver could not encode: the connection is fine
            # Lost, or left in a state the driver cannot go on from: never given out again. As SQLAlchemy
            # reports a connection it invalidated (503 `database_unavailable` at the API).
            await connection.invalidate(exc)
            raise DBAPIError(sql, None, exc, connection_invalidated=True) from exc
        if found is None:
            return None
        return tuple(v if process is None else process(v) for v, process in zip(found, results, strict=True))

    async def one(self, session: AsyncSession, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The statement's one row (it must return one)."""
        row = await self.first(session, params)
        if row is None:
            raise NoResultFound("the statement returned no row")
        return row


Effect = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "huanzhi.after_commit"


@asynccontextmanager
async def savepoint(session: AsyncSession, table: Any) -> AsyncIterator[None]:
    """`session.begin_nested()` that stays inside the request's transaction on SQLite too.

    Python's sqlite3 begins a transaction only before a write: a SAVEPOINT after reads alone would itself be
    the transaction, and its RELEASE would commit what the savepoint wrote while the rest of the request
    could still fail. A write that changes nothing (to `table`, one of the service's tables) begins the real
    transaction first; it takes SQLite's write lock, which the savepoint's own write takes anyway.
    """
    with session.sync_session.no_autoflush:  # what is pending belongs inside the savepoint
        await hold_write_lock(session, table)
    async with session.begin_nested():
        yield


async def hold_write_lock(session: AsyncSession, table: Any) -> None:
    """SQLite: begin the real transaction now, with a write that changes nothing (to `table`, one of the
    service's tables), so that it holds the database's write lock from here on; nothing elsewhere."""
    if session.get_bind().dialect.name == "sqlite":
        target: Table = getattr(table, "__table__", table)
        key = next(iter(target.primary_key.columns))
        await session.execute(update(target).where(false()).values({key.name: key}))


def after_commit(session: AsyncSession, effect: Effect) -> None:
    """Run `effect` once the session's transaction has committed (a failed commit runs nothing).

    For effects that may be lost if the process dies right after the commit (a cache nudge, a prompt
    delivery attempt); what must happen at least once goes through an outbox (`services.kit.outbox`).
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(effect)


async def _run_after_commit(session: AsyncSession) -> None:
    effects: list[Effect] = session.info.pop(_AFTER_COMMIT, [])
    for effect in effects:
        try:
            await effect()
        except Exception:
            # The transaction stands; an effect that must not be lost is in an outbox and is retried.
            logger.warning("an after-commit effect failed", exc_info=True)


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite file URL, so a fresh data folder just works."""
    if url.startswith("sqlite") and ":///" in url and ":memory:" not in url:
        Path(url.split(":///", 1)[1].split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()
