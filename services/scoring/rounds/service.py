"""Rounds: creating one (or a month's two inspections) with the scope's region snapshot, reading them
within the caller's region, changing an open one, and closing it: automatic deductions read in bulk from
the issues service, every unit's round score stored with its breakdown, the round frozen.

Visibility: a round is seen by a caller whose region lies in the round's scope (a village of a county
round) or contains it (the county office, a town's round); anything else is 404. What a round holds per
unit (snapshot, scorecards, results) is further limited to the units in the caller's own subtree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.kit.auth import Caller, in_subtree
from services.kit.db import savepoint, utcnow
from services.kit.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.kit.identity import is_within
from services.kit.pagination import Page, PageParams, paginate
from services.scoring.feed import IssuesFeed, RegionNode, UnitIndex, by_unit
from services.scoring.levels import RegionLevel, UnitLevel
from services.scoring.periods import SHANGHAI, HalfMonth, Period, PeriodKind, inspection_windows, parse_period
from services.scoring.rounds.models import Round, RoundKind, RoundResult, RoundStatus, RoundUnit, Scorecard
from services.scoring.rounds.schemas import (
    Breakdown,
    MonthlyInspectionsCreate,
    RoundCreate,
    RoundPublic,
    RoundResultPublic,
    RoundUnitPublic,
    RoundUpdate,
    ScopePublic,
)
from services.scoring.rubrics.models import RubricVersion, rubric_of
from services.scoring.rubrics.rules import Rubric
from services.scoring.rubrics.service import freeze
from services.scoring.scores.rules import ItemDeduction, RoundScore, round_score

_ID = cast("ColumnElement[int]", col(Round.id))
_UNIT_CODE = cast("ColumnElement[str]", col(RoundUnit.code))
_RESULT_CODE = cast("ColumnElement[str]", col(RoundResult.unit_code))

KIND_LABELS = {
    RoundKind.inspection: "督查",
    RoundKind.covert: "暗访",
    RoundKind.third_party: "第三方评估",
    RoundKind.satisfaction: "满意度调查",
}
# Which periods a kind of round may cover.
KIND_PERIODS = {
    RoundKind.inspection: {PeriodKind.month},
    RoundKind.covert: {PeriodKind.month, PeriodKind.quarter},
    RoundKind.third_party: {PeriodKind.month, PeriodKind.quarter, PeriodKind.year},
    RoundKind.satisfaction: {PeriodKind.month, PeriodKind.quarter, PeriodKind.year},
}
# Issues found deduct automatically in every kind of round but a satisfaction survey (群众满意度 is what
# people answer, not what inspectors found).
AUTOMATIC_KINDS = frozenset({RoundKind.inspection, RoundKind.covert, RoundKind.third_party})


class InvalidRound(UnprocessableEntity):
    code = "invalid_round"


class RoundClosed(Conflict):
    code = "round_closed"


def round_not_found(round_id: int) -> NotFound:
    return NotFound(f"round {round_id} not found", code="round_not_found")


def unit_not_found(code: str) -> NotFound:
    return NotFound(f"unit {code} is not in this round or not in your region", code="unit_not_found")


# ---- reading ----


def visible(caller: Caller) -> ColumnElement[bool]:
    """SQL: the round's scope lies in the caller's subtree, or the caller's region lies in its scope."""
    return or_(
        in_subtree(col(Round.scope_path), caller),
        literal(caller.region_path).startswith(col(Round.scope_path)),
    )


def covers(caller: Caller, round_: Round) -> bool:
    """Whether the caller's region holds the whole scope (it may create, change and close the round)."""
    return is_within(round_.scope_path, caller.region_path)


