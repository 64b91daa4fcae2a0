"""台账 routes: the 整改台账 of the issues a list shows, and a region's 负面清单, as .xlsx or CSV.

Mounted before the lifecycle's routes: `/v1/issues/export` would otherwise be read as an issue id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from services.issues.cases.routes import FiltersDep
from services.issues.deps import IssuesState, SessionDep, StateDep
from services.issues.ledger import service
from services.issues.ledger.schemas import CSV_EXAMPLE, LEDGER_HEADERS, LEDGER_TITLE, NEGATIVE_LIST_TITLE
from services.issues.regions.service import get_visible as visible_region
from services.issues.stats.rules import SHANGHAI
from services.kit.auth import Caller, require_scope
from services.kit.db import utcnow
from services.kit.errors import problem_docs
from services.kit.exports import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    ExportFormat,
    Sheet,
    attachment,
    csv_chunks,
    xlsx_chunks,
)
from services.kit.identity import Scope

router = APIRouter(tags=["issues"])

LedgerReaderDep = Annotated[Caller, Depends(require_scope(Scope.issues_read))]
FormatQuery = Annotated[ExportFormat, Query(description="`xlsx` (default) or `csv`.")]

COLUMNS = (
    "Columns, one row an issue: 编号 (code), 问题类别 (category name), 所在村 (the village; a grid's village), "
    "具体位置, 问题描述, 发现时间, 整改时限, 责任单位 (the responsible region's name), 状态 (待立案, 整改中, "
    "待验收, 已销号, 不予立案), 销号时间, 用时（天） (closed_at − reported_at, one decimal), 退回次数, "
    "整改前照片 and 整改后照片 (the media service's display links, one a line). Times are Beijing time. "
    "Reporters' text that starts like a formula (`=`, `+`, `-`, `@`, tab, line break) stays text: a "
    "quote-prefixed string cell in .xlsx, behind `'` in CSV. Streamed: the rows are read in batches."
)

_SPREADSHEET: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The spreadsheet, as an attachment with a Chinese file name",
        "content": {XLSX_MEDIA_TYPE: {}, "text/csv": {"example": CSV_EXAMPLE}},
    },
    **problem_docs(403),
}


def _today() -> str:
    return utcnow().astimezone(SHANGHAI).strftime("%Y%m%d")


def _spreadsheet(state: IssuesState, sheet: Sheet, format: ExportFormat, name: str) -> StreamingResponse:
    if format is ExportFormat.csv:
        return StreamingResponse(
            csv_chunks(sheet), media_type=CSV_MEDIA_TYPE, headers=attachment(f"{name}.csv")
        )
    return StreamingResponse(
        xlsx_chunks([sheet], state.settings.data_dir / "tmp"),
        media_type=XLSX_MEDIA_TYPE,
        headers=attachment(f"{name}.xlsx"),
    )


@router.get(
    "/v1/issues/export",
    summary="整改台账: the issues as a spreadsheet (.xlsx or CSV)",
    description="Exactly the issues `GET /v1/issues` lists for the same filters (the caller's subtree; a "
    "citizen: its own reports; `region` outside it: 404 `region_not_found`), oldest first. " + COLUMNS,
    response_class=StreamingResponse,
    responses=_SPREADSHEET,
)
async def export_ledger(
    session: SessionDep,
    caller: LedgerReaderDep,
    state: StateDep,
    filters: FiltersDep,
    format: FormatQuery = ExportFormat.xlsx,
) -> StreamingResponse:
    statement = await service.ledger_statement(session, caller, filters)
    sheet = Sheet(
        LEDGER_TITLE, LEDGER_HEADERS, service.ledger_rows(state.database, statement, state.settings.media_url)
    )
    return _spreadsheet(state, sheet, format, f"{LEDGER_TITLE}-{filters.region or caller.region}-{_today()}")


@router.get(
    "/v1/regions/{code}/negative-list",
    summary="负面清单: a region's open problems as a spreadsheet (.xlsx or CSV)",
    description="The problems not yet closed or rejected (待立案, 整改中, 待验收) in the region's subtree — a "
    "village's, a town's, any region's in the caller's subtree (otherwise 404 `region_not_found`) — that "
    "the caller may see, village by village, oldest first. " + COLUMNS,
    response_class=StreamingResponse,
    responses=_SPREADSHEET,
)
async def export_negative_list(
    code: Annotated[str, Path(max_length=32, description="The region's code.")],
    session: SessionDep,
    caller: LedgerReaderDep,
    state: StateDep,
    format: FormatQuery = ExportFormat.xlsx,
) -> StreamingResponse:
    region = await visible_region(session, caller, code)
    statement = await service.negative_list_statement(session, caller, region)
    sheet = Sheet(
        NEGATIVE_LIST_TITLE,
        LEDGER_HEADERS,
        service.ledger_rows(state.database, statement, state.settings.media_url),
    )
    return _spreadsheet(state, sheet, format, f"{NEGATIVE_LIST_TITLE}-{region.name}-{_today()}")
