"""Category operations: read and list (everyone in the county), create and change (the county office alone)."""

from __future__ import annotations

from collections import Counter
from typing import cast

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.categories.models import Category
from services.issues.categories.rules import valid_code
from services.issues.categories.schemas import (
    CategoryCreate,
    CategoryField,
    CategoryPublic,
    CategoryUpdate,
    DeadlineDays,
)
from services.kit.auth import Caller
from services.kit.db import utcnow
from services.kit.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.kit.identity import Role
from services.kit.pagination import Page, PageParams, paginate
from services.kit.recent import Recent

# The page key: codes are unique.
_CODE = cast("ColumnElement[str]", col(Category.code))


def category_public(category: Category) -> CategoryPublic:
    return CategoryPublic(
        code=category.code,
        name=category.name,
        group=category.group,
        deadline_days=DeadlineDays(
            minor=category.deadline_minor_days,
            normal=category.deadline_normal_days,
            serious=category.deadline_serious_days,
        ),
        fields=[CategoryField.model_validate(field) for field in category.fields],
        active=category.active,
        created_at=category.created_at,
        updated_at=category.updated_at,
    )


def _not_found(code: str) -> NotFound:
    return NotFound(f"category {code} not found", code="category_not_found")


def _taken(code: str) -> Conflict:
    return Conflict(f"category code {code} is already taken", code="category_code_taken")


def ensure_admin(caller: Caller) -> None:
    """The taxonomy is the county office's (整治办): only the admin role creates or changes categories."""
    if caller.role is not Role.admin:
        raise Forbidden("only the county office (admin) changes categories", code="category_admin_only")


async def find_category(session: AsyncSession, code: str) -> Category | None:
    """The category with exactly this code, active or not; None when there is none."""
    if not valid_code(code):
        return None
    found: Category | None = (
        await session.execute(select(Category).where(col(Category.code) == code))
    ).scalar_one_or_none()
    return found


async def get_category(session: AsyncSession, code: str) -> Category:
    """The category with this code (categories are county-wide: every caller sees every one); else 404."""
    category = await find_category(session, code)
    if category is None:
        raise _not_found(code)
    return category


async def active_category(
    session: AsyncSession, code: str, recent: Recent[str, Category | None] | None = None
) -> Category:
    """The category a new issue names: it must exist (422 `unknown_category`) and be active (422
    `category_inactive`). Unlike `get_category`, an unknown code here is a bad body, not a missing resource.
    With `recent`, as read a moment ago (a copy, outside any session: not to be changed)."""

    async def read() -> Category | None:
        found = await find_category(session, code)
        return None if found is None else Category(**found.model_dump())

    category = await (recent.get(code, read) if recent is not None else find_category(session, code))
    if category is None:
        raise UnprocessableEntity(f"there is no category {code}", code="unknown_category")
    if not category.active:
        raise UnprocessableEntity(
            f"category {code} is retired and takes no new issues", code="category_inactive"
        )
    return category


async def list_categories(
    session: AsyncSession, page: PageParams, *, group: str | None = None, active: bool | None = None
) -> Page[CategoryPublic]:
    statement = select(Category)
    if group is not None:
        statement = statement.where(col(Category.group) == group)
    if active is not None:
        statement = statement.where(col(Category.active) == active)
    return await paginate(session, statement, [_CODE], page, category_public, lambda c: [c.code])


async def _code_taken(session: AsyncSession, code: str) -> bool:
    found = await session.execute(
        select(col(Category.id)).where(func.lower(col(Category.code)) == code.lower())
    )
    return found.first() is not None


def _keys_unique(fields: list[CategoryField]) -> None:
    counts = Counter(field.key for field in fields)
    repeated = sorted(key for key, count in counts.items() if count > 1)
    if repeated:
        raise UnprocessableEntity(
            "extra field keys must differ: "
            + ", ".join(repr(key) for key in repeated)
            + " appear more than once",
            code="field_key_repeated",
        )


async def create_category(session: AsyncSession, caller: Caller, data: CategoryCreate) -> Category:
    ensure_admin(caller)
    _keys_unique(data.fields)
    if await _code_taken(session, data.code):
        raise _taken(data.code)
    now = utcnow()
    category = Category(
        code=data.code,
        name=data.name,
        group=data.group,
        deadline_minor_days=data.deadline_days.minor,
        deadline_normal_days=data.deadline_days.normal,
        deadline_serious_days=data.deadline_days.serious,
        fields=[field.spec().as_json() for field in data.fields],
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    session.add(category)
    try:
        await session.flush()
    except IntegrityError as exc:  # another request took the code between the check and the insert
        raise _taken(data.code) from exc
    return category


async def update_category(session: AsyncSession, caller: Caller, code: str, data: CategoryUpdate) -> Category:
    """Change what the body names; `deadline_days` and `fields` are replaced whole. The code stays."""
    ensure_admin(caller)
    category = await get_category(session, code)
    changed = False
    if data.name is not None and data.name != category.name:
        category.name, changed = data.name, True
    if data.group is not None and data.group != category.group:
        category.group, changed = data.group, True
    if data.deadline_days is not None:
        days = (data.deadline_days.minor, data.deadline_days.normal, data.deadline_days.serious)
        stored = (category.deadline_minor_days, category.deadline_normal_days, category.deadline_serious_days)
        if days != stored:
            (
                category.deadline_minor_days,
                category.deadline_normal_days,
                category.deadline_serious_days,
            ) = days
            changed = True
    if data.fields is not None:
        _keys_unique(data.fields)
        fields = [field.spec().as_json() for field in data.fields]
        if fields != category.fields:
            category.fields, changed = fields, True
    if data.active is not None and data.active != category.active:
        category.active, changed = data.active, True
    if changed:
        category.updated_at = utcnow()
        session.add(category)
        await session.flush()
    return category