async def round_public(session: AsyncSession, round_: Round, units: int | None = None) -> RoundPublic:
    assert round_.id is not None
    if units is None:
        units = (
            await session.execute(
                select(func.count())
                .select_from(RoundUnit)
                .where(col(RoundUnit.round_id) == round_.id, col(RoundUnit.level) == round_.unit_level)
            )
        ).scalar_one()
    return RoundPublic(
        id=round_.id,
        name=round_.name,
        kind=RoundKind(round_.kind),
        period=round_.period,
        window=HalfMonth(round_.window) if round_.window else None,
        scope=ScopePublic(code=round_.scope_code, name=round_.scope_name, path=round_.scope_path),
        unit_level=UnitLevel(round_.unit_level),
        rubric_id=round_.rubric_id,
        status=RoundStatus(round_.status),
        starts_on=round_.starts_on,
        ends_on=round_.ends_on,
        units=units,
        closed_at=round_.closed_at,
        closed_by=round_.closed_by,
        created_by=round_.created_by,
        created_at=round_.created_at,
        updated_at=round_.updated_at,
    )


async def get_visible(session: AsyncSession, caller: Caller, round_id: int, *, lock: bool = False) -> Round:
    statement = select(Round).where(col(Round.id) == round_id, visible(caller))
    if lock:  # PostgreSQL: writers of one round wait for each other; SQLite has one writer anyway
        statement = statement.with_for_update().execution_options(populate_existing=True)
    round_ = (await session.execute(statement)).scalar_one_or_none()
    if round_ is None:
        raise round_not_found(round_id)
    return round_


@dataclass(frozen=True)
class RoundFilters:
    kind: RoundKind | None = None
    period: str | None = None
    status: RoundStatus | None = None
    unit_level: UnitLevel | None = None
    scope: str | None = None


async def list_rounds(
    session: AsyncSession, caller: Caller, filters: RoundFilters, page: PageParams
) -> Page[RoundPublic]:
    """Newest first."""
    statement = select(Round).where(visible(caller))
    for column, value in (
        (col(Round.kind), filters.kind),
        (col(Round.period), filters.period),
        (col(Round.status), filters.status),
        (col(Round.unit_level), filters.unit_level),
        (col(Round.scope_code), filters.scope),
    ):
        if value is not None:
            statement = statement.where(column == str(value))
    listed = await paginate(session, statement, [_ID], page, lambda r: r, lambda r: [r.id], descending=True)
    counts = await _unit_counts(session, [r.id for r in listed.items if r.id is not None])
    items = [await round_public(session, r, counts.get(r.id or 0, 0)) for r in listed.items]
    return Page(items=items, next_cursor=listed.next_cursor, limit=listed.limit)


async def _unit_counts(session: AsyncSession, round_ids: list[int]) -> dict[int, int]:
    if not round_ids:
        return {}
    rows = await session.execute(
        select(col(RoundUnit.round_id), func.count())
        .join(Round, col(Round.id) == col(RoundUnit.round_id))
        .where(col(RoundUnit.round_id).in_(round_ids), col(RoundUnit.level) == col(Round.unit_level))
        .group_by(col(RoundUnit.round_id))
    )
    return {int(round_id): int(count) for round_id, count in rows.all()}


async def list_units(
    session: AsyncSession, caller: Caller, round_id: int, page: PageParams, *, level: str | None
) -> Page[RoundUnitPublic]:
    """The round's snapshot within the caller's subtree, by code."""
    round_ = await get_visible(session, caller, round_id)
    statement = select(RoundUnit).where(
        col(RoundUnit.round_id) == round_.id, in_subtree(col(RoundUnit.path), caller)
    )
    if level is not None:
        statement = statement.where(col(RoundUnit.level) == level)
    return await paginate(session, statement, [_UNIT_CODE], page, unit_public, lambda u: [u.code])


def unit_public(unit: RoundUnit) -> RoundUnitPublic:
    return RoundUnitPublic(
        code=unit.code, name=unit.name, level=unit.level, parent_code=unit.parent_code, path=unit.path
    )


