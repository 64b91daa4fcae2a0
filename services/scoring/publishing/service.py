"""Publishing a period (发布), and reading what publications froze: rankings, lists, escalations, a unit's
history. Takes a session, never commits; reads the issues service only through the feed, before writing.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    MetaData,
    Select,
    Table,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.kit.auth import Caller, in_subtree
from services.kit.db import savepoint, utcnow
from services.kit.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.kit.identity import Role
from services.scoring.db import metadata
from services.scoring.feed import IssuesFeed, Rectification, UnitIndex, mean_ratings
from services.scoring.levels import UnitLevel
from services.scoring.lists.rules import RuleSet, rules_problems
from services.scoring.periods import SHANGHAI, Period, PeriodKind, parse_period
from services.scoring.publishing import bulletins
from services.scoring.publishing.models import (
    Bulletin,
    EscalationRow,
    ListEntryRow,
    PeriodScoreRow,
    Points,
    Publication,
    RankingEntry,
    RuleSetVersion,
)
from services.scoring.publishing.rules import (
    PeriodResult,
    RoundLine,
    UnitFigures,
    UnitInfo,
    compute_period,
)
from services.scoring.publishing.rulesets import PRESET_BODY, RuleSetError, rule_set_body, rule_set_from_body
from services.scoring.rounds.models import Round, RoundResult, RoundStatus, RoundUnit
from services.scoring.rubrics.models import RubricVersion, rubric_of
from services.scoring.rubrics.rules import Component, Rubric
from services.scoring.scores.rules import PeriodScore, RankedUnit, Ranking

__all__ = [
    "PublishOutcome",
    "acknowledge",
    "current_rules",
    "parse_period_or_422",
    "publish",
    "replace_rules",
    "visible_publication",
]

PUBLISHERS = frozenset({Role.admin})


def parse_period_or_422(text: str) -> Period:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise UnprocessableEntity(str(exc), code="invalid_period") from exc


def covered_codes(period: Period) -> list[str]:
    """The period codes of rounds a period takes in: its months, quarters, and itself."""
    codes = {period.code, *(m.code for m in period.months())}
    if period.kind is PeriodKind.year:
        codes |= {f"{period.year:04d}-Q{q}" for q in range(1, 5)}
    return sorted(codes)


def visible(path_column: Any, caller: Caller) -> ColumnElement[bool]:
    """Rows of units in the caller's subtree."""
    return in_subtree(path_column, caller)


def overlapping(scope_column: Any, caller: Caller) -> ColumnElement[bool]:
    """Publications whose scope holds part of the caller's subtree: above it (the caller sees its part) or
    inside it (the caller sees all)."""
    ancestors = [caller.region_path[: i + 1] for i, ch in enumerate(caller.region_path) if ch == "/"][1:]
    return or_(in_subtree(scope_column, caller), scope_column.in_(ancestors))


# ---- publishing ----


@dataclass(frozen=True)
class PublishOutcome:
    publication: Publication
    bulletin_id: int | None
    created: bool


async def _stored(session: AsyncSession, scope: str, period: Period) -> Publication | None:
    found: Publication | None = (
        await session.execute(
            select(Publication).where(
                col(Publication.scope_code) == scope, col(Publication.period) == period.code
            )
        )
    ).scalar_one_or_none()
    return found


async def bulletin_ids(session: AsyncSession, publication_ids: Sequence[int]) -> dict[int, int]:
    """The bulletin issued with each of these publications (one statement for a page of them)."""
    if not publication_ids:
        return {}
    rows = await session.execute(
        select(col(Bulletin.publication_id), col(Bulletin.id)).where(
            col(Bulletin.publication_id).in_(list(publication_ids))
        )
    )
    return {
        int(publication): int(bulletin) for publication, bulletin in rows.all() if publication and bulletin
    }


async def bulletin_id(session: AsyncSession, publication_id: int) -> int | None:
    return (await bulletin_ids(session, [publication_id])).get(publication_id)


