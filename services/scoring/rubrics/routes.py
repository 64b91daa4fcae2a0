"""Rubric routes: read by everyone with `scoring:read`, written by the county office."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.kit.auth import Caller, require_scope
from services.kit.errors import problem_doc, problem_docs
from services.kit.fields import TRUE_FALSE, QueryBool
from services.kit.identity import Scope
from services.kit.pagination import Page, PageDep
from services.scoring.deps import SessionDep
from services.scoring.rubrics import service
from services.scoring.rubrics.rules import CODE_PATTERN
from services.scoring.rubrics.schemas import RubricBody, RubricPublic

router = APIRouter(tags=["rubrics"])

RubricsReaderDep = Annotated[Caller, Depends(require_scope(Scope.scoring_read))]


async def _county_office(caller: Annotated[Caller, Depends(require_scope(Scope.scoring_write))]) -> Caller:
    service.ensure_admin(caller)
    return caller


RubricsAdminDep = Annotated[Caller, Depends(_county_office)]
RubricId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The rubric version's id.")]

_COUNTY_WIDE = "Rubrics are county-wide: every caller with `scoring:read` reads every rubric."
_ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: problem_doc(
        "Forbidden: only the county office (role `admin`, with `scoring:write`) writes rubrics "
        "(`rubric_admin_only`; a token without the scope: `insufficient_scope`)",
        "rubric_admin_only",
        403,
    )
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: problem_doc("No rubric version has this id (`rubric_not_found`)", "rubric_not_found", 404)
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: problem_doc(
        "The rubric cannot be used (`invalid_rubric`: every problem in `errors`), or a field is malformed",
        "invalid_rubric",
        422,
    )
}


@router.get(
    "/v1/rubrics",
    response_model=Page[RubricPublic],
    summary="List rubric versions",
    description="Oldest first; filter by family `code`, or `latest=true` for each family's newest version. "
    + _COUNTY_WIDE,
    responses=problem_docs(403),
)
async def list_rubrics(
    session: SessionDep,
    caller: RubricsReaderDep,
    page: PageDep,
    code: Annotated[str | None, Query(pattern=CODE_PATTERN, description="Only this rubric family.")] = None,
    latest: Annotated[
        QueryBool, Query(description="Only each family's newest version. " + TRUE_FALSE)
    ] = False,
) -> Page[RubricPublic]:
    return await service.list_rubrics(session, page, code=code, latest=latest)


@router.get(
    "/v1/rubrics/{rubric_id}",
    response_model=RubricPublic,
    summary="A rubric version",
    description=_COUNTY_WIDE,
    responses={**problem_docs(403), **_NOT_FOUND},
)
async def read_rubric(rubric_id: RubricId, session: SessionDep, caller: RubricsReaderDep) -> RubricPublic:
    return service.rubric_public(await service.get_rubric(session, rubric_id))


@router.post(
    "/v1/rubrics",
    response_model=RubricPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a rubric, or the next version of one",
    description="A new `code` starts a family at version 1; an existing `code` makes that family's next "
    "version (the way to change a rubric rounds have used: they keep the version they were scored by). "
    "Checked as a whole: weights add up to 100 %, every deduction names an indicator and fits within its "
    "automatic cap (422 `invalid_rubric`, every problem listed; nothing stored). County office only.",
    responses={**_ADMIN_ONLY, **_INVALID, **problem_docs(409)},
)
async def create_rubric(
    body: RubricBody, session: SessionDep, caller: RubricsAdminDep, response: Response
) -> RubricPublic:
    row = await service.create_rubric(session, caller, body)
    response.headers["Location"] = f"/v1/rubrics/{row.id}"
    return service.rubric_public(row)


@router.put(
    "/v1/rubrics/{rubric_id}",
    response_model=RubricPublic,
    summary="Change a rubric version no round has used yet",
    description="Replaces the version in place while it is not frozen. A version a round has used is frozen: "
    "409 `rubric_frozen` (nothing changed); POST /v1/rubrics with the same code makes the next version. "
    "The code stays (422 `rubric_code_fixed`). County office only.\n\n"
    "Checked in this order: a body that is not a rubric's shape at all (422 `validation_failed`, before "
    "anything is looked up, as on every route); the version exists (404 `rubric_not_found`); it is not "
    "frozen (409 `rubric_frozen`, whatever the body says: a frozen version cannot change, so the body's "
    "problems are not reported); then the code (422 `rubric_code_fixed`) and the rubric as a whole (422 "
    "`invalid_rubric`).",
    responses={
        **_ADMIN_ONLY,
        **_NOT_FOUND,
        **_INVALID,
        409: problem_doc("The version has been used by a round and is frozen", "rubric_frozen", 409),
    },
)
async def change_rubric(
    rubric_id: RubricId, body: RubricBody, session: SessionDep, caller: RubricsAdminDep
) -> RubricPublic:
    return service.rubric_public(await service.change_rubric(session, rubric_id, body))
