"""Region routes: the tree as the caller's token lets it see it (its own subtree, nothing else)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.datastructures import UploadFile

from services.issues.deps import SessionDep, StateDep
from services.issues.regions import service
from services.issues.regions.models import Level
from services.issues.regions.rules import CODE_PATTERN
from services.issues.regions.schemas import RegionCreate, RegionImportReport, RegionPublic, RegionUpdate
from services.kit.auth import Caller, require_scope
from services.kit.errors import BadRequest, UnsupportedMediaType, problem_docs
from services.kit.exports import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    ExportFormat,
    Sheet,
    attachment,
    csv_chunks,
    xlsx_chunks,
)
from services.kit.fields import TRUE_FALSE, QueryBool
from services.kit.identity import Scope
from services.kit.pagination import Page, PageDep

router = APIRouter(tags=["regions"])


class _RegionCodeConvertor(StringConvertor):
    """A region code in a path, but never `import`: `/v1/regions/import` is the importer (POST) alone, as
    OpenAPI reads a concrete path before a templated one, so GET there is 405, not a region lookup."""

    regex = "(?!import(?:/|$))[^/]+"


register_url_convertor("region_code", _RegionCodeConvertor())

RegionsReaderDep = Annotated[Caller, Depends(require_scope(Scope.regions_read))]
RegionsWriterDep = Annotated[Caller, Depends(require_scope(Scope.regions_write))]
LevelFilter = Annotated[Level | None, Query(description="Only regions of this level.")]


@router.post(
    "/v1/regions",
    response_model=RegionPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a region",
    description="The parent must lie in the caller's subtree (otherwise 404 `region_not_found`), the level "
    "must sit strictly below the parent's (`level_does_not_nest`, 422) and the code must be new "
    "(`region_code_taken`, 409). Only a caller over the whole tree may create a root "
    "(`cannot_create_root`, 403).",
    responses=problem_docs(403, 409),
)
async def create_region(
    body: RegionCreate, session: SessionDep, caller: RegionsWriterDep, response: Response
) -> RegionPublic:
    region = await service.create_region(session, caller, body)
    response.headers["Location"] = f"/v1/regions/{region.code}"
    return service.region_public(region)


@router.get(
    "/v1/regions",
    response_model=Page[RegionPublic],
    summary="List regions in the caller's subtree",
    responses=problem_docs(403),
    description="Ordered by code; filter by `level`, `parent_code` (direct children of it; a parent outside "
    "the caller's subtree answers 404 `region_not_found`) and `q` (a piece of the name).",
)
async def list_regions(
    session: SessionDep,
    caller: RegionsReaderDep,
    page: PageDep,
    level: LevelFilter = None,
    parent_code: Annotated[
        str | None, Query(pattern=CODE_PATTERN, description="Direct children of this region.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=100, pattern=r"^[^\x00]*$", description="Part of the name, e.g. `庄`.")
    ] = None,
) -> Page[RegionPublic]:
    return await service.list_regions(session, caller, page, level=level, parent_code=parent_code, q=q)


_IMPORT_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A UTF-8 CSV file (a BOM is fine) whose first line is the header "
        "`code,name,level,parent_code`; a parent is a region in the caller's subtree or a row earlier in the "
        "file. At most 20,000 rows. An empty file has no header (400 `bad_csv_header`); a file with the "
        "header and no rows is a valid import of nothing.",
        "content": {
            "text/csv": {
                "schema": {"type": "string", "minLength": 1},
                "example": "code,name,level,parent_code\n370282103204,北庄村,village,370282103\n"
                "370282103204-W01,北庄村第一网格,grid,370282103204\n",
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/v1/regions/import",
    response_model=RegionImportReport,
    summary="Import regions from a CSV file",
    description="Every row is checked and reported. By default the file is all-or-nothing: one refused row "
    "stores nothing and answers 422 `import_rejected` with the report in `rows`. `partial=true` stores the "
    "good rows; `dry_run=true` stores nothing and only reports. A file that is not UTF-8 answers 400 "
    "`invalid_encoding`, one that is not CSV 400 `malformed_csv`, one whose first line is not the header "
    "(an empty file too) 400 `bad_csv_header`, more than 20,000 rows 413 `too_many_rows`. A file with the "
    "header and no data rows answers 200 with an empty report (`valid`, `created` and `refused` 0, `rows` "
    "empty) and stores nothing.",
    openapi_extra=_IMPORT_BODY_DOC,
    responses=problem_docs(403, 409, 415),
)
async def import_regions(
    request: Request,
    session: SessionDep,
    caller: RegionsWriterDep,
    partial: Annotated[
        QueryBool, Query(description="`true`: store the good rows even if some are refused. " + TRUE_FALSE)
    ] = False,
    dry_run: Annotated[
        QueryBool, Query(description="`true`: check and report, store nothing. " + TRUE_FALSE)
    ] = False,
) -> RegionImportReport:
    data = await _import_file(request)
    return await service.import_regions(session, caller, data, partial=partial, dry_run=dry_run)


async def _import_file(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv", "text/plain"):
        return await request.body()
    if content_type == "multipart/form-data":
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadRequest("send the CSV file in a form field named `file`", code="missing_file")
            return await upload.read()
    raise UnsupportedMediaType("send the file as text/csv or multipart/form-data (field `file`)")


@router.get(
    "/v1/regions/{code:region_code}",
    response_model=RegionPublic,
    summary="Get a region",
    responses=problem_docs(403),
    description="404 `region_not_found` when the region does not exist or lies outside the caller's subtree.",
)
async def get_region(code: str, session: SessionDep, caller: RegionsReaderDep) -> RegionPublic:
    return service.region_public(await service.get_visible(session, caller, code))


@router.patch(
    "/v1/regions/{code:region_code}",
    response_model=RegionPublic,
    summary="Rename, re-level or move a region",
    description="A move takes the whole subtree along (every path is rewritten in the same transaction). "
    "The new parent must lie in the caller's subtree and outside the region (`move_into_own_subtree`, 422); "
    "levels must still nest (`level_does_not_nest`, 422); a caller may not move its own home region "
    "(`cannot_move_home_region`, 403).",
    responses=problem_docs(403),
)
async def update_region(
    code: str, body: RegionUpdate, session: SessionDep, caller: RegionsWriterDep
) -> RegionPublic:
    return service.region_public(await service.update_region(session, caller, code, body))


@router.get(
    "/v1/regions/{code:region_code}/children",
    response_model=Page[RegionPublic],
    summary="Direct children of a region",
    responses=problem_docs(403),
    description="Ordered by code.",
)
async def list_children(
    code: str, session: SessionDep, caller: RegionsReaderDep, page: PageDep
) -> Page[RegionPublic]:
    return await service.list_children(session, caller, code, page)


@router.get(
    "/v1/regions/{code:region_code}/subtree",
    response_model=Page[RegionPublic],
    summary="Every region below a region",
    responses=problem_docs(403),
    description="Ordered by path, so each region comes before its own children; the region itself is left out.",
)
async def list_subtree(
    code: str, session: SessionDep, caller: RegionsReaderDep, page: PageDep, level: LevelFilter = None
) -> Page[RegionPublic]:
    return await service.list_subtree(session, caller, code, page, level=level)


@router.get(
    "/v1/exports/regions",
    summary="Export the region tree as a spreadsheet (.xlsx or CSV)",
    description="The caller's subtree, or the subtree of `region` within it, in path order (each region "
    "before its children), with Chinese headers. Names are written as text: one that starts like a "
    "formula (`=`, `+`, `-`, `@`) never runs in Excel or WPS.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The spreadsheet",
            "content": {
                XLSX_MEDIA_TYPE: {},
                "text/csv": {"example": "\ufeff区划代码,名称,层级,上级代码,路径,创建时间\r\n"},
            },
        },
        **problem_docs(403),
    },
)
async def export_regions(
    session: SessionDep,
    caller: RegionsReaderDep,
    state: StateDep,
    format: Annotated[ExportFormat, Query(description="`xlsx` (default) or `csv`.")] = ExportFormat.xlsx,
    region: Annotated[
        str | None,
        Query(pattern=CODE_PATTERN, description="Only this region's subtree (default: the caller's)."),
    ] = None,
    level: LevelFilter = None,
) -> StreamingResponse:
    root_path = (await service.get_visible(session, caller, region)).path if region else caller.region_path
    sheet = Sheet(
        "行政区划", service.EXPORT_HEADERS, service.export_rows(state.database, root_path, level=level)
    )
    name = f"行政区划-{region or caller.region}"
    if format is ExportFormat.csv:
        return StreamingResponse(
            csv_chunks(sheet), media_type=CSV_MEDIA_TYPE, headers=attachment(f"{name}.csv")
        )
    return StreamingResponse(
        xlsx_chunks([sheet], state.settings.data_dir / "tmp"),
        media_type=XLSX_MEDIA_TYPE,
        headers=attachment(f"{name}.xlsx"),
    )
