"""Category routes: the county's taxonomy, read by everyone in the county, changed by the county office."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from services.issues.categories import service
from services.issues.categories.schemas import CategoryCreate, CategoryPublic, CategoryUpdate
from services.issues.deps import SessionDep, StateDep
from services.kit.auth import Caller, require_scope
from services.kit.errors import problem_doc, problem_docs
from services.kit.fields import TRUE_FALSE, OptionalQueryBool
from services.kit.identity import Scope
from services.kit.pagination import Page, PageDep

router = APIRouter(tags=["categories"])

CategoriesReaderDep = Annotated[Caller, Depends(require_scope(Scope.issues_read))]


async def _county_office(caller: Annotated[Caller, Depends(require_scope(Scope.issues_write))]) -> Caller:
    service.ensure_admin(caller)
    return caller


CategoriesAdminDep = Annotated[Caller, Depends(_county_office)]

_COUNTY_WIDE = (
    "Categories are county-wide, not region-scoped: every caller with `issues:read` sees every category, "
    "whatever its home region."
)
_ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: problem_doc(
        "Forbidden: only the county office (role `admin`, with `issues:write`) changes categories "
        "(`category_admin_only`; a token without the scope: `insufficient_scope`)",
        "category_admin_only",
        403,
    )
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: problem_doc("No category has this code (`category_not_found`)", "category_not_found", 404)
}


@router.get(
    "/v1/categories",
    response_model=Page[CategoryPublic],
    summary="List categories",
    description="Ordered by code; filter by `group` (e.g. `六乱`) and `active`. " + _COUNTY_WIDE,
    responses=problem_docs(403),
)
async def list_categories(
    session: SessionDep,
    caller: CategoriesReaderDep,
    page: PageDep,
    group: Annotated[
        str | None,
        Query(
            min_length=1, max_length=20, pattern=r"^[^\x00]*$", description="Only this group, e.g. `六乱`."
        ),
    ] = None,
    active: Annotated[
        OptionalQueryBool,
        Query(
            description="`true`: only categories new issues may use; `false`: only retired ones. "
            + TRUE_FALSE
        ),
    ] = None,
) -> Page[CategoryPublic]:
    return await service.list_categories(session, page, group=group, active=active)


@router.post(
    "/v1/categories",
    response_model=CategoryPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a category",
    description="The county office (整治办) alone: role `admin` with `issues:write`, otherwise 403 "
    "`category_admin_only`. The code must be new whatever its case (409 `category_code_taken`); the extra "
    "fields' keys must differ (422 `field_key_repeated`). " + _COUNTY_WIDE,
    responses={**_ADMIN_ONLY, **problem_docs(409)},
)
async def create_category(
    body: CategoryCreate, session: SessionDep, caller: CategoriesAdminDep, state: StateDep, response: Response
) -> CategoryPublic:
    category = await service.create_category(session, caller, body)
    state.recent_categories.clear_after_commit(session)
    response.headers["Location"] = f"/v1/categories/{category.code}"
    return service.category_public(category)


@router.get(
    "/v1/categories/{code}",
    response_model=CategoryPublic,
    summary="Get a category",
    description="Retired categories (`active: false`) stay readable. 404 `category_not_found` for an unknown "
    "code. " + _COUNTY_WIDE,
    responses={**problem_docs(403), **_NOT_FOUND},
)
async def get_category(code: str, session: SessionDep, caller: CategoriesReaderDep) -> CategoryPublic:
    return service.category_public(await service.get_category(session, code))


@router.patch(
    "/v1/categories/{code}",
    response_model=CategoryPublic,
    summary="Change a category",
    description="Rename, regroup, change the default deadlines or the extra fields, retire (`active: false`) "
    "or bring back. The county office alone (403 `category_admin_only`). Issues already reported keep "
    "their deadline and fields; the change applies to new issues. The extra fields' keys must differ (422 "
    "`field_key_repeated`).",
    responses={**_ADMIN_ONLY, **_NOT_FOUND},
)
async def update_category(
    code: str, body: CategoryUpdate, session: SessionDep, caller: CategoriesAdminDep, state: StateDep
) -> CategoryPublic:
    category = await service.update_category(session, caller, code, body)
    state.recent_categories.clear_after_commit(session)
    return service.category_public(category)