async def get_unit(session: AsyncSession, caller: Caller, round_: Round, code: str) -> RoundUnit:
    """A unit of the round's level in its snapshot and in the caller's subtree, else 404 `unit_not_found`."""
    unit = (
        await session.execute(
            select(RoundUnit).where(
                col(RoundUnit.round_id) == round_.id,
                col(RoundUnit.code) == code,
                col(RoundUnit.level) == round_.unit_level,
                in_subtree(col(RoundUnit.path), caller),
            )
        )
    ).scalar_one_or_none()
    if unit is None:
        raise unit_not_found(code)
    return unit


async def rubric_for(session: AsyncSession, round_: Round) -> Rubric:
    row = await session.get(RubricVersion, round_.rubric_id)
    assert row is not None  # a foreign key
    return rubric_of(row)


# ---- creating and changing ----


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), SHANGHAI)


def round_window(round_: Round) -> tuple[datetime, datetime]:
    """The moments [start, end) a round covers: its first day's 00:00 to the day after its last, Beijing time."""
    return _local_midnight(round_.starts_on), _local_midnight(round_.ends_on + timedelta(days=1))


def _period(text: str) -> Period:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise InvalidRound(str(exc)) from exc


def _span(
    kind: RoundKind, period: Period, window: HalfMonth | None, starts_on: date | None, ends_on: date | None
) -> tuple[date, date, str]:
    """The round's first and last day and its default name, checked against its kind and period."""
    if period.kind not in KIND_PERIODS[kind]:
        allowed = ", ".join(sorted(KIND_PERIODS[kind]))
        raise InvalidRound(f"a {kind} round covers a {allowed}, not a {period.kind}")
    if window is not None and kind is not RoundKind.inspection:
        raise InvalidRound("only an inspection round has a window (上旬 or 下旬)")
    first, end = period.start, period.end
    name = f"{period.label}{KIND_LABELS[kind]}"
    if window is not None:
        half = next(w for w in inspection_windows(period) if w.half is window)
        first, end, name = half.start, half.end, f"{half.label}{KIND_LABELS[kind]}"
    last = end - timedelta(days=1)
    starts, ends = starts_on or first, ends_on or last
    if not first <= starts <= ends <= last:
        raise InvalidRound(
            f"the round's days must lie within {first.isoformat()} to {last.isoformat()} and start no later "
            "than they end"
        )
    return starts, ends, name


async def _rubric(session: AsyncSession, rubric_id: int) -> RubricVersion:
    row = await session.get(RubricVersion, rubric_id)
    if row is None:
        raise UnprocessableEntity(f"rubric {rubric_id} does not exist", code="rubric_not_found")
    return row


async def _scope(
    feed: IssuesFeed, caller: Caller, code: str, unit_level: UnitLevel
) -> tuple[RegionNode, list[RegionNode]]:
    """The scope region (in the caller's subtree, else 404 `region_not_found`) and its snapshot."""
    root = await feed.region(code)
    if not is_within(root.path, caller.region_path):
        raise NotFound(f"region {code} not found", code="region_not_found")
    level = RegionLevel.of(root.level)
    if level is None or level.depth >= RegionLevel(unit_level).depth:
        raise InvalidRound(f"a {root.level} holds no {unit_level} to score", code="scope_below_units")
    nodes = await feed.snapshot(root, unit_level)
    if not any(node.level == unit_level for node in nodes):
        raise InvalidRound(f"region {code} has no {unit_level} to score", code="scope_has_no_units")
    return root, nodes