async def publish(
    session: AsyncSession, caller: Caller, feed: IssuesFeed, period_text: str, scope: str | None
) -> PublishOutcome:
    """Publish `period` for the rounds of `scope` (default: the caller's region): the first call scores,
    ranks, lists and escalates and writes it all; any later call (or a concurrent one that lost the race)
    answers what is stored and changes nothing."""
    if caller.role not in PUBLISHERS:
        raise Forbidden("publishing a period is the county office's (admin)", code="role_not_allowed")
    period = parse_period_or_422(period_text)
    scope_code = scope or caller.region
    stored = await _stored(session, scope_code, period)
    if stored is not None and stored.scope_path.startswith(caller.region_path):
        assert stored.id is not None
        return PublishOutcome(stored, await bulletin_id(session, stored.id), False)

    any_round = (
        await session.execute(
            select(col(Round.id))
            .where(col(Round.scope_code) == scope_code, in_subtree(col(Round.scope_path), caller))
            .limit(1)
        )
    ).scalar_one_or_none()
    if any_round is None:
        raise NotFound(f"no rounds of region {scope_code} in your region", code="scope_not_found")
    rounds = list(
        (
            await session.execute(
                select(Round)
                .where(col(Round.scope_code) == scope_code, col(Round.period).in_(covered_codes(period)))
                .order_by(col(Round.ends_on).desc(), col(Round.id).desc())
            )
        ).scalars()
    )
    still_open = [r.id for r in rounds if r.status != RoundStatus.closed.value]
    if still_open:
        raise Conflict(
            f"rounds {', '.join(map(str, still_open))} of {period.code} are still open: close them first",
            code="rounds_open",
            round_ids=still_open,
        )
    if not rounds:
        raise Conflict(f"no closed rounds of {scope_code} in {period.code}", code="nothing_to_publish")

    main = next((r for r in rounds if r.kind == Component.inspection.value), rounds[0])
    rubric_row = await session.get(RubricVersion, main.rubric_id)
    assert rubric_row is not None
    assert rubric_row.id is not None
    rubric = rubric_of(rubric_row)
    round_ids = [r.id for r in rounds if r.id is not None]

    units: dict[str, UnitInfo] = {}
    # Columns, not entities: a province's snapshot is ~10⁵ rows a round.
    snapshot = await _plain_rows(
        session,
        select(
            col(RoundUnit.round_id),
            col(RoundUnit.code),
            col(RoundUnit.name),
            col(RoundUnit.level),
            col(RoundUnit.parent_code),
            col(RoundUnit.path),
        ).where(col(RoundUnit.round_id).in_(round_ids)),
    )
    order = {round_id: place for place, round_id in enumerate(round_ids)}  # latest round first
    for _round_id, code, name, level, parent_code, path in sorted(snapshot, key=lambda u: order[u[0]]):
        if code not in units:
            units[code] = UnitInfo(code, name, level, parent_code, path)
    scope_unit = units.get(scope_code) or UnitInfo(
        scope_code, main.scope_name, "scope", None, main.scope_path
    )
    lines: dict[str, list[RoundLine]] = defaultdict(list)
    results = await _plain_rows(
        session,
        select(
            col(RoundResult.round_id),
            col(RoundResult.unit_code),
            col(RoundResult.score),
            col(RoundResult.max_score),
        ).where(col(RoundResult.round_id).in_(round_ids)),
    )
    named = {r.id: (r.kind, r.name, r.window) for r in rounds}  # read off the ORM once per round
    for round_id, unit_code, score, max_score in results:
        kind, name, window = named[round_id]
        lines[unit_code].append(RoundLine(round_id, kind, name, window, Decimal(score), Decimal(max_score)))
    for unit_lines in lines.values():
        unit_lines.sort(key=lambda line: line.round_id)

    rule_version, rules_body = await applicable_rules(session, scope_unit.path)
    rules = rule_set_from_body(rules_body)
    previous, previous_listed = await _rankings(session, scope_code, period.previous())
    longest = max((rule.streak for rule in rules.escalations if rule.cadence is period.kind), default=1)
    # Streaks look back over the rankings the lists were drawn from.
    history = [ranking for key, ranking in previous.items() if key in previous_listed] if longest > 1 else []
    for back in range(2, longest):
        earlier, listed = await _rankings(session, scope_code, period.previous(back))
        history += [ranking for key, ranking in earlier.items() if key in listed]

    # Everything from the issues service is read before anything is written: if it fails, nothing changes.
    figures = await _figures(feed, scope_unit, units, rubric, period)
    computed = compute_period(
        period=period,
        scope=scope_unit,
        rubric=rubric,
        units=units,
        rounds=lines,
        figures=figures,
        rules=rules,
        previous={(parent, level): ranking for (parent, level), ranking in previous.items()},
        history=history,
    )

    publication = Publication(
        period=period.code,
        kind=period.kind.value,
        scope_code=scope_code,
        scope_path=scope_unit.path,
        scope_name=scope_unit.name,
        rubric_id=rubric_row.id,
        rubric={
            "id": rubric_row.id,
            "code": rubric.code,
            "name": rubric.name,
            "version": rubric.version,
            "town_score": rubric.town_score.value,
            "weights": [{"component": w.component.value, "permille": w.permille} for w in rubric.weights],
        },
        rule_set_version=rule_version,
        rules=rules_body,
        rounds=[_round_summary(r) for r in sorted(rounds, key=lambda r: r.id or 0)],
        figures=_summary(computed, figures),
        published_by=str(caller.subject),
    )
    try:
        async with savepoint(session, Publication):
            session.add(publication)
            await session.flush()
    except IntegrityError:
        # A concurrent request published the same period first: its rows are the answer.
        winner = await _stored(session, scope_code, period)
        assert winner is not None
        assert winner.id is not None
        return PublishOutcome(winner, await bulletin_id(session, winner.id), False)
    assert publication.id is not None
    await _write(session, publication, computed)
    bulletin = Bulletin(
        kind="period",
        key=f"period:{period.code}",
        title=f"{scope_unit.name}{period.label}人居环境整治考评通报",
        scope_code=scope_code,
        scope_path=scope_unit.path,
        scope_name=scope_unit.name,
        period=period.code,
        publication_id=publication.id,
        body=bulletins.period_body(publication, computed),
        issued_at=publication.published_at,
        issued_by=publication.published_by,
    )
    session.add(bulletin)
    await session.flush()
    return PublishOutcome(publication, bulletin.id, True)


