"""`GET /v1/feed/issues`: the issues `GET /v1/issues` lists for the same filters, in one streamed answer of
one compact JSON object a line (NDJSON), for services that read a whole county's month at once (scoring's
automatic deductions, satisfaction and benchmarks): a handful of columns, no presenter, no pages.

The statement is built in the request (a region outside the caller's subtree is a 404 before anything
streams); the rows are read afterwards in batches, in a transaction of their own, as the 台账 export does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from sqlalchemy import Select
from sqlmodel import col

from services.issues.cases import service as cases
from services.issues.cases.models import Issue
from services.issues.cases.routes import FiltersDep
from services.issues.deps import SessionDep, StateDep
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


def feed_line(row: Any) -> str:
    return (
        json.dumps(
            {
                "code": row.code,
                "category": row.category,
                "severity": row.severity,
                "status": row.status,
                "source": row.source,
                "region": row.region_code,
                "region_path": row.region_path,
                "reported_at": row.reported_at.isoformat(),
                "closed_at": None if row.closed_at is None else row.closed_at.isoformat(),
                "satisfaction": row.satisfaction,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
    )


async def feed_chunks(database: Database, statement: FeedSelect) -> AsyncIterator[bytes]:
    """The rows as NDJSON, a thousand lines a chunk, read in a transaction of their own."""
    async with database.transaction() as session:
        result = await session.stream(statement.execution_options(yield_per=BATCH))
        async for rows in result.partitions(BATCH):
            yield "".join(feed_line(row) for row in rows).encode()


@router.get(
    "/v1/feed/issues",
    summary="Every issue the list shows, as one NDJSON stream (for services)",
    description="Exactly the issues `GET /v1/issues` lists for the same filters (the caller's subtree; a "
    "citizen: its own reports; `region` outside it: 404 `region_not_found`), oldest first, one JSON object a "
    "line with `code`, `category`, `severity`, `status`, `source`, `region` (where it was found: a village "
    "or a grid), `region_path`, `reported_at`, `closed_at` and `satisfaction` (the reporter's 1–5 or null). "
    "No pages: a county's month in one answer, streamed (the scoring service reads its rounds' issues here).",
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
    session: SessionDep, caller: FeedReaderDep, state: StateDep, filters: FiltersDep
) -> StreamingResponse:
    statement = feed_statement(await cases.filtered(session, caller, filters))
    return StreamingResponse(feed_chunks(state.database, statement), media_type=NDJSON)
