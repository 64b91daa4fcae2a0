"""kit.db.DriverStatement: a Core statement sent by asyncpg itself gives what SQLAlchemy's `execute` gives,
joins a transaction when there is one, and does not leave a broken connection in the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, bindparam, event, insert, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.types import TypeDecorator

from services.kit.db import Database, DriverStatement, UTCDateTime
from tests.databases import _pg, scratch_postgres


class Tagged(TypeDecorator[str]):
    """Stored with a prefix that reading takes off: shows that both of a type's processors ran."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else "db:" + value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else value.removeprefix("db:")


metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Tagged, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("doc", JSON, nullable=True),
    Column("at", UTCDateTime, nullable=False),
)
# A constant written into the statement ("plain" becomes an anonymous parameter) beside named ones.
WRITE = (
    insert(notes)
    .values(name=bindparam("name"), kind="plain", doc=bindparam("doc", type_=JSON), at=bindparam("at"))
    .returning(notes.c.id, notes.c.name, notes.c.kind, notes.c.doc, notes.c.at)
)
READ = select(notes.c.name, notes.c.doc, notes.c.at).where(
    notes.c.name == bindparam("name"), notes.c.kind == "plain"
)
SHANGHAI = timezone(timedelta(hours=8))
VALUES = {
    "name": "东村",
    "doc": {"photos": ["a", "b"], "n": 2, "none": None},
    "at": datetime(2026, 3, 1, 9, tzinfo=SHANGHAI),
}


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _with_notes(database: Database) -> Database:
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return database


@asynccontextmanager
async def _postgres(have_postgres: bool) -> AsyncIterator[Database]:
    if not have_postgres:
        pytest.skip("PostgreSQL not reachable")
    async with scratch_postgres("hz_driver", clock=Clock()) as built:
        yield await _with_notes(built)


@pytest.fixture
async def pg_database(have_postgres: bool) -> AsyncIterator[Database]:
    async with _postgres(have_postgres) as built:
        yield built


@pytest.fixture(params=["postgres", "sqlite"])
async def database(
    request: pytest.FixtureRequest, have_postgres: bool, tmp_path: Path
) -> AsyncIterator[Database]:
    if request.param == "postgres":
        async with _postgres(have_postgres) as built:
            yield built
        return
    built = await _with_notes(Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}"))
    yield built
    await built.dispose()


def _cursor_statements(database: Database) -> list[str]:
    """The statements SQLAlchemy sends from now on (what the driver sends itself is not among them)."""
    seen: list[str] = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


async def test_the_driver_gives_what_execute_gives(database: Database) -> None:
    by_sqlalchemy = _cursor_statements(database)
    async with database.statements() as session:
        written = await DriverStatement(WRITE).one(session, VALUES)
        read = await DriverStatement(READ).first(session, {"name": "东村"})
        missing = await DriverStatement(READ).first(session, {"name": "西村"})
    postgres = database.engine.dialect.name == "postgresql"
    assert len(by_sqlalchemy) == (0 if postgres else 3)  # on PostgreSQL in autocommit asyncpg sent them
    at = datetime(2026, 3, 1, 1, tzinfo=UTC)
    assert written[1:] == ("东村", "plain", VALUES["doc"], at)
    assert written[4].tzinfo is not None and written[4].utcoffset() == timedelta(0)
    assert read == ("东村", VALUES["doc"], at)
    assert missing is None
    async with database.reading() as session:
        row = (await session.execute(READ, {"name": "东村"})).one()
        assert tuple(row) == read  # the same values SQLAlchemy reads
        assert (await session.execute(text("SELECT name FROM notes"))).scalar_one() == "db:东村"
        with pytest.raises(NoResultFound):
            await DriverStatement(READ).one(session, {"name": "西村"})


async def test_in_a_transaction_the_statement_joins_it(database: Database) -> None:
    by_sqlalchemy = _cursor_statements(database)
    seen = None
    with pytest.raises(RuntimeError):  # noqa: PT012 - the failing request is the block
        async with database.transaction() as session:
            await DriverStatement(WRITE).one(session, VALUES)
            seen = await DriverStatement(READ).first(session, {"name": "东村"})
            raise RuntimeError("the request failed")
    assert seen is not None
    assert len(by_sqlalchemy) >= 2  # sent by SQLAlchemy, inside the transaction it began
    async with database.reading() as session:
        assert await DriverStatement(READ).first(session, {"name": "东村"}) is None  # rolled back with it


async def test_an_expanding_parameter_is_refused(pg_database: Database) -> None:
    database = pg_database
    statement = DriverStatement(select(notes.c.id).where(notes.c.name.in_(["a", "b"])))
    async with database.reading() as session:
        with pytest.raises(ValueError, match="expanding"):
            await statement.first(session, {})


async def test_a_connection_the_driver_found_broken_is_not_given_out_again(pg_database: Database) -> None:
    """The server drops the connection while a request holds it (inside the ping window: nothing checks it
    on the next checkout): the statement fails, and the next request gets a new connection."""
    database = pg_database
    async with database.reading() as session:
        pid = int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await _pg(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(DBAPIError) as failed:
            await DriverStatement(READ).first(session, {"name": "东村"})
        assert failed.value.connection_invalidated
    async with database.reading() as session:
        assert int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()) != pid
        assert await DriverStatement(READ).first(session, {"name": "东村"}) is None
