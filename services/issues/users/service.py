"""Staff accounts within the caller's region subtree: create, read, list, change, disable."""

from __future__ import annotations

import asyncio

from sqlalchemy import Select, func, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.auth import revocations
from services.issues.auth.passwords import hash_secret
from services.issues.auth.rules import may_grant_role
from services.issues.regions.models import Region
from services.issues.settings import IssuesSettings
from services.issues.users.models import User
from services.issues.users.schemas import UserCreate, UserPublic, UserUpdate
from services.kit.auth import Caller, in_subtree
from services.kit.db import utcnow
from services.kit.errors import Conflict, Forbidden, NotFound
from services.kit.identity import RANK, Role, Subject
from services.kit.pagination import Page, PageParams, paginate


async def region_in_scope(session: AsyncSession, caller: Caller, code: str) -> Region:
    """The region with `code`, provided it lies in the caller's subtree; otherwise 404."""
    region = (
        await session.execute(
            select(Region).where(col(Region.code) == code, in_subtree(col(Region.path), caller))
        )
    ).scalar()
    if region is None:
        raise NotFound(f"region {code} not found", code="region_not_found")
    return region


def public(user: User, region_code: str) -> UserPublic:
    assert user.id is not None
    return UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        phone=user.phone,
        role=user.role,
        region_code=region_code,
        disabled=user.disabled,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def _rank(role: str) -> int:
    try:
        return RANK[Role(role)]
    except ValueError:
        return 0


async def _hash(password: str, settings: IssuesSettings) -> str:
    # Argon2 costs tens of milliseconds of CPU: keep it off the event loop.
    return await asyncio.to_thread(hash_secret, password, settings)


async def _username_taken(session: AsyncSession, username: str) -> bool:
    # Case-insensitive, so "Officer" cannot pass for "officer".
    found = await session.execute(
        select(col(User.id)).where(func.lower(col(User.username)) == username.lower()).limit(1)
    )
    return found.first() is not None


async def create_user(
    session: AsyncSession, settings: IssuesSettings, caller: Caller, body: UserCreate
) -> tuple[User, Region]:
    region = await region_in_scope(session, caller, body.region_code)
    if not may_grant_role(caller.role, body.role):
        raise Forbidden(f"a {caller.role} may not create a {body.role.value}", code="role_not_grantable")
    if await _username_taken(session, body.username):
        raise Conflict(f"username {body.username} is taken", code="username_taken")
    assert region.id is not None
    now = utcnow()
    user = User(
        username=body.username,
        display_name=body.display_name,
        phone=body.phone,
        role=body.role,
        region_id=region.id,
        password_hash=await _hash(body.password, settings),
        created_by=str(caller.subject),
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request took the name first
        raise Conflict(f"username {body.username} is taken", code="username_taken") from exc
    return user, region


def _visible(caller: Caller) -> Select[User, Region]:
    """Users whose home region lies in the caller's subtree, with that region."""
    return (
        select(User, Region)
        .join(Region, col(User.region_id) == col(Region.id))
        .where(in_subtree(col(Region.path), caller))
    )


async def get_user(session: AsyncSession, caller: Caller, user_id: int) -> tuple[User, Region]:
    row = (await session.execute(_visible(caller).where(col(User.id) == user_id))).first()
    if row is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    return row[0], row[1]


async def get_own_account(session: AsyncSession, caller: Caller) -> tuple[User, Region]:
    """The account behind a `user:<id>` token, wherever its home region now is."""
    user_id = caller.user_id
    row = (
        (
            await session.execute(
                select(User, Region)
                .join(Region, col(User.region_id) == col(Region.id))
                .where(col(User.id) == user_id)
            )
        ).first()
        if user_id is not None
        else None
    )
    if row is None:
        raise NotFound("the token's subject is not a user account", code="user_not_found")
    return row[0], row[1]


async def list_users(
    session: AsyncSession,
    caller: Caller,
    page: PageParams,
    *,
    role: Role | None = None,
    region_code: str | None = None,
    disabled: bool | None = None,
    q: str | None = None,
) -> Page[UserPublic]:
    """A page of visible users ordered by id; `region_code` narrows to that region's subtree."""
    statement = select(User).join(Region, col(User.region_id) == col(Region.id))
    statement = statement.where(in_subtree(col(Region.path), caller))
    if region_code is not None:
        within = await region_in_scope(session, caller, region_code)
        statement = statement.where(col(Region.path).startswith(within.path, autoescape=True))
    if role is not None:
        statement = statement.where(col(User.role) == role.value)
    if disabled is not None:
        statement = statement.where(col(User.disabled) == disabled)
    if q:
        needle = q.lower()
        statement = statement.where(
            or_(
                func.lower(col(User.username)).contains(needle, autoescape=True),
                func.lower(col(User.display_name)).contains(needle, autoescape=True),
            )
        )
    users = await paginate(
        session, statement, [inspect(User).columns["id"]], page, lambda u: u, lambda u: [u.id]
    )
    codes = await region_codes(session, {u.region_id for u in users.items})
    return Page(
        items=[public(u, codes[u.region_id]) for u in users.items],
        next_cursor=users.next_cursor,
        limit=users.limit,
    )


async def region_codes(session: AsyncSession, region_ids: set[int]) -> dict[int, str]:
    """Region id → code, for shaping a page of rows that carry region ids."""
    if not region_ids:
        return {}
    rows = (
        await session.execute(select(col(Region.id), col(Region.code)).where(col(Region.id).in_(region_ids)))
    ).all()
    return {rid: code for rid, code in rows if rid is not None}


async def update_user(
    session: AsyncSession, settings: IssuesSettings, caller: Caller, user_id: int, body: UserUpdate
) -> tuple[User, Region]:
    """Apply the given changes, within the caller's rank and subtree; nobody demotes or disables itself."""
    user, region = await get_user(session, caller, user_id)
    changes = body.model_fields_set
    if not changes:
        return user, region
    if _rank(user.role) > _rank(caller.role):
        raise Forbidden(f"user {user_id} outranks the caller", code="user_outranks_caller")
    is_self = caller.user_id == user.id
    before = (user.role, user.disabled, user.region_id, user.display_name, user.phone)
    if body.role is not None and body.role != user.role:
        if is_self:
            raise Forbidden("nobody changes their own role", code="own_role")
        if not may_grant_role(caller.role, body.role):
            raise Forbidden(f"a {caller.role} may not grant {body.role.value}", code="role_not_grantable")
        user.role = body.role
    if body.disabled is not None and body.disabled != user.disabled:
        if is_self and body.disabled:
            raise Forbidden("nobody disables their own account", code="own_account")
        user.disabled = body.disabled
    if body.region_code is not None and body.region_code != region.code:
        region = await region_in_scope(session, caller, body.region_code)
        assert region.id is not None
        user.region_id = region.id
    if body.display_name is not None:
        user.display_name = body.display_name
    if "phone" in changes:
        user.phone = body.phone
    if body.password is not None:
        user.password_hash = await _hash(body.password, settings)
    after = (user.role, user.disabled, user.region_id, user.display_name, user.phone)
    if after[:3] != before[:3] or body.password is not None:
        # Disabled, demoted, moved or given a new password: the tokens it holds say otherwise, so they go.
        await revocations.revoke(session, Subject.user(user_id))
    # A repeated disable (or an unchanged value) leaves updated_at alone.
    if after != before or body.password is not None:
        user.updated_at = utcnow()
        await session.flush()
    return user, region