async def _insert_round(
    session: AsyncSession,
    caller: Caller,
    *,
    kind: RoundKind,
    period: Period,
    window: HalfMonth | None,
    root: RegionNode,
    nodes: list[RegionNode],
    unit_level: UnitLevel,
    rubric: RubricVersion,
    starts_on: date,
    ends_on: date,
    name: str,
) -> Round:
    slot = f"{kind}:{period.code}:{window}:{unit_level}" if kind is RoundKind.inspection else None
    round_ = Round(
        name=name,
        kind=kind.value,
        period=period.code,
        window=window.value if window else None,
        slot=slot,
        scope_code=root.code,
        scope_name=root.name,
        scope_path=root.path,
        unit_level=unit_level.value,
        rubric_id=rubric.id or 0,
        starts_on=starts_on,
        ends_on=ends_on,
        created_by=str(caller.subject),
    )
    session.add(round_)
    try:
        async with savepoint(session, Round):
            await session.flush()
    except IntegrityError as exc:
        what = f"{period.code} {window.label if window else ''}".strip()
        raise Conflict(
            f"the {what} inspection of {root.name} ({unit_level}) exists already", code="round_exists"
        ) from exc
    snapshot = [root, *nodes]
    await session.execute(
        insert(RoundUnit),
        [
            {
                "round_id": round_.id,
                "code": node.code,
                "name": node.name,
                "parent_code": node.parent_code,
                "path": node.path,
                "level": node.level,
            }
            for node in snapshot
        ],
    )
    await freeze(session, rubric)
    return round_


async def create_round(session: AsyncSession, caller: Caller, feed: IssuesFeed, body: RoundCreate) -> Round:
    period = _period(body.period)
    starts_on, ends_on, name = _span(body.kind, period, body.window, body.starts_on, body.ends_on)
    rubric = await _rubric(session, body.rubric_id)
    root, nodes = await _scope(feed, caller, body.scope, body.unit_level)
    return await _insert_round(
        session,
        caller,
        kind=body.kind,
        period=period,
        window=body.window,
        root=root,
        nodes=nodes,
        unit_level=body.unit_level,
        rubric=rubric,
        starts_on=starts_on,
        ends_on=ends_on,
        name=body.name or name,
    )


async def create_month(
    session: AsyncSession, caller: Caller, feed: IssuesFeed, body: MonthlyInspectionsCreate
) -> list[Round]:
    """上旬 and 下旬 of one month, from one snapshot, in one transaction (both or neither)."""
    period = _period(body.period)
    rubric = await _rubric(session, body.rubric_id)
    root, nodes = await _scope(feed, caller, body.scope, body.unit_level)
    rounds = []
    for window in (HalfMonth.first, HalfMonth.second):
        starts_on, ends_on, name = _span(RoundKind.inspection, period, window, None, None)
        rounds.append(
            await _insert_round(
                session,
                caller,
                kind=RoundKind.inspection,
                period=period,
                window=window,
                root=root,
                nodes=nodes,
                unit_level=body.unit_level,
                rubric=rubric,
                starts_on=starts_on,
                ends_on=ends_on,
                name=name,
            )
        )
    return rounds


