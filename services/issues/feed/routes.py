"""`GET /v1/feed/issues`: the issues `GET /v1/issues` lists for the same filters, in one streamed answer of
one compact JSON object a line (NDJSON), for services that read a whole county's month at once (scoring's
automatic deductions, satisfaction and benchmarks): a handful of columns, no presenter, no pages.

The statement is built in the request (a region outside the caller's subtree is a 404 before anything
streams); the rows are read afterwards in batches, in a transaction of their own, as the 台账 export does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Select
from sqlmodel import col

from services.issues.cases import service as cases
from services.issues.cases.models import Issue
from services.issues.cases.routes import FiltersDep
from services.issues.deps import SessionDep, StateDep
from services.issues.feed.rectification import FIELDS, Lines, region_figures
from services.issues.stats.routes import StatsReaderDep, WindowDep
from services.issues.stats.rules import GroupBy
from services.kit.auth import Caller, require_scope
from services.kit.db import Database
from services.kit.errors import problem_docs
from services.kit.identity import Scope

router = APIRouter(tags=["issues"])

FeedReaderDep = Annotated[Caller, Depends(require_scope(Scope.issues_read))]
NDJSON = "application/x-ndjson"
BATCH = 1000

EXAMPLE_LINE = {
    "code": "370282-2026-001104",
    "category": "luan-dui-fang",
    "severity": "normal",
    "status": "closed",
    "source": "inspection",
    "region": "370282103201-W01",
    "region_path": "/37/3702/370282/370282103/370282103-GQ01/370282103201/370282103201-W01/",
    "reported_at": "2026-11-03T01:12:00+00:00",
    "closed_at": "2026-11-06T07:40:00+00:00",
    "satisfaction": 5,
}


# A statement of the feed's columns (their number and types are `feed_statement`'s).
FeedSelect = Select[*tuple[Any, ...]]


def feed_statement(statement: Select[Any]) -> FeedSelect:
    """The feed's columns of the filtered issues, oldest first."""
    return statement.with_only_columns(
        col(Issue.code),
        col(Issue.category),
        col(Issue.severity),
        col(Issue.status),
        col(Issue.source),
        col(Issue.region_code),
        col(Issue.region_path),
        col(Issue.reported_at),
        col(Issue.closed_at),
        col(Issue.satisfaction),
        maintain_column_froms=True,
    ).order_by(col(Issue.id))


# A line's fields, in its order, and how each is read off a row.
ISSUE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "code": lambda row: row.code,
    "category": lambda row: row.category,
    "severity": lambda row: row.severity,
    "status": lambda row: row.status,
    "source": lambda row: row.source,
    "region": lambda row: row.region_code,
    "region_path": lambda row: row.region_path,
    "reported_at": lambda row: row.reported_at.isoformat(),
    "closed_at": lambda row: None if row.closed_at is None else row.closed_at.isoformat(),
    "satisfaction": lambda row: row.satisfaction,
}
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def some_fields_line(row: Any, fields: Sequence[str]) -> str:
    return _encode({name: ISSUE_FIELDS[name](row) for name in fields}) + "\n"


async def feed_chunks(
    database: Database, statement: FeedSelect, fields: Sequence[str] | None = None
) -> AsyncIterator[bytes]:
    """The rows as NDJSON (all their fields, or `fields`), a thousand lines a chunk, read in a transaction
    of their own."""
    chosen = tuple(ISSUE_FIELDS) if fields is None else fields
    async with database.transaction() as session:
        result = await session.stream(statement.execution_options(yield_per=BATCH))
        async for rows in result.partitions(BATCH):
            yield "".join(some_fields_line(row, chosen) for row in rows).encode()


IssueField = StrEnum("IssueField", {name: name for name in ISSUE_FIELDS})  # type: ignore[misc]
FigureField = StrEnum("FigureField", {name: name for name in FIELDS})  # type: ignore[misc]


