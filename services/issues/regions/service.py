"""Region operations, each limited to the caller's subtree: read, list, create, change, move, import."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, String, bindparam, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.regions.models import Level, Region
from services.issues.regions.rules import ImportLine, KnownRegion, level_fits, plan_import, valid_code
from services.issues.regions.schemas import (
    ImportStatus,
    RegionCreate,
    RegionImportReport,
    RegionImportRow,
    RegionPublic,
    RegionUpdate,
)
from services.kit.auth import Caller, in_subtree
from services.kit.db import Database, utcnow
from services.kit.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnprocessableEntity,
)
from services.kit.exports import Cell
from services.kit.identity import child_path, is_within, parent_code_of, tree_depth
from services.kit.pagination import Page, PageParams, paginate

MAX_IMPORT_ROWS = 20_000
IMPORT_HEADER = ("code", "name", "level", "parent_code")
# Keeps each IN (...) well under the bind-parameter limits of SQLite and asyncpg.
_LOOKUP_CHUNK = 5_000
# Page keys: the unique columns a keyset page orders by.
_CODE = cast("ColumnElement[str]", col(Region.code))
_PATH = cast("ColumnElement[str]", col(Region.path))


def region_public(region: Region) -> RegionPublic:
    assert region.id is not None
    return RegionPublic(
        id=region.id,
        code=region.code,
        name=region.name,
        level=Level(region.level),
        parent_code=parent_code_of(region.path),
        path=region.path,
        depth=tree_depth(region.path),
        created_at=region.created_at,
        updated_at=region.updated_at,
    )


def _not_found(code: str) -> NotFound:
    return NotFound(f"region {code} not found", code="region_not_found")


def _taken(code: str) -> Conflict:
    return Conflict(f"region code {code} is already taken", code="region_code_taken")


def _may_create_roots(caller: Caller) -> bool:
    return caller.region_path == "/"


async def get_visible(session: AsyncSession, caller: Caller, code: str) -> Region:
    """The region with this code, if it lies in the caller's subtree; otherwise 404 as if it did not exist."""
    if not valid_code(code):
        raise _not_found(code)
    region = (
        await session.execute(
            select(Region).where(col(Region.code) == code, in_subtree(col(Region.path), caller))
        )
    ).scalar_one_or_none()
    if region is None:
        raise _not_found(code)
    return region


def county_above() -> Any:
    """SQL: the code of the county the region coded `:code` lies in (itself, if a county), read up the
    parent links (a few key lookups); NULL where the tree has no county above it (the caller then takes the
    root's code, `codes_in_path(path)[0]`)."""
    regions = Region.__table__  # type: ignore[attr-defined]
    start, parent = regions.alias("start"), regions.alias("parent")
    up = (
        select(start.c.id, start.c.parent_id, start.c.code, start.c.level)
        .where(start.c.code == bindparam("code"))
        .cte("up", recursive=True)
    )
    up = up.union_all(
        select(parent.c.id, parent.c.parent_id, parent.c.code, parent.c.level).where(
            parent.c.id == up.c.parent_id
        )
    )
    return select(up.c.code).where(up.c.level == Level.county.value).limit(1).scalar_subquery()


async def _code_taken(session: AsyncSession, code: str) -> bool:
    # Codes are unique across the whole tree, so this looks outside the caller's scope too.
    found = await session.execute(select(col(Region.id)).where(func.lower(col(Region.code)) == code.lower()))
    return found.first() is not None


async def create_region(session: AsyncSession, caller: Caller, data: RegionCreate) -> Region:
    """Store a new region under a parent in the caller's subtree (or as a root, for a caller over all)."""
    parent: Region | None = None
    if data.parent_code is None:
        if not _may_create_roots(caller):
            raise Forbidden(
                "only a caller over the whole tree may create a root region", code="cannot_create_root"
            )
    else:
        parent = await get_visible(session, caller, data.parent_code)
    parent_level = Level(parent.level) if parent else None
    if not level_fits(parent_level, data.level):
        under = f"a {parent_level}" if parent_level else "the top"
        raise UnprocessableEntity(f"a {data.level} may not sit under {under}", code="level_does_not_nest")
    if await _code_taken(session, data.code):
        raise _taken(data.code)
    now = utcnow()
    region = Region(
        code=data.code,
        name=data.name,
        level=data.level,
        parent_id=parent.id if parent else None,
        path=child_path(parent.path if parent else None, data.code),
        created_at=now,
        updated_at=now,
    )
    session.add(region)
    try:
        await session.flush()
    except IntegrityError as exc:  # another request took the code between the check and the insert
        raise _taken(data.code) from exc
    return region


async def _child_levels(session: AsyncSession, region: Region) -> list[Level]:
    rows = await session.execute(
        select(col(Region.level)).where(col(Region.parent_id) == region.id).distinct()
    )
    return [Level(level) for level in rows.scalars()]


