"""Rubric operations: everyone with `scoring:read` reads them (they are county-wide, like categories);
the county office (admin) creates versions and changes a version no round has used yet."""

from __future__ import annotations

from typing import cast

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from services.kit.auth import Caller
from services.kit.db import savepoint, utcnow
from services.kit.errors import Conflict, FieldError, Forbidden, NotFound, UnprocessableEntity
from services.kit.identity import Role
from services.kit.pagination import Page, PageParams, paginate
from services.scoring.rubrics.models import RubricVersion, rubric_body, rubric_of
from services.scoring.rubrics.rules import rubric_problems
from services.scoring.rubrics.schemas import RubricBody, RubricPublic

_ID = cast("ColumnElement[int]", col(RubricVersion.id))


class InvalidRubric(UnprocessableEntity):
    code = "invalid_rubric"


class RubricFrozen(Conflict):
    code = "rubric_frozen"


def rubric_public(row: RubricVersion) -> RubricPublic:
    assert row.id is not None
    return RubricPublic.of(
        rubric_of(row),
        id=row.id,
        frozen_at=row.frozen_at,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def ensure_admin(caller: Caller) -> None:
    """Rubrics are the county office's (整治办): only the admin role writes them."""
    if caller.role is not Role.admin:
        raise Forbidden("only the county office (admin) writes rubrics", code="rubric_admin_only")


async def get_rubric(session: AsyncSession, rubric_id: int) -> RubricVersion:
    row = await session.get(RubricVersion, rubric_id)
    if row is None:
        raise NotFound(f"rubric {rubric_id} not found", code="rubric_not_found")
    return row


async def list_rubrics(
    session: AsyncSession, page: PageParams, *, code: str | None, latest: bool
) -> Page[RubricPublic]:
    statement = select(RubricVersion)
    if code is not None:
        statement = statement.where(col(RubricVersion.code) == code)
    if latest:
        family = aliased(RubricVersion)
        newest = (
            select(func.max(col(family.version)))
            .where(col(family.code) == col(RubricVersion.code))
            .scalar_subquery()
        )
        statement = statement.where(col(RubricVersion.version) == newest)
    return await paginate(session, statement, [_ID], page, rubric_public, lambda r: [r.id])


def _checked(body: RubricBody, version: int) -> dict[str, object]:
    rubric = body.rubric(version)
    problems = rubric_problems(rubric)
    if problems:
        raise InvalidRubric(
            "the rubric cannot be used: " + "; ".join(problems),
            errors=[FieldError(field="body", message=problem, type="invalid_rubric") for problem in problems],
        )
    return rubric_body(rubric)


async def create_rubric(session: AsyncSession, caller: Caller, body: RubricBody) -> RubricVersion:
    """Version 1 of a new family, or the next version of an existing one (the way to change a rubric a
    round has used)."""
    newest = (
        await session.execute(
            select(func.max(col(RubricVersion.version))).where(col(RubricVersion.code) == body.code)
        )
    ).scalar_one_or_none()
    version = (newest or 0) + 1
    row = RubricVersion(
        code=body.code,
        version=version,
        name=body.name,
        body=_checked(body, version),
        created_by=str(caller.subject),
    )
    session.add(row)
    try:
        async with savepoint(session, RubricVersion):
            await session.flush()
    except IntegrityError as exc:  # two new versions of one family at once: the other one won
        raise Conflict(
            f"another version of rubric {body.code} was created at the same time; retry",
            code="rubric_version_taken",
        ) from exc
    return row


async def change_rubric(session: AsyncSession, rubric_id: int, body: RubricBody) -> RubricVersion:
    """Replace a version no round has used yet, in place; a frozen one answers 409 `rubric_frozen` whatever
    the body says (it cannot change, so what would be wrong with the change does not matter)."""
    row = await get_rubric(session, rubric_id)
    if row.frozen_at is not None:
        raise _frozen(row)
    if body.code != row.code:
        raise UnprocessableEntity(
            "a version keeps its family's code; create a rubric to start another family",
            code="rubric_code_fixed",
        )
    checked = _checked(body, row.version)
    # Only while not frozen: a round that freezes it at the same moment wins, and this answers 409.
    changed = await session.execute(
        update(RubricVersion)
        .where(col(RubricVersion.id) == rubric_id, col(RubricVersion.frozen_at).is_(None))
        .values(name=body.name, body=checked)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise _frozen(row)
    await session.refresh(row)
    return row


def _frozen(row: RubricVersion) -> RubricFrozen:
    return RubricFrozen(
        f"rubric {row.code} version {row.version} has been used by a round and is frozen; "
        "POST /v1/rubrics with the same code makes its next version"
    )


async def freeze(session: AsyncSession, row: RubricVersion) -> None:
    """Mark a version as used (a round now scores by it): it never changes again."""
    if row.frozen_at is None:
        await session.execute(
            update(RubricVersion)
            .where(col(RubricVersion.id) == row.id, col(RubricVersion.frozen_at).is_(None))
            .values(frozen_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await session.refresh(row)