async def claim_open(session: AsyncSession, round_: Round, *, closing_by: str | None = None) -> bool:
    """The first write of anything that needs the round open: a conditional update of the round itself,
    so that closing and filing serialize on both backends (PostgreSQL: the row lock; SQLite: its one
    writer) and whoever comes second sees the round as the first left it. False: it is closed."""
    now = utcnow()
    values: dict[str, Any] = {"updated_at": now}
    if closing_by is not None:
        values |= {"status": RoundStatus.closed.value, "closed_at": now, "closed_by": closing_by}
    claimed = await session.execute(
        update(Round)
        .where(col(Round.id) == round_.id, col(Round.status) == RoundStatus.open.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def ensure_open(round_: Round) -> None:
    if round_.status != RoundStatus.open:
        raise RoundClosed(f"round {round_.id} is closed: its scores are frozen")


def ensure_covers(caller: Caller, round_: Round) -> None:
    if not covers(caller, round_):
        raise Forbidden(
            f"round {round_.id} covers {round_.scope_name}, beyond your region", code="round_beyond_region"
        )


async def change_round(session: AsyncSession, caller: Caller, round_id: int, body: RoundUpdate) -> Round:
    round_ = await get_visible(session, caller, round_id, lock=True)
    ensure_covers(caller, round_)
    ensure_open(round_)
    period = _period(round_.period)
    window = HalfMonth(round_.window) if round_.window else None
    starts_on, ends_on, _ = _span(
        RoundKind(round_.kind),
        period,
        window,
        body.starts_on or round_.starts_on,
        body.ends_on or round_.ends_on,
    )
    round_.starts_on, round_.ends_on = starts_on, ends_on
    if body.name is not None:
        round_.name = body.name
    round_.updated_at = utcnow()
    await session.flush()
    return round_


# ---- closing: automatic deductions and round scores ----


def item_deductions(items: list[dict[str, Any]], rubric: Rubric) -> list[ItemDeduction]:
    """A stored scorecard's items as the scoring rules take them (a score given means its deduction)."""
    indicators = rubric.indicators_by_code()
    deductions = []
    for item in items:
        indicator = indicators[item["indicator"]]
        if item.get("score") is not None:
            points = indicator.max_points - Decimal(item["score"])
        else:
            points = Decimal(item["deduction"])
        deductions.append(ItemDeduction(indicator.code, points, item.get("note") or ""))
    return deductions


def breakdown(
    rubric: Rubric, scored: RoundScore, *, scorecard_filed: bool, issues_found: int
) -> dict[str, Any]:
    """What a RoundResult stores behind a unit's score: the JSON of `Breakdown` (built as plain data: a
    province's round has 10⁵ of them)."""
    names = {indicator.code: indicator.name for indicator in rubric.indicators}
    lines: dict[str, list[dict[str, Any]]] = {result.code: [] for result in scored.indicators}
    for line in scored.deductions:
        lines[line.indicator].append(
            {
                "source": line.source.value,
                "points": float(line.points),
                "counted": float(line.counted),
                "issue_code": line.issue_code,
                "category": line.category,
                "severity": None if line.severity is None else line.severity.value,
                "note": line.note,
            }
        )
    return {
        "scorecard_filed": scorecard_filed,
        "issues_found": issues_found,
        "unmatched_issues": list(scored.unmatched),
        "indicators": [
            {
                "code": result.code,
                "name": names[result.code],
                "max_points": float(result.max_points),
                "deducted": float(result.deducted),
                "score": float(result.score),
                "deductions": lines[result.code],
            }
            for result in scored.indicators
        ],
    }


@dataclass(frozen=True)
class CloseOutcome:
    round: Round
    closed_now: bool  # False: it was closed already (a retry, or another request won)


async def close_round(session: AsyncSession, caller: Caller, feed: IssuesFeed, round_id: int) -> CloseOutcome:
    """Score every unit and freeze the round. Everything is read from the issues service before anything is
    written, so an issues service that is down (503) changes nothing; closing a closed round changes nothing."""
    round_ = await get_visible(session, caller, round_id)
    ensure_covers(caller, round_)
    if round_.status == RoundStatus.closed:
        return CloseOutcome(round_, False)
    rubric = await rubric_for(session, round_)
    units = (
        (
            await session.execute(
                select(RoundUnit).where(
                    col(RoundUnit.round_id) == round_.id, col(RoundUnit.level) == round_.unit_level
                )
            )
        )
        .scalars()
        .all()
    )
    index = UnitIndex(units=[_node(unit) for unit in units])
    found: dict[str, list[Any]] = {}
    if RoundKind(round_.kind) in AUTOMATIC_KINDS:
        start, end = round_window(round_)
        issues = await feed.issues_found(round_.scope_code, start, end)
        found = dict(by_unit(issues, index))

    if not await claim_open(session, round_, closing_by=str(caller.subject)):
        # Another request closed it while the issues were read: its results stand, nothing more is written.
        round_ = await get_visible(session, caller, round_id, lock=True)
        return CloseOutcome(round_, False)
    cards = {
        card.unit_code: card
        for card in (await session.execute(select(Scorecard).where(col(Scorecard.round_id) == round_.id)))
        .scalars()
        .all()
    }
    scored_all = RoundKind(round_.kind) is RoundKind.inspection
    rows = []
    for unit in units:
        card = cards.get(unit.code)
        if card is None and not scored_all:
            continue  # a covert visit, survey or assessment scores only the units it visited
        issues_here = found.get(unit.code, [])
        items = item_deductions(card.items, rubric) if card is not None else []
        scored = round_score(rubric, items, [issue.finding() for issue in issues_here])
        rows.append(
            {
                "round_id": round_.id,
                "unit_code": unit.code,
                "unit_path": unit.path,
                "score": scored.score,
                "max_score": scored.max_score,
                "breakdown": breakdown(
                    rubric, scored, scorecard_filed=card is not None, issues_found=len(issues_here)
                ),
                "created_at": utcnow(),
            }
        )
    if rows:
        await session.execute(insert(RoundResult), rows)
    await session.refresh(round_)
    return CloseOutcome(round_, True)


def _node(unit: RoundUnit) -> RegionNode:
    return RegionNode(unit.code, unit.name, unit.level, unit.parent_code, unit.path)


# ---- results ----


async def _results_of(session: AsyncSession, caller: Caller, round_id: int) -> Select[RoundResult]:
    """The round's results of units in the caller's subtree (the round visible and closed, else 404, 409)."""
    round_ = await get_visible(session, caller, round_id)
    if round_.status != RoundStatus.closed:
        raise Conflict(f"round {round_id} is still open: it has no scores yet", code="round_open")
    return select(RoundResult).where(
        col(RoundResult.round_id) == round_id, in_subtree(col(RoundResult.unit_path), caller)
    )


async def _unit_names(session: AsyncSession, round_id: int, codes: list[str]) -> dict[str, str]:
    """The names the round's snapshot gives these units."""
    if not codes:
        return {}
    rows = await session.execute(
        select(_UNIT_CODE, col(RoundUnit.name)).where(
            col(RoundUnit.round_id) == round_id, _UNIT_CODE.in_(codes)
        )
    )
    return {str(code): str(name) for code, name in rows.all()}


def result_public(result: RoundResult, unit_name: str) -> RoundResultPublic:
    return RoundResultPublic(
        round_id=result.round_id,
        unit_code=result.unit_code,
        unit_name=unit_name,
        unit_path=result.unit_path,
        score=result.score,
        max_score=result.max_score,
        breakdown=Breakdown.model_validate(result.breakdown),
    )


async def list_results(
    session: AsyncSession, caller: Caller, round_id: int, page: PageParams
) -> Page[RoundResultPublic]:
    """The scores of the round's units in the caller's subtree, by unit code."""
    statement = await _results_of(session, caller, round_id)
    listed = await paginate(session, statement, [_RESULT_CODE], page, lambda r: r, lambda r: [r.unit_code])
    names = await _unit_names(session, round_id, [r.unit_code for r in listed.items])
    return Page(
        items=[result_public(r, names.get(r.unit_code, r.unit_code)) for r in listed.items],
        next_cursor=listed.next_cursor,
        limit=listed.limit,
    )


async def get_result(
    session: AsyncSession, caller: Caller, round_id: int, unit_code: str
) -> RoundResultPublic:
    statement = await _results_of(session, caller, round_id)
    found = await session.execute(statement.where(col(RoundResult.unit_code) == unit_code))
    result: RoundResult | None = found.scalar_one_or_none()
    if result is None:
        raise NotFound(
            f"unit {unit_code} has no score in round {round_id}, or is not in your region",
            code="result_not_found",
        )
    names = await _unit_names(session, round_id, [result.unit_code])
    return result_public(result, names.get(result.unit_code, result.unit_code))
