"""Staff accounts: `/v1/users`, limited to users homed in the caller's region subtree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from services.issues.deps import SessionDep, SettingsDep
from services.issues.users import service
from services.issues.users.schemas import UserCreate, UserPublic, UserUpdate
from services.kit.auth import Caller, CallerDep, current_caller, require_scope
from services.kit.errors import problem_docs
from services.kit.fields import TRUE_FALSE, OptionalQueryBool
from services.kit.identity import Role, Scope
from services.kit.pagination import Page, PageDep

router = APIRouter(tags=["users"], dependencies=[Depends(current_caller)])

UsersReaderDep = Annotated[Caller, Depends(require_scope(Scope.users_read))]
UsersWriterDep = Annotated[Caller, Depends(require_scope(Scope.users_write))]
UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The user's id.", examples=[12])]


@router.get(
    "/v1/users/me",
    response_model=UserPublic,
    summary="The caller's own account",
    description="For tokens whose subject is a user (`user:<id>`); API clients get 404 `user_not_found`.",
)
async def read_me(caller: CallerDep, session: SessionDep) -> UserPublic:
    user, region = await service.get_own_account(session, caller)
    return service.public(user, region.code)


@router.post(
    "/v1/users",
    status_code=201,
    response_model=UserPublic,
    summary="Create a user",
    description="The home region must lie in the caller's subtree (else 404 `region_not_found`) and the "
    "role may be no higher than the caller's (else 403 `role_not_grantable`). A taken username is 409 "
    "`username_taken`. The answer's `Location` names the new user.",
    responses=problem_docs(403, 409),
)
async def create_user(
    body: UserCreate, caller: UsersWriterDep, session: SessionDep, settings: SettingsDep, response: Response
) -> UserPublic:
    user, region = await service.create_user(session, settings, caller, body)
    response.headers["Location"] = f"/v1/users/{user.id}"
    return service.public(user, region.code)


@router.get(
    "/v1/users",
    response_model=Page[UserPublic],
    summary="List users",
    description="Users homed in the caller's subtree, ordered by id. `region_code` narrows to that region's "
    "subtree; `q` matches part of the username or display name.",
    responses=problem_docs(403),
)
async def list_users(
    caller: UsersReaderDep,
    session: SessionDep,
    page: PageDep,
    role: Annotated[Role | None, Query(description="Only users with this role.")] = None,
    region_code: Annotated[
        str | None, Query(max_length=32, description="Only users homed in this region's subtree.")
    ] = None,
    disabled: Annotated[
        OptionalQueryBool,
        Query(description="`true`: only disabled users; `false`: only enabled ones. " + TRUE_FALSE),
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Part of the username or display name.")
    ] = None,
) -> Page[UserPublic]:
    return await service.list_users(
        session, caller, page, role=role, region_code=region_code, disabled=disabled, q=q
    )


@router.get(
    "/v1/users/{user_id:int}",
    response_model=UserPublic,
    summary="Read a user",
    description="404 `user_not_found` when the user does not exist or is homed outside the caller's subtree.",
    responses=problem_docs(403),
)
async def read_user(user_id: UserId, caller: UsersReaderDep, session: SessionDep) -> UserPublic:
    user, region = await service.get_user(session, caller, user_id)
    return service.public(user, region.code)


@router.patch(
    "/v1/users/{user_id:int}",
    response_model=UserPublic,
    summary="Change a user",
    description="Change the display name, phone, role, home region or password, or disable the account. "
    "A change of role, region, password or a disable revokes the tokens the user holds. "
    "The caller may not change a user ranked above itself (403 `user_outranks_caller`), grant a role above "
    "its own (403 `role_not_grantable`), change its own role (403 `own_role`) or disable itself "
    "(403 `own_account`).",
    responses=problem_docs(403),
)
async def update_user(
    user_id: UserId, body: UserUpdate, caller: UsersWriterDep, session: SessionDep, settings: SettingsDep
) -> UserPublic:
    user, region = await service.update_user(session, settings, caller, user_id, body)
    return service.public(user, region.code)


@router.post(
    "/v1/users/{user_id:int}/disable",
    response_model=UserPublic,
    summary="Disable a user",
    description="A disabled user can no longer sign in, and the tokens it holds stop working: at once on "
    "this service, within `REVOCATION_CACHE_SECONDS` (20 s by default) on the others. Idempotent.",
    responses=problem_docs(403),
)
async def disable_user(
    user_id: UserId, caller: UsersWriterDep, session: SessionDep, settings: SettingsDep
) -> UserPublic:
    user, region = await service.update_user(session, settings, caller, user_id, UserUpdate(disabled=True))
    return service.public(user, region.code)


@router.post(
    "/v1/users/{user_id:int}/enable",
    response_model=UserPublic,
    summary="Enable a user",
    description="The user may sign in again. Idempotent.",
    responses=problem_docs(403),
)
async def enable_user(
    user_id: UserId, caller: UsersWriterDep, session: SessionDep, settings: SettingsDep
) -> UserPublic:
    user, region = await service.update_user(session, settings, caller, user_id, UserUpdate(disabled=False))
    return service.public(user, region.code)
