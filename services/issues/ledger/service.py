"""The 整改台账 (every issue the list would show) and a region's 负面清单 (its open problems), row by row.

The statement is built in the request (so a region outside the caller's subtree is a 404 before anything
streams); the rows are read afterwards in batches, in a transaction of their own, and written straight to
the spreadsheet, so a county's year never sits in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from services.issues.cases import service as cases
from services.issues.cases.models import Issue
from services.issues.cases.rules import OPEN_STATUSES, Status
from services.issues.categories.models import Category
from services.issues.ledger.schemas import STATUS_NAMES
from services.issues.regions.models import Level, Region
from services.issues.stats.rules import SHANGHAI, days_between
from services.kit.auth import Caller
from services.kit.db import Database
from services.kit.exports import Cell

BATCH = 500


def photo_links(media_url: str, photo_ids: Sequence[str]) -> str | None:
    """The photos' display links in the media service, one a line (None when there are none)."""
    base = media_url.rstrip("/")
    links = [f"{base}/v1/photos/{photo_id}/content?variant=display" for photo_id in photo_ids]
    return "\n".join(links) or None


def _local(moment: datetime | None) -> datetime | None:
    """Beijing time to the second: what the office reads (the .xlsx cell keeps the wall time)."""
    return None if moment is None else moment.astimezone(SHANGHAI).replace(microsecond=0)


# A statement of the ledger's columns (their number and types are `_named`'s).
LedgerSelect = Select[*tuple[Any, ...]]


def _named(statement: Select[Any]) -> LedgerSelect:
    """The columns a row shows, with the category's name, the village's name and the responsible unit's
    name (plain columns, not issue objects: a county's year streams several times faster)."""
    place = aliased(Region, name="place")
    place_parent = aliased(Region, name="place_parent")
    unit = aliased(Region, name="unit")
    village = case((col(place.level) == Level.grid.value, col(place_parent.name)), else_=col(place.name))
    return (
        statement.with_only_columns(
            col(Issue.code),
            col(Issue.category),
            col(Issue.status),
            col(Issue.region_code),
            col(Issue.address),
            col(Issue.description),
            col(Issue.reported_at),
            col(Issue.deadline),
            col(Issue.responsible_region_code),
            col(Issue.closed_at),
            col(Issue.rework_count),
            col(Issue.before_photo_ids),
            col(Issue.after_photo_ids),
            col(Category.name).label("category_name"),
            village.label("village_name"),
            col(unit.name).label("unit_name"),
            maintain_column_froms=True,
        )
        .outerjoin(Category, col(Category.code) == col(Issue.category))
        .outerjoin(place, col(place.code) == col(Issue.region_code))
        .outerjoin(place_parent, col(place_parent.id) == col(place.parent_id))
        .outerjoin(unit, col(unit.code) == col(Issue.responsible_region_code))
    )


async def ledger_statement(
    session: AsyncSession, caller: Caller, filters: cases.IssueFilters
) -> LedgerSelect:
    """Every issue `GET /v1/issues` would list with these filters, oldest first (404 for a region outside)."""
    statement = await cases.filtered(session, caller, filters)
    return _named(statement).order_by(col(Issue.id))


async def negative_list_statement(session: AsyncSession, caller: Caller, region: Region) -> LedgerSelect:
    """The open problems under a region the caller may see, village by village, oldest first."""
    filters = cases.IssueFilters(region=region.code, status=sorted(OPEN_STATUSES))
    statement = await cases.filtered(session, caller, filters)
    return _named(statement).order_by(col(Issue.region_path), col(Issue.id))


def ledger_row(row: Any, media_url: str) -> tuple[Cell, ...]:
    """One issue as the sheet shows it (`row` holds the columns `_named` selects)."""
    closed = row.closed_at is not None and row.status == Status.closed
    return (
        row.code,
        row.category_name or row.category,
        row.village_name or row.region_code,
        row.address,
        row.description,
        _local(row.reported_at),
        _local(row.deadline),
        row.unit_name or row.responsible_region_code,
        STATUS_NAMES.get(Status(row.status), row.status),
        _local(row.closed_at),
        round(days_between(row.reported_at, row.closed_at), 1) if closed else None,
        row.rework_count,
        photo_links(media_url, row.before_photo_ids),
        photo_links(media_url, row.after_photo_ids),
    )


async def ledger_rows(
    database: Database, statement: LedgerSelect, media_url: str
) -> AsyncIterator[tuple[Cell, ...]]:
    """The statement's rows as sheet rows, read in batches in a transaction of their own (the answer
    streams after the request's transaction has ended)."""
    async with database.transaction() as session:
        result = await session.stream(statement.execution_options(yield_per=BATCH))
        async for row in result:
            yield ledger_row(row, media_url)
