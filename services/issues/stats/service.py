"""The rectification statistics (整改统计) in SQL: one GROUP BY with CASE sums per answer, whatever the volume.

Grouping by region joins a page of regions (direct children, or those `depth` levels or of a `level` below)
to the issues under each by a range on the materialized path, so each page reads only its own regions'
issues through the path index. The median comes from `percentile_cont` on PostgreSQL; SQLite has no such
aggregate, so there the fixed issues' durations are read in order and the rules take the median.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    String,
    Subquery,
    and_,
    bindparam,
    case,
    cast,
    func,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable
from sqlmodel import col

from services.issues.cases.models import Issue
from services.issues.cases.rules import OPEN_STATUSES, Source, Status
from services.issues.categories.models import Category
from services.issues.regions.models import Level, Region
from services.issues.regions.service import get_visible as visible_region
from services.issues.stats import rules
from services.issues.stats.rules import Counts, GroupBy
from services.issues.stats.schemas import RectificationFigures, RectificationRow, RectificationStats
from services.kit.auth import Caller
from services.kit.db import UTCDateTime, utcnow
from services.kit.errors import BadRequest, Forbidden, UnprocessableEntity
from services.kit.identity import ROOT_PATH, Role
from services.kit.pagination import PageParams, decode_cursor, encode_cursor

# Every character of a region path ([0-9A-Za-z-] and `/`) sorts below `~`: the paths under P are exactly
# those in [P, P + "~").
_PATH_END = "~"
_OPEN = [s.value for s in OPEN_STATUSES]


@dataclass(frozen=True)
class StatsQuery:
    region: str | None
    start: datetime
    end: datetime
    group_by: GroupBy
    depth: int | None = None
    level: Level | None = None


@dataclass(frozen=True)
class Area:
    """The region counted: its code, path and row id (None for the whole tree of a service's token)."""

    code: str
    path: str
    region_id: int | None


async def area_of(session: AsyncSession, caller: Caller, code: str | None) -> Area:
    """The region asked for (the caller's own by default), if it lies in the caller's subtree; else 404."""
    if code is None and caller.region_path == ROOT_PATH:
        return Area(caller.region, ROOT_PATH, None)
    region = await visible_region(session, caller, code or caller.region)
    return Area(region.code, region.path, region.id)


def check(caller: Caller, query: StatsQuery) -> None:
    """Refusals that need no database: who may ask, and which options go together."""
    if caller.role is Role.citizen:
        raise Forbidden("statistics are for staff and integrations", code="role_not_allowed")
    if query.end <= query.start:
        raise UnprocessableEntity("`from` must be before `to`", code="empty_window")
    if query.group_by is not GroupBy.child and (query.depth is not None or query.level is not None):
        raise UnprocessableEntity(
            "`depth` and `level` go with `group_by=child`", code="grouping_option_not_allowed"
        )
    if query.depth is not None and query.level is not None:
        raise UnprocessableEntity("give `depth` or `level`, not both", code="grouping_option_not_allowed")
    if query.group_by is GroupBy.month and rules.month_count(query.start, query.end) > rules.MAX_MONTHS:
        raise UnprocessableEntity(
            f"a monthly series covers at most {rules.MAX_MONTHS} months", code="window_too_long"
        )


# ---- the SQL ----


@dataclass(frozen=True)
class _Dialect:
    postgres: bool

    def days_to_close(self) -> ColumnElement[float]:
        if self.postgres:
            # date_part gives a double precision (EXTRACT a numeric, several times slower to sum and sort).
            seconds = func.date_part("epoch", col(Issue.closed_at) - col(Issue.reported_at))
            return cast(seconds / rules.SECONDS_PER_DAY, Float)
        return cast(func.julianday(col(Issue.closed_at)) - func.julianday(col(Issue.reported_at)), Float)

    def month(self) -> ColumnElement[str]:
        if self.postgres:
            return func.to_char(func.timezone("Asia/Shanghai", col(Issue.reported_at)), "YYYY-MM")
        # Whole seconds first: SQLite's date functions round to the millisecond, which would carry
        # 23:59:59.9999995 into the next month.
        return func.strftime("%Y-%m", func.substr(col(Issue.reported_at), 1, 19), "+8 hours")

    def under(self, path: ColumnElement[str], of: Any = None) -> ColumnElement[bool]:
        """The issue's region (or the path column `of`) lies under the region whose path is `path` (a column
        or a parameter): a range the path index serves (on PostgreSQL with the pattern operators its
        `varchar_pattern_ops` index answers, whatever the database's collation)."""
        end = (path + _PATH_END).self_group()  # `~<~` binds tighter than `||` in PostgreSQL
        issue_path = col(Issue.region_path) if of is None else of
        if self.postgres:
            at_least, below = (
                issue_path.op("~>=~", is_comparison=True),
                issue_path.op("~<~", is_comparison=True),
            )
            return and_(at_least(path), below(end))
        return and_(issue_path >= path, issue_path < end)


def _dialect(session: AsyncSession) -> _Dialect:
    return _Dialect(session.get_bind().dialect.name == "postgresql")


def _sum(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# The statements are built once per dialect and shape, with what a request asks as parameters (`_params`):
# building one costs more than running it from SQLAlchemy's compiled cache (~5 ms of a county's statistics).
_AREA = bindparam("area", type_=String)  # the counted region's path


def _params(area: Area, query: StatsQuery, now: datetime) -> dict[str, Any]:
    return {"area": area.path, "start": query.start, "end": query.end, "now": now}


@cache
def _aggregates(dialect: _Dialect) -> tuple[Any, ...]:
    """The CASE sums of `rules.Counts` (and the median on PostgreSQL), labelled by their field names; `:now`
    decides what is overdue."""
    now = bindparam("now", type_=UTCDateTime)
    status = col(Issue.status)
    found = and_(status.is_not(None), status != Status.rejected.value)
    closed = status == Status.closed.value
    open_ = status.in_(_OPEN)
    days = dialect.days_to_close()
    columns: list[Any] = [
        _sum(found).label("found"),
        _sum(closed).label("fixed"),
        _sum(status == Status.rejected.value).label("rejected"),
        _sum(open_).label("open"),
        _sum(and_(open_, col(Issue.deadline) < now)).label("overdue"),
        _sum(
            and_(closed, (col(Issue.deadline).is_(None)) | (col(Issue.closed_at) <= col(Issue.deadline)))
        ).label("closed_on_time"),
        _sum(and_(closed, col(Issue.rework_count) > 0)).label("reworked"),
        _sum(and_(found, col(Issue.extension_count) > 0)).label("extended"),
        func.coalesce(func.sum(case((closed, days), else_=0.0)), 0.0).label("days_to_close"),
    ]
    if dialect.postgres:
        columns.append(func.percentile_cont(0.5).within_group(case((closed, days))).label("median_days"))
    return tuple(columns)


def _counts(row: Any) -> Counts:
    return Counts(
        found=int(row.found),
        fixed=int(row.fixed),
        rejected=int(row.rejected),
        open=int(row.open),
        overdue=int(row.overdue),
        closed_on_time=int(row.closed_on_time),
        reworked=int(row.reworked),
        extended=int(row.extended),
        days_to_close=float(row.days_to_close),
    )


def _median_of(row: Any) -> float | None:
    value = getattr(row, "median_days", None)
    return None if value is None else float(value)


def _in_window() -> ColumnElement[bool]:
    """Reported from `:start` up to `:end`."""
    reported = col(Issue.reported_at)
    return and_(
        reported >= bindparam("start", type_=UTCDateTime), reported < bindparam("end", type_=UTCDateTime)
    )


def _counted(dialect: _Dialect) -> ColumnElement[bool]:
    """The issues counted: under `:area`, in the window."""
    return and_(dialect.under(_AREA), _in_window())


def _slashes(path: Any) -> ColumnElement[int]:
    return func.length(path) - func.length(func.replace(path, "/", ""))


def _grouping(area: Area, query: StatsQuery) -> tuple[str, dict[str, Any]]:
    """Which regions are the rows of `group_by=child`: the kind of condition (`_group_regions`) and its
    parameters beside `:area`."""
    if query.level is not None:
        return "level", {"level": query.level.value}
    if query.depth is not None and query.depth > 1:
        return "depth", {"slashes": area.path.count("/") + query.depth}
    if area.region_id is None:
        return "root", {}
    return "parent", {"region_id": area.region_id}


@cache
def _group_regions(dialect: _Dialect, kind: str) -> ColumnElement[bool]:
    """The condition on regions of a `_grouping` kind."""
    path = col(Region.path)
    if kind == "level":
        return and_(dialect.under(_AREA, path), path != _AREA, col(Region.level) == bindparam("level"))
    if kind == "depth":
        return and_(dialect.under(_AREA, path), _slashes(path) == bindparam("slashes"))
    if kind == "root":
        return col(Region.parent_id).is_(None)
    return col(Region.parent_id) == bindparam("region_id")


# ---- the answer ----


def _figures(counts: Counts, median: float | None) -> dict[str, Any]:
    shown = rules.figures(counts, median)
    return {
        "found": counts.found,
        "fixed": counts.fixed,
        "rejected": counts.rejected,
        "open": counts.open,
        "overdue": counts.overdue,
        "closed_on_time": counts.closed_on_time,
        "reworked": counts.reworked,
        "extended": counts.extended,
        "rectification_rate": shown.rectification_rate,
        "on_time_rate": shown.on_time_rate,
        "rework_rate": shown.rework_rate,
        "extension_rate": shown.extension_rate,
        "mean_days_to_close": shown.mean_days_to_close,
        "median_days_to_close": shown.median_days_to_close,
    }


def _after(query: StatsQuery, page: PageParams) -> str | None:
    """The last key of the page before (a cursor is of one grouping: another's is not this API's)."""
    if not page.cursor:
        return None
    grouping, key = decode_cursor(page.cursor, 2)
    if grouping != query.group_by.value or not isinstance(key, str):
        raise BadRequest("the cursor is not one this API issued", code="invalid_cursor")
    return key


async def _medians_in_python(
    session: AsyncSession, statement: Executable, params: dict[str, Any], keyed: bool
) -> dict[str | None, float | None]:
    """SQLite: the fixed issues' durations per key, read in order, and their exact medians."""
    durations: dict[str | None, list[float]] = defaultdict(list)
    result = await session.stream(statement.execution_options(yield_per=2000), params)
    async for row in result:
        key = row[0] if keyed else None
        durations[key].append(float(row[-1]))
    return {key: rules.median(values) for key, values in durations.items()}


@cache
def _total_statements(dialect: _Dialect) -> tuple[Select[Any], Select[Any] | None]:
    """The figures of the whole area and (SQLite) the fixed issues' durations."""
    statement = select(*_aggregates(dialect)).where(_counted(dialect))
    if dialect.postgres:
        return statement, None
    durations = select(dialect.days_to_close()).where(
        _counted(dialect), col(Issue.status) == Status.closed.value
    )
    return statement, durations


async def _total(session: AsyncSession, dialect: _Dialect, params: dict[str, Any]) -> Any:
    statement, durations = _total_statements(dialect)
    row = (await session.execute(statement, params)).one()
    median = _median_of(row)
    if durations is not None:
        median = (await _medians_in_python(session, durations, params, keyed=False)).get(None)
    return RectificationFigures(**_figures(_counts(row), median))


def _region_groups(dialect: _Dialect, kind: str, after: bool) -> Subquery:
    """A page of the grouping's regions in path order (`:limit` + 1 of them, past `:after`)."""
    regions = select(col(Region.code), col(Region.name), col(Region.path)).where(
        _group_regions(dialect, kind)
    )
    if after:
        regions = regions.where(col(Region.path) > bindparam("after"))
    return regions.order_by(col(Region.path)).limit(bindparam("limit")).subquery("grp")


@cache
def _region_statements(dialect: _Dialect, kind: str, after: bool) -> tuple[Select[Any], Select[Any] | None]:
    """The figures of a page of regions and (SQLite) the fixed issues' durations under each."""
    groups = _region_groups(dialect, kind, after)
    joined = and_(dialect.under(groups.c.path), _in_window())  # each region's own range
    if dialect.postgres:
        # Each region's figures by its own range of the path index (LATERAL): a join of the regions to the
        # window's issues let the planner scan the whole window (81,836 rows for a county's month at 10⁶).
        figures = select(*_aggregates(dialect)).where(joined).lateral("fig")
        statement = (
            select(groups.c.code, groups.c.name, groups.c.path, *figures.c)
            .select_from(groups.join(figures, true()))
            .order_by(groups.c.path)
        )
        return statement, None
    statement = (
        select(groups.c.code, groups.c.name, groups.c.path, *_aggregates(dialect))
        .select_from(groups)
        .outerjoin(Issue, joined)
        .group_by(groups.c.code, groups.c.name, groups.c.path)
        .order_by(groups.c.path)
    )
    durations = (
        select(groups.c.path, dialect.days_to_close())
        .select_from(groups)
        .join(Issue, joined)
        .where(col(Issue.status) == Status.closed.value)
        .order_by(groups.c.path)
    )
    return statement, durations


async def _region_rows(
    session: AsyncSession,
    dialect: _Dialect,
    area: Area,
    query: StatsQuery,
    page: PageParams,
    params: dict[str, Any],
) -> tuple[list[RectificationRow], str | None]:
    after = _after(query, page)
    kind, grouping = _grouping(area, query)
    params = params | grouping | {"limit": page.limit + 1, "after": after}
    statement, durations = _region_statements(dialect, kind, after is not None)
    rows = (await session.execute(statement, params)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    medians: Mapping[str | None, float | None] = {}
    if durations is not None and rows:
        medians = await _medians_in_python(session, durations, params, keyed=True)
    items = [
        RectificationRow(
            key=row.code,
            name=row.name,
            **_figures(_counts(row), _median_of(row) if dialect.postgres else medians.get(row.path)),
        )
        for row in rows
    ]
    next_cursor = encode_cursor([query.group_by.value, rows[-1].path]) if more and rows else None
    return items, next_cursor


@cache
def _key_statements(dialect: _Dialect, group_by: GroupBy) -> tuple[Select[Any], Select[Any] | None]:
    """The figures by key and (SQLite) the fixed issues' durations by key."""
    key: Any = {
        GroupBy.category: col(Issue.category),
        GroupBy.source: col(Issue.source),
        GroupBy.month: dialect.month(),
    }[group_by]
    where = _counted(dialect)
    statement = select(key.label("key"), *_aggregates(dialect)).where(where).group_by(key)
    if dialect.postgres:
        return statement, None
    durations = (
        select(key, dialect.days_to_close())
        .where(where, col(Issue.status) == Status.closed.value)
        .order_by(key)
    )
    return statement, durations


async def _key_rows(
    session: AsyncSession,
    dialect: _Dialect,
    query: StatsQuery,
    page: PageParams,
    params: dict[str, Any],
) -> tuple[list[RectificationRow], str | None]:
    """Rows by category, source or month: few groups, all counted in one statement, then paged by key."""
    statement, durations = _key_statements(dialect, query.group_by)
    counted = {str(row.key): row for row in (await session.execute(statement, params)).all()}
    medians: Mapping[str | None, float | None] = {}
    if durations is not None and counted:
        medians = await _medians_in_python(session, durations, params, keyed=True)

    names: dict[str, str | None]
    if query.group_by is GroupBy.source:
        names = {s.value: rules.SOURCE_NAMES[s] for s in Source}
    elif query.group_by is GroupBy.month:
        names = {m: rules.month_name(m) for m in rules.months_between(query.start, query.end)}
    else:
        rows = await session.execute(
            select(col(Category.code), col(Category.name)).where(col(Category.code).in_(sorted(counted)))
        )
        names = {k: None for k in counted} | {code: name for code, name in rows.all()}
    keys = sorted(set(names) | set(counted))

    after = _after(query, page)
    remaining = [k for k in keys if after is None or k > after]
    shown, more = remaining[: page.limit], len(remaining) > page.limit
    items = []
    for k in shown:
        row = counted.get(k)
        counts = _counts(row) if row is not None else Counts()
        median = (_median_of(row) if dialect.postgres else medians.get(k)) if row is not None else None
        items.append(RectificationRow(key=k, name=names.get(k), **_figures(counts, median)))
    next_cursor = encode_cursor([query.group_by.value, shown[-1]]) if more and shown else None
    return items, next_cursor


async def rectification(
    session: AsyncSession, caller: Caller, query: StatsQuery, page: PageParams
) -> RectificationStats:
    check(caller, query)
    area = await area_of(session, caller, query.region)
    dialect, params = _dialect(session), _params(area, query, utcnow())
    if query.group_by is GroupBy.child:
        items, next_cursor = await _region_rows(session, dialect, area, query, page, params)
    else:
        items, next_cursor = await _key_rows(session, dialect, query, page, params)
    return RectificationStats(
        region=area.code,
        from_=query.start,
        to=query.end,
        group_by=query.group_by,
        items=items,
        # The total does not change from page to page: only the first carries it (a province's villages
        # come in some 200 pages, and its total reads every issue of the window).
        total=await _total(session, dialect, params) if not page.cursor else None,
        next_cursor=next_cursor,
        limit=page.limit,
    )