async def update_region(session: AsyncSession, caller: Caller, code: str, data: RegionUpdate) -> Region:
    """Rename, re-level or move a region; a move rewrites the path of the whole subtree in this transaction."""
    region = await get_visible(session, caller, code)
    fields = data.model_fields_set
    moving = "parent_code" in fields and data.parent_code != parent_code_of(region.path)
    new_level = data.level if data.level is not None else Level(region.level)
    relevel = new_level != region.level
    renamed = data.name is not None and data.name != region.name

    parent: Region | None
    if moving:
        if region.path == caller.region_path:
            raise Forbidden("a caller may not move its own home region", code="cannot_move_home_region")
        if data.parent_code is None:
            if not _may_create_roots(caller):
                raise Forbidden(
                    "only a caller over the whole tree may make a region a root", code="cannot_create_root"
                )
            parent = None
        else:
            parent = await get_visible(session, caller, data.parent_code)
            if is_within(parent.path, region.path):
                raise UnprocessableEntity(
                    f"region {code} cannot move under {parent.code}, which lies inside it",
                    code="move_into_own_subtree",
                )
    else:
        # The parent of the caller's home region lies outside its scope; reading it here reveals nothing.
        parent = await session.get(Region, region.parent_id) if region.parent_id is not None else None

    if moving or relevel:
        parent_level = Level(parent.level) if parent else None
        children = await _child_levels(session, region) if relevel else []
        if not level_fits(parent_level, new_level, children):
            raise UnprocessableEntity(
                f"a {new_level} does not fit between "
                f"{'a ' + parent_level if parent_level else 'the top'} and its children",
                code="level_does_not_nest",
            )

    if not (moving or relevel or renamed):
        return region
    now = utcnow()
    if moving:
        old_prefix = region.path
        new_prefix = child_path(parent.path if parent else None, region.code)
        # One statement rewrites the prefix of the region and every descendant.
        await session.execute(
            update(Region)
            .where(col(Region.path).startswith(old_prefix, autoescape=True))
            .values(
                path=literal(new_prefix, String)
                + func.substr(col(Region.path), len(old_prefix) + 1, type_=String),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        region.path = new_prefix
        region.parent_id = parent.id if parent else None
    if data.name is not None:
        region.name = data.name
    region.level = new_level
    region.updated_at = now
    session.add(region)
    await session.flush()
    return region


async def list_regions(
    session: AsyncSession,
    caller: Caller,
    page: PageParams,
    *,
    level: Level | None = None,
    parent_code: str | None = None,
    q: str | None = None,
) -> Page[RegionPublic]:
    """Regions in the caller's subtree, by code, filtered by level, parent and a piece of the name."""
    statement = select(Region).where(in_subtree(col(Region.path), caller))
    if level is not None:
        statement = statement.where(col(Region.level) == level)
    if parent_code is not None:
        # Like every other lookup: a parent outside the subtree (or nowhere) is 404, as for users' region_code.
        parent = await get_visible(session, caller, parent_code)
        statement = statement.where(col(Region.parent_id) == parent.id)
    if q:
        statement = statement.where(col(Region.name).icontains(q, autoescape=True))
    return await _page_by_code(session, statement, page)


async def list_children(
    session: AsyncSession, caller: Caller, code: str, page: PageParams
) -> Page[RegionPublic]:
    """The direct children of a region in the caller's subtree, by code."""
    region = await get_visible(session, caller, code)
    statement = select(Region).where(col(Region.parent_id) == region.id)
    return await _page_by_code(session, statement, page)


async def list_subtree(
    session: AsyncSession, caller: Caller, code: str, page: PageParams, *, level: Level | None = None
) -> Page[RegionPublic]:
    """Every descendant of a region in the caller's subtree, in path order (each parent before its children)."""
    region = await get_visible(session, caller, code)
    statement = select(Region).where(
        col(Region.path).startswith(region.path, autoescape=True), col(Region.path) != region.path
    )
    if level is not None:
        statement = statement.where(col(Region.level) == level)
    return await paginate(session, statement, [_PATH], page, region_public, lambda r: [r.path])


async def _page_by_code(session: AsyncSession, statement: Any, page: PageParams) -> Page[RegionPublic]:
    return await paginate(session, statement, [_CODE], page, region_public, lambda r: [r.code])


# ---- CSV import ----


def read_import_csv(data: bytes) -> list[tuple[int, ImportLine]]:
    """Decode an import file (UTF-8, BOM allowed) into (line number, row) pairs after checking the header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("the file is not UTF-8; save it as “CSV UTF-8”", code="invalid_encoding") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != list(IMPORT_HEADER):
            raise BadRequest(
                f"the first line must be the header {','.join(IMPORT_HEADER)}", code="bad_csv_header"
            )
        lines: list[tuple[int, ImportLine]] = []
        for record in reader:
            if not any(field.strip() for field in record):
                continue  # blank lines, e.g. a trailing one
            if len(lines) >= MAX_IMPORT_ROWS:
                raise PayloadTooLarge(
                    f"an import holds at most {MAX_IMPORT_ROWS} rows; split the file",
                    code="too_many_rows",
                )
            lines.append((reader.line_num, _import_line(record)))
    except csv.Error as exc:
        raise BadRequest(f"the file is not valid CSV: {exc}", code="malformed_csv") from exc
    return lines


def _import_line(record: list[str]) -> ImportLine:
    code, name, level, parent_code = [*record, "", "", "", ""][:4]
    problem = None if len(record) == len(IMPORT_HEADER) else f"the row has {len(record)} fields, expected 4"
    return ImportLine(code, name, level, parent_code, problem=problem)


async def _stored(session: AsyncSession, codes: Iterable[str]) -> dict[str, tuple[int, KnownRegion]]:
    """Every stored region with one of these codes in any case, in or out of the caller's scope."""
    wanted = sorted({code.lower() for code in codes})
    found: dict[str, tuple[int, KnownRegion]] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        rows = await session.execute(
            select(col(Region.id), col(Region.code), col(Region.path), col(Region.level)).where(
                func.lower(col(Region.code)).in_(wanted[start : start + _LOOKUP_CHUNK])
            )
        )
        for region_id, code, path, level in rows:
            assert region_id is not None
            found[code] = (region_id, KnownRegion(code=code, path=path, level=Level(level)))
    return found


async def import_regions(
    session: AsyncSession, caller: Caller, data: bytes, *, partial: bool, dry_run: bool
) -> RegionImportReport:
    """Check every row of a CSV file, then store all of them, only the good ones (`partial`) or none (`dry_run`).

    Without `partial`, one bad row refuses the whole file (422 `import_rejected` with the report in `rows`).
    """
    lines = read_import_csv(data)
    names = [line.code.strip() for _, line in lines] + [line.parent_code.strip() for _, line in lines]
    # Only well-formed codes reach the database (PostgreSQL refuses NUL); the others fail their rows anyway.
    stored = await _stored(session, (name for name in names if valid_code(name)))
    known = {code: region for code, (_, region) in stored.items()}
    planned = plan_import([line for _, line in lines], known, caller.region_path)
    good = [row for row in planned if row.ok]
    refused = len(planned) - len(good)
    store = not dry_run and (partial or refused == 0)

    if store and good:
        ids = {code: region_id for code, (region_id, _) in stored.items()}
        now = utcnow()
        # Parents first: one batch per tree depth, so every parent's id is known before its children.
        for depth in sorted({tree_depth(row.path or "") for row in good}):
            batch = [row for row in good if tree_depth(row.path or "") == depth]
            try:
                inserted = await session.execute(
                    insert(Region).returning(col(Region.id), col(Region.code)),
                    [
                        {
                            "code": row.code,
                            "name": row.name,
                            "level": row.level,
                            "parent_id": ids[row.parent_code] if row.parent_code else None,
                            "path": row.path,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for row in batch
                    ],
                )
            except IntegrityError as exc:  # a concurrent request stored one of these codes first
                raise Conflict(
                    "a region in the file was stored by another request meanwhile; try again",
                    code="region_code_taken",
                ) from exc
            ids.update({code: region_id for region_id, code in inserted if region_id is not None})

    ok_status: ImportStatus = "created" if store else "valid"
    report = [
        RegionImportRow(
            row=number,
            line=line_number,
            code=row.code,
            status=ok_status if row.ok else "error",
            error_code=row.error_code,
            detail=row.detail,
        )
        for number, ((line_number, _), row) in enumerate(zip(lines, planned, strict=True), start=1)
    ]
    if refused and not partial and not dry_run:
        raise UnprocessableEntity(
            f"{refused} of {len(planned)} rows were refused, so nothing was stored; fix them, or import "
            "with partial=true to store the good rows",
            code="import_rejected",
            valid=len(good),
            created=0,
            refused=refused,
            rows=[r.model_dump() for r in report],
        )
    return RegionImportReport(
        dry_run=dry_run,
        partial=partial,
        valid=len(good),
        created=len(good) if store else 0,
        refused=refused,
        rows=report,
    )


LEVEL_NAMES: dict[str, str] = {
    Level.province: "省",
    Level.city: "市",
    Level.county: "县（区）",
    Level.town: "乡镇（街道）",
    Level.zone: "管区",
    Level.village: "村（社区）",
    Level.grid: "网格",
}
EXPORT_HEADERS = ("区划代码", "名称", "层级", "上级代码", "路径", "创建时间")


async def export_rows(
    database: Database, root_path: str, *, level: Level | None = None
) -> AsyncIterator[tuple[Cell, ...]]:
    """The regions under `root_path` in path order, read in batches in a transaction of their own (the
    answer streams after the request's own transaction has ended)."""
    statement = select(Region).where(col(Region.path).startswith(root_path, autoescape=True))
    if level is not None:
        statement = statement.where(col(Region.level) == level)
    statement = statement.order_by(col(Region.path)).execution_options(yield_per=500)
    async with database.transaction() as session:
        result = await session.stream_scalars(statement)
        async for region in result:
            yield (
                region.code,
                region.name,
                LEVEL_NAMES.get(region.level, region.level),
                parent_code_of(region.path),
                region.path,
                region.created_at,
            )