async def _plain_rows(session: AsyncSession, statement: Select[*tuple[Any, ...]]) -> Sequence[Sequence[Any]]:
    """The rows of a statement of plain columns (integers, text, numerics: nothing a column type converts
    on the way out). On PostgreSQL read through the driver in this session's transaction: a province's
    rounds are ~4 × 10⁵ rows, and the ORM's rows cost more than the driver's. Elsewhere as usual."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        found: Sequence[Sequence[Any]] = (await connection.execute(statement)).all()
        return found
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # asyncpg's connection
    rows: Sequence[Sequence[Any]] = await driver.fetch(sql)
    return rows


def _round_summary(round_: Round) -> dict[str, Any]:
    return {
        "id": round_.id,
        "name": round_.name,
        "kind": round_.kind,
        "period": round_.period,
        "window": round_.window,
        "unit_level": round_.unit_level,
        "starts_on": round_.starts_on.isoformat(),
        "ends_on": round_.ends_on.isoformat(),
    }


def _summary(computed: PeriodResult, figures: dict[str, UnitFigures]) -> dict[str, Any]:
    lists: dict[str, int] = defaultdict(int)
    for entry in computed.evaluation.lists:
        lists[entry.list_code] += 1
    escalations: dict[str, int] = defaultdict(int)
    for escalation in computed.evaluation.escalations:
        escalations[escalation.rule] += 1
    return {
        "scored": sum(1 for r in computed.results if r.value is not None),
        "unscored": sum(1 for r in computed.results if r.value is None),
        "rankings": len(computed.rankings),
        "lists": dict(sorted(lists.items())),
        "escalations": dict(sorted(escalations.items())),
        "issues_units": len(figures),
        "issues_read_at": utcnow().isoformat(),
    }


async def _figures(
    feed: IssuesFeed, scope: UnitInfo, units: dict[str, UnitInfo], rubric: Rubric, period: Period
) -> dict[str, UnitFigures]:
    """Each village's and town's figures over the period, in a handful of bulk calls."""
    start, end = period.starts_at, period.ends_at
    levels = [
        level.value
        for level in (UnitLevel.town, UnitLevel.village)
        if any(u.level == level.value and u.code != scope.code for u in units.values())
    ]

    async def satisfaction() -> dict[str, Decimal]:
        if Component.satisfaction not in rubric.weights_by_component():
            return {}
        index = UnitIndex([u for u in units.values() if u.level in levels], units.values())
        # The ratings of the issues closed in the period: one call to the issues feed.
        return mean_ratings(await feed.ratings(scope.code, start, end), index)

    async def rectification(level: str) -> dict[str, Rectification]:
        return await feed.rectification(scope.code, start, end, level)

    # The reads are independent: the issues service answers them side by side (one call per level, a
    # province's villages too).
    ratings_task = asyncio.ensure_future(satisfaction())
    try:
        per_level = await asyncio.gather(*(rectification(level) for level in levels))
    except BaseException:
        ratings_task.cancel()
        raise
    ratings = await ratings_task
    counts: dict[str, Rectification] = {}
    for figures in per_level:
        counts.update(figures)
    return {
        code: UnitFigures(c.found, c.fixed, c.overdue, _rating(ratings.get(code)))
        for code, c in counts.items()
        if code in units
    }


def _rating(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


# One encoder for every JSON column (json.dumps with options builds a new encoder per call).
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
CENT, TEN_THOUSANDTH = Decimal("0.01"), Decimal("0.0001")


def _text(value: Decimal | None) -> str | None:
    """Points as their stored text (the `Points` column's own form)."""
    return None if value is None else f"{value:f}"


def _components(score: PeriodScore | None) -> str:
    if score is None:
        return "[]"
    parts = []
    for c in score.components:
        value = "null" if c.value is None else f'"{c.value.quantize(CENT):f}"'
        parts.append(
            f'{{"component":"{c.component.value}","permille":{c.permille},"value":{value},"rounds":{c.rounds}}}'
        )
    return "[" + ",".join(parts) + "]"


def _rectification(figures: UnitFigures | None) -> str | None:
    if figures is None:
        return None
    rate = figures.rectification_rate
    shown = "null" if rate is None else f'"{rate.quantize(TEN_THOUSANDTH):f}"'
    return f'{{"found":{figures.found},"fixed":{figures.fixed},"overdue":{figures.overdue},"rate":{shown}}}'


async def _write(session: AsyncSession, publication: Publication, computed: PeriodResult) -> None:
    """Every row of a publication, as tuples in column order with points and JSON already as their stored
    text (a province's 10⁵ villages and their places: COPY on PostgreSQL, batched inserts elsewhere)."""
    pid, period = publication.id, publication.period
    units = computed.units
    # What a round line's JSON holds apart from its score is the round's: written out once per round.
    heads: dict[int, str] = {}
    for result in computed.results:
        for line in result.rounds:
            if line.round_id not in heads:
                heads[line.round_id] = (
                    f'{{"round_id":{line.round_id},"kind":{_json(line.kind)},"name":{_json(line.name)},'
                    f'"window":{_json(line.window)},"score":'
                )
    hundred = _text(Decimal(100))
    score_rows = [
        (
            pid,
            period,
            r.unit.code,
            r.unit.name,
            r.unit.level,
            r.unit.parent_code,
            r.town_code,
            r.unit.path,
            _text(r.value),
            _text(r.score.max_score) if r.score else hundred,
            r.score.unscored_reason if r.score else None,
            _components(r.score),
            "["
            + ",".join(
                f'{heads[line.round_id]}"{line.score:f}","max_score":"{line.max_score:f}"}}'
                for line in r.rounds
            )
            + "]",
            _rectification(r.figures),
            _text(r.figures.satisfaction) if r.figures else None,
        )
        for r in computed.results
    ]
    ranking_rows = [
        (
            pid,
            period,
            group.ranking.parent,
            group.parent_name,
            group.ranking.level.value,
            entry.unit,
            units[entry.unit].name,
            units[entry.unit].path,
            f"{entry.score:f}",
            entry.rank,
            group.ranking.size,
            entry.previous_rank,
            entry.change,
            group.for_lists,
        )
        for group in computed.rankings
        for entry in group.ranking.entries
    ]
    list_rows = [
        (
            pid,
            period,
            e.list_code,
            e.list_name,
            e.polarity.value,
            e.parent,
            units[e.unit].level,
            e.unit,
            units[e.unit].name,
            units[e.unit].path,
            e.rank,
            e.size,
            f"{e.score:f}",
            e.reason[:300],
        )
        for e in computed.evaluation.lists
    ]
    now = utcnow()
    texts: dict[tuple[str, ...], str] = {}  # a rule's measures and addressees: the same for all it fires on

    def listed(values: tuple[str, ...]) -> str:
        found = texts.get(values)
        if found is None:
            found = texts[values] = _json(list(values))
        return found

    escalation_rows = [
        (
            pid,
            period,
            e.rule,
            e.name,
            units[e.unit].level,
            e.unit,
            units[e.unit].name,
            e.parent,
            units[e.unit].path,
            e.streak,
            listed(tuple(m.value for m in e.measures)),
            listed(tuple(e.addressees)),
            e.reason[:300],
            _json(dict(e.figures)),
            now,
            False,
        )
        for e in computed.evaluation.escalations
    ]
    for name, rows in (
        ("period_scores", score_rows),
        ("ranking_entries", ranking_rows),
        ("list_entries", list_rows),
        ("escalations", escalation_rows),
    ):
        await _insert_many(session, metadata.tables[name], WRITTEN[name], rows)


# The columns `_write` fills, in the order of its tuples.
WRITTEN: dict[str, tuple[str, ...]] = {
    "period_scores": (
        "publication_id",
        "period",
        "unit_code",
        "unit_name",
        "level",
        "parent_code",
        "town_code",
        "path",
        "score",
        "max_score",
        "unscored_reason",
        "components",
        "rounds",
        "rectification",
        "satisfaction",
    ),
    "ranking_entries": (
        "publication_id",
        "period",
        "parent_code",
        "parent_name",
        "level",
        "unit_code",
        "unit_name",
        "path",
        "score",
        "rank",
        "size",
        "previous_rank",
        "change",
        "for_lists",
    ),
    "list_entries": (
        "publication_id",
        "period",
        "list_code",
        "list_name",
        "polarity",
        "parent_code",
        "level",
        "unit_code",
        "unit_name",
        "path",
        "rank",
        "size",
        "score",
        "reason",
    ),
    "escalations": (
        "publication_id",
        "period",
        "rule_code",
        "rule_name",
        "level",
        "unit_code",
        "unit_name",
        "parent_code",
        "path",
        "streak",
        "measures",
        "addressees",
        "reason",
        "figures",
        "created_at",
        "acknowledged",
    ),
}

_stored_as_text: dict[str, Table] = {}


def _as_text(table: Table) -> Table:
    """`table` with its points and JSON columns typed as the text they are stored as (the rows carry that
    text already), for the inserts that are not COPY."""
    found = _stored_as_text.get(table.name)
    if found is None:
        columns = [
            Column(c.name, Text() if isinstance(c.type, Points | JSON) else c.type) for c in table.columns
        ]
        found = _stored_as_text[table.name] = Table(table.name, MetaData(), *columns)
    return found


async def _insert_many(
    session: AsyncSession, table: Table, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> None:
    """Rows into `table` in this transaction: by COPY on PostgreSQL (a province's 10⁵ units and their
    places take seconds as INSERTs), Core inserts in batches elsewhere."""
    if not records:
        return
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        plain = _as_text(table)
        for start in range(0, len(records), 5000):
            batch = [dict(zip(columns, record, strict=True)) for record in records[start : start + 5000]]
            await session.execute(insert(plain), batch)
        return
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # asyncpg's connection, in this session's transaction
    await driver.copy_records_to_table(table.name, records=records, columns=list(columns))


async def _rankings(
    session: AsyncSession, scope: str, period: Period
) -> tuple[dict[tuple[str, str], Ranking], set[tuple[str, str]]]:
    """A stored publication's rankings by (parent, level), as the pure core's Rankings, and which of them
    the lists were drawn from."""
    publication = await _stored(session, scope, period)
    if publication is None:
        return {}, set()
    grouped: dict[tuple[str, str], list[RankedUnit]] = defaultdict(list)
    for_lists: set[tuple[str, str]] = set()
    rows = await session.execute(
        select(
            col(RankingEntry.parent_code),
            col(RankingEntry.level),
            col(RankingEntry.unit_code),
            col(RankingEntry.score),
            col(RankingEntry.rank),
            col(RankingEntry.previous_rank),
            col(RankingEntry.change),
            col(RankingEntry.for_lists),
        )
        .where(col(RankingEntry.publication_id) == publication.id)
        .order_by(col(RankingEntry.id))
    )
    for parent, level, unit, score, rank, previous_rank, change, listed in rows:
        grouped[(parent, level)].append(RankedUnit(unit, score, rank, previous_rank, change))
        if listed:
            for_lists.add((parent, level))
    rankings = {
        (parent, level): Ranking(period, parent, UnitLevel(level), tuple(entries))
        for (parent, level), entries in grouped.items()
    }
    return rankings, for_lists


# ---- rule sets ----


async def _nearest_rules(session: AsyncSession, region_path: str) -> RuleSetVersion | None:
    """The newest stored rule set of the nearest region at or above `region_path` (one row, chosen in SQL:
    the deepest scope first, its newest version first); None where none is stored."""
    ancestors = [region_path[: i + 1] for i, ch in enumerate(region_path) if ch == "/"][1:]
    found: RuleSetVersion | None = (
        await session.execute(
            select(RuleSetVersion)
            .where(col(RuleSetVersion.scope_path).in_(ancestors))
            .order_by(func.length(col(RuleSetVersion.scope_path)).desc(), col(RuleSetVersion.version).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return found


async def applicable_rules(session: AsyncSession, scope_path: str) -> tuple[int | None, dict[str, Any]]:
    """The newest stored rule set of the nearest region at or above `scope_path`; the presets if none."""
    best = await _nearest_rules(session, scope_path)
    if best is None:
        return None, PRESET_BODY
    return best.version, best.body


@dataclass(frozen=True)
class CurrentRules:
    scope_code: str
    version: int | None  # None: the presets
    body: dict[str, Any]
    created_at: Any = None
    created_by: str | None = None
    note: str = ""


async def current_rules(session: AsyncSession, caller: Caller) -> CurrentRules:
    """The rules that apply to the caller's region now."""
    row = await _nearest_rules(session, caller.region_path)
    if row is None:
        return CurrentRules(caller.region, None, PRESET_BODY)
    return CurrentRules(row.scope_code, row.version, row.body, row.created_at, row.created_by, row.note)


async def replace_rules(
    session: AsyncSession, caller: Caller, body: dict[str, Any], note: str
) -> CurrentRules:
    """Store a new version of the caller's region's rules (the office's), checked first: nothing is
    stored when they do not hold together."""
    if caller.role is not Role.admin:
        raise Forbidden(
            "the list and escalation rules are the county office's (admin)", code="role_not_allowed"
        )
    try:
        rules: RuleSet = rule_set_from_body(body)
    except RuleSetError as exc:
        raise UnprocessableEntity(str(exc), code="rules_invalid") from exc
    problems = rules_problems(rules)
    if problems:
        raise UnprocessableEntity("; ".join(problems[:5]), code="rules_invalid", problems=problems)
    stored = rule_set_body(rules)
    latest = (
        await session.execute(
            select(col(RuleSetVersion.version))
            .where(col(RuleSetVersion.scope_code) == caller.region)
            .order_by(col(RuleSetVersion.version).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    row = RuleSetVersion(
        scope_code=caller.region,
        scope_path=caller.region_path,
        version=(latest or 0) + 1,
        body=stored,
        note=note,
        created_by=str(caller.subject),
    )
    try:
        async with savepoint(session, RuleSetVersion):
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "another change of the rules was stored at the same moment; reload and try again",
            code="concurrent_change",
        ) from exc
    return CurrentRules(row.scope_code, row.version, row.body, row.created_at, row.created_by, row.note)


# ---- reading ----


async def visible_publication(
    session: AsyncSession, caller: Caller, period: Period, scope: str | None
) -> Publication:
    """The publication of `period` the caller may read (of `scope`, or the broadest one overlapping the
    caller's region); 404 otherwise."""
    statement = select(Publication).where(
        col(Publication.period) == period.code, overlapping(col(Publication.scope_path), caller)
    )
    if scope is not None:
        statement = statement.where(col(Publication.scope_code) == scope)
    # The broadest first (the shortest scope path), the earliest of equals: one row, chosen in SQL.
    statement = statement.order_by(func.length(col(Publication.scope_path)), col(Publication.id)).limit(1)
    found: Publication | None = (await session.execute(statement)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no published period {period.code} in your region", code="period_not_published")
    return found


def whole(publication: Publication, caller: Caller) -> bool:
    """Whether the caller's region holds the publication's whole scope (it reads the stored summary)."""
    return publication.scope_path.startswith(caller.region_path)


async def summaries(
    session: AsyncSession, caller: Caller, publications: Sequence[Publication]
) -> dict[int, dict[str, Any]]:
    """Each publication's summary as the caller may read it: the stored one where the caller's region holds
    the scope, else counted over the caller's own subtree (a village reads its own figures, never the
    county's), in one statement per table for a page of publications."""
    summary = {p.id: dict(p.figures) for p in publications if p.id is not None and whole(p, caller)}
    partial = [p for p in publications if p.id is not None and p.id not in summary]
    if not partial:
        return summary
    ids = [p.id for p in partial]
    counted: dict[int, dict[str, Any]] = {
        p.id: {
            "scored": 0,
            "unscored": 0,
            "rankings": 0,
            "lists": {},
            "escalations": {},
            "issues_units": 0,
            "issues_read_at": p.figures.get("issues_read_at"),
        }
        for p in partial
        if p.id is not None
    }
    scores = await session.execute(
        select(
            col(PeriodScoreRow.publication_id),
            col(PeriodScoreRow.score).is_not(None),
            col(PeriodScoreRow.rectification).is_not(None),
            func.count(),
        )
        .where(col(PeriodScoreRow.publication_id).in_(ids), visible(col(PeriodScoreRow.path), caller))
        .group_by(
            col(PeriodScoreRow.publication_id),
            col(PeriodScoreRow.score).is_not(None),
            col(PeriodScoreRow.rectification).is_not(None),
        )
    )
    for publication_id, scored, with_figures, count in scores.all():
        figures = counted[int(publication_id)]
        figures["scored" if scored else "unscored"] += int(count)
        if with_figures:
            figures["issues_units"] += int(count)
    groups = await session.execute(
        select(col(RankingEntry.publication_id), col(RankingEntry.parent_code), col(RankingEntry.level))
        .where(col(RankingEntry.publication_id).in_(ids), visible(col(RankingEntry.path), caller))
        .distinct()
    )
    for publication_id, _parent, _level in groups.all():
        counted[int(publication_id)]["rankings"] += 1
    for model, code, key in (
        (ListEntryRow, col(ListEntryRow.list_code), "lists"),
        (EscalationRow, col(EscalationRow.rule_code), "escalations"),
    ):
        publication = col(model.publication_id)
        rows = await session.execute(
            select(publication, code, func.count())
            .where(publication.in_(ids), visible(col(model.path), caller))
            .group_by(publication, code)
            .order_by(publication, code)
        )
        for publication_id, rule, count in rows.all():
            counted[int(publication_id)][key][str(rule)] = int(count)
    return summary | counted


async def acknowledge(
    session: AsyncSession, caller: Caller, escalation_id: int, note: str | None
) -> EscalationRow:
    """Mark an escalation as acted upon (已处理), once; 409 the second time."""
    row = await visible_escalation(session, caller, escalation_id)
    if caller.role is not Role.admin:
        raise Forbidden("escalations are acknowledged by the county office (admin)", code="role_not_allowed")
    now, by = utcnow(), str(caller.subject)
    changed = await session.execute(
        update(EscalationRow)
        .where(col(EscalationRow.id) == escalation_id, col(EscalationRow.acknowledged).is_(False))
        .values(acknowledged=True, acknowledged_at=now, acknowledged_by=by, acknowledgement_note=note)
    )
    if getattr(changed, "rowcount", 0) != 1:
        raise Conflict(f"escalation {escalation_id} is already acknowledged", code="already_acknowledged")
    await session.refresh(row)
    return row


async def visible_escalation(session: AsyncSession, caller: Caller, escalation_id: int) -> EscalationRow:
    row = (
        await session.execute(
            select(EscalationRow).where(
                col(EscalationRow.id) == escalation_id, visible(col(EscalationRow.path), caller)
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"escalation {escalation_id} not found", code="escalation_not_found")
    return row


@dataclass(frozen=True)
class UnitHistory:
    unit_code: str
    unit_name: str
    level: str
    path: str
    scores: list[PeriodScoreRow]
    places: list[RankingEntry]
    lists: list[ListEntryRow]
    escalations: list[EscalationRow]
    breakdowns: dict[int, dict[str, Any]]  # round id → the round result's breakdown


async def unit_history(session: AsyncSession, caller: Caller, unit_code: str, limit: int) -> UnitHistory:
    """A unit's published scores, places, lists and escalations, newest first, with its rounds' breakdowns."""
    scores = list(
        (
            await session.execute(
                select(PeriodScoreRow)
                .where(col(PeriodScoreRow.unit_code) == unit_code, visible(col(PeriodScoreRow.path), caller))
                # Newest period first, whenever it was published (October may be published after November).
                .order_by(col(PeriodScoreRow.period).desc(), col(PeriodScoreRow.publication_id).desc())
                .limit(limit)
            )
        ).scalars()
    )
    if not scores:
        raise NotFound(f"no published scores of {unit_code} in your region", code="unit_not_found")
    publication_ids = [s.publication_id for s in scores]

    async def rows(model: Any, *order: Any) -> list[Any]:
        return list(
            (
                await session.execute(
                    select(model)
                    .where(model.unit_code == unit_code, model.publication_id.in_(publication_ids))
                    .order_by(model.publication_id.desc(), *order)
                )
            ).scalars()
        )

    places = await rows(RankingEntry, col(RankingEntry.id))
    lists = await rows(ListEntryRow, col(ListEntryRow.id))
    escalations = await rows(EscalationRow, col(EscalationRow.id))
    round_ids = sorted({int(line["round_id"]) for s in scores for line in s.rounds})
    breakdowns: dict[int, dict[str, Any]] = {}
    if round_ids:
        for result in (
            await session.execute(
                select(RoundResult).where(
                    col(RoundResult.round_id).in_(round_ids), col(RoundResult.unit_code) == unit_code
                )
            )
        ).scalars():
            breakdowns[result.round_id] = result.breakdown
    latest = scores[0]
    return UnitHistory(
        latest.unit_code,
        latest.unit_name,
        latest.level,
        latest.path,
        scores,
        places,
        lists,
        escalations,
        breakdowns,
    )


def streaks(lists: Iterable[ListEntryRow], periods: Sequence[str]) -> dict[str, int]:
    """On each list: in how many consecutive periods up to the newest one (of `periods`, newest first) the
    unit was on it (0 if not in the newest)."""
    by_list: dict[str, set[str]] = defaultdict(set)
    for entry in lists:
        by_list[entry.list_code].add(entry.period)
    result: dict[str, int] = {}
    for code, on in by_list.items():
        kind = parse_period(next(iter(on))).kind
        # Newest first by the period itself (codes of one kind sort as their periods do).
        mine = sorted((p for p in periods if parse_period(p).kind is kind), reverse=True)
        if not mine:
            continue
        count, expected = 0, parse_period(mine[0])
        while expected.code in on:
            count += 1
            expected = expected.previous()
        result[code] = count
    return result


# ---- weekly bulletins ----

BULLETIN_ISSUERS = frozenset({Role.admin, Role.inspector})


@dataclass(frozen=True)
class BulletinOutcome:
    bulletin: Bulletin
    created: bool


async def issue_weekly(
    session: AsyncSession, caller: Caller, feed: IssuesFeed, week_start: date, scope: str | None, today: date
) -> BulletinOutcome:
    """Issue the weekly bulletin (每周一通报) of a week that is over: the inspection rounds closed in it and
    each village's rectification rate; issuing it again answers the stored one."""
    if caller.role not in BULLETIN_ISSUERS:
        raise Forbidden("bulletins are issued by the office or the inspectors", code="role_not_allowed")
    if week_start.weekday() != 0:
        raise UnprocessableEntity(
            f"{week_start} is not a Monday: a week starts on Monday", code="not_a_monday"
        )
    week_end = week_start + timedelta(days=7)
    if week_end > today:
        raise Conflict(f"the week of {week_start} is not over yet", code="week_not_over")
    scope_code = scope or caller.region
    key = f"week:{week_start.isoformat()}"
    existing = (
        await session.execute(
            select(Bulletin).where(
                col(Bulletin.scope_code) == scope_code,
                col(Bulletin.key) == key,
                in_subtree(col(Bulletin.scope_path), caller),
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        return BulletinOutcome(existing, False)

    root = await feed.region(scope_code)
    if not root.path.startswith(caller.region_path):
        raise NotFound(f"region {scope_code} not found", code="region_not_found")
    nodes = await feed.snapshot(root, UnitLevel.village.value)
    starts_at = datetime.combine(week_start, time(), SHANGHAI)
    ends_at = datetime.combine(week_end, time(), SHANGHAI)
    year_start = datetime.combine(date(week_start.year, 1, 1), time(), SHANGHAI)
    counts = await feed.rectification(scope_code, year_start, ends_at, UnitLevel.village.value)

    rounds = list(
        (
            await session.execute(
                select(Round)
                .where(
                    col(Round.scope_code) == scope_code,
                    col(Round.kind) == Component.inspection.value,
                    col(Round.status) == RoundStatus.closed.value,
                    col(Round.closed_at) >= starts_at,
                    col(Round.closed_at) < ends_at,
                )
                .order_by(col(Round.ends_on), col(Round.id))
            )
        ).scalars()
    )
    inspections = []
    for round_ in rounds:
        names = {
            u.code: u
            for u in (
                await session.execute(select(RoundUnit).where(col(RoundUnit.round_id) == round_.id))
            ).scalars()
        }
        results = (
            await session.execute(
                select(RoundResult)
                .where(col(RoundResult.round_id) == round_.id)
                .order_by(col(RoundResult.score).desc(), col(RoundResult.unit_code))
            )
        ).scalars()
        inspections.append(
            {
                "round_id": round_.id,
                "name": round_.name,
                "window": round_.window,
                "period": round_.period,
                "entries": [
                    {
                        "unit_code": r.unit_code,
                        "unit_name": names[r.unit_code].name if r.unit_code in names else r.unit_code,
                        "path": r.unit_path,
                        "score": float(r.score),
                        "max_score": float(r.max_score),
                        "deducted": float(Decimal(r.max_score) - Decimal(r.score)),
                    }
                    for r in results
                ],
            }
        )
    villages = [(n.code, n.name, n.path) for n in nodes if n.level == UnitLevel.village.value]
    body = bulletins.weekly_body(
        scope={"code": root.code, "name": root.name},
        week_start=week_start,
        rounds=inspections,
        rates_from=year_start,
        rates_to=ends_at,
        villages=villages,
        figures={c: UnitFigures(r.found, r.fixed, r.overdue) for c, r in counts.items()},
    )
    bulletin = Bulletin(
        kind="weekly",
        key=key,
        title=bulletins.week_title(root.name, week_start),
        scope_code=root.code,
        scope_path=root.path,
        scope_name=root.name,
        week_start=week_start,
        body=body,
        issued_by=str(caller.subject),
    )
    try:
        async with savepoint(session, Bulletin):
            session.add(bulletin)
            await session.flush()
    except IntegrityError:
        winner = (
            await session.execute(
                select(Bulletin).where(col(Bulletin.scope_code) == root.code, col(Bulletin.key) == key)
            )
        ).scalar_one()
        return BulletinOutcome(winner, False)
    return BulletinOutcome(bulletin, True)


async def visible_bulletin(session: AsyncSession, caller: Caller, bulletin_id: int) -> Bulletin:
    row = (
        await session.execute(
            select(Bulletin).where(
                col(Bulletin.id) == bulletin_id, overlapping(col(Bulletin.scope_path), caller)
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"bulletin {bulletin_id} not found", code="bulletin_not_found")
    return row
