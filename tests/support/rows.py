"""What a service stored: row counts and rows, read straight from its database."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select

from services.kit.db import Database

RowT = TypeVar("RowT")


async def count_rows(database: Database, model: Any, *where: Any) -> int:
    """Rows of `model` (a table or model class) now in the database, optionally only those matching."""
    async with database.sessionmaker() as session:
        statement = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(statement)).scalar_one())


async def stored(database: Database, model: type[RowT], *where: Any) -> RowT | None:
    """The one row of `model` matching `where`, or None (more than one is a test error)."""
    async with database.sessionmaker() as session:
        found: RowT | None = (await session.execute(select(model).where(*where))).scalar_one_or_none()
        return found


async def stored_all(database: Database, model: type[RowT], *where: Any, order_by: Any = None) -> list[RowT]:
    async with database.sessionmaker() as session:
        statement = select(model).where(*where)
        if order_by is not None:
            statement = statement.order_by(order_by)
        return list((await session.execute(statement)).scalars())