def chosen_fields(values: Sequence[StrEnum] | None, known: Sequence[str]) -> tuple[str, ...] | None:
    """The fields a `fields` query asks for, in the line's order; None (all of them) when it names none."""
    asked = {value.value for value in values or ()}
    return tuple(name for name in known if name in asked) or None


@router.get(
    "/v1/feed/issues",
    summary="Every issue the list shows, as one NDJSON stream (for services)",
    description="Exactly the issues `GET /v1/issues` lists for the same filters (the caller's subtree; a "
    "citizen: its own reports; `region` outside it: 404 `region_not_found`), oldest first, one JSON object a "
    "line with `code`, `category`, `severity`, `status`, `source`, `region` (where it was found: a village "
    "or a grid), `region_path`, `reported_at`, `closed_at` and `satisfaction` (the reporter's 1–5 or null). "
    "`fields` keeps only some of them. No pages: a county's month in one answer, streamed (the scoring service reads its rounds' issues here).",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One JSON object a line (NDJSON), oldest first; empty when nothing matches",
            "content": {NDJSON: {"example": json.dumps(EXAMPLE_LINE, ensure_ascii=False) + "\n"}},
        },
        **problem_docs(403),
    },
)
async def issue_feed(
    session: SessionDep,
    caller: FeedReaderDep,
    state: StateDep,
    filters: FiltersDep,
    fields: Annotated[
        list[IssueField] | None,
        Query(description="Only these fields of each line (repeat it), in the line's order. Default: all."),
    ] = None,
) -> StreamingResponse:
    chosen = chosen_fields(fields, list(ISSUE_FIELDS))
    statement = feed_statement(await cases.filtered(session, caller, filters))
    return StreamingResponse(feed_chunks(state.database, statement, chosen), media_type=NDJSON)


FIGURES_EXAMPLE = {
    "key": "370282103201",
    "name": "大桥村",
    "found": 12,
    "fixed": 10,
    "rejected": 1,
    "open": 2,
    "overdue": 1,
    "closed_on_time": 9,
    "reworked": 1,
    "extended": 0,
    "rectification_rate": 0.8333333333333334,
    "on_time_rate": 0.9,
    "rework_rate": 0.1,
    "extension_rate": 0.0,
    "mean_days_to_close": 3.25,
    "median_days_to_close": 2.9,
}


@router.get(
    "/v1/feed/rectification",
    summary="Every region's rectification figures, as one NDJSON stream (for services)",
    description="The rows `GET /v1/stats/rectification?group_by=child` gives for the same `region`, `from`, "
    "`to` and `depth` or `level` (same defaults, same definitions, same refusals: a region outside the "
    "caller's subtree 404 `region_not_found`, a citizen 403 `role_not_allowed`, `from` not before `to` 422 "
    "`empty_window`, `depth` with `level` 422 `grouping_option_not_allowed`), all of them in one answer "
    "instead of cursor pages: one JSON object a line with the row's `key`, `name` and figures, in path "
    "order, regions without issues included; `fields` keeps only some of them (`key` always comes). No "
    "`total` line (the statistics' first page has it). A "
    "province's villages in one call (the scoring service reads its publications' figures here).",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One statistics row a line (NDJSON), in path order",
            "content": {NDJSON: {"example": json.dumps(FIGURES_EXAMPLE, ensure_ascii=False) + "\n"}},
        },
        **problem_docs(403),
    },
)
async def rectification_feed(
    session: SessionDep,
    caller: StatsReaderDep,
    window: WindowDep,
    fields: Annotated[
        list[FigureField] | None,
        Query(description="Only these of a row's fields after `key` (repeat it). Default: all of them."),
    ] = None,
) -> StreamingResponse:
    chosen = chosen_fields(fields, FIELDS) or FIELDS
    query = window.query(GroupBy.child)
    rows = await region_figures(session, caller, query)
    return StreamingResponse(Lines(chosen).chunks(rows, BATCH), media_type=NDJSON)
