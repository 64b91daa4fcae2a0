"""Routes: publishing a period, rankings, red/black lists and their rules, escalations, a unit's history,
bulletins (JSON and .xlsx). Every read is cut to the caller's region subtree; what lies outside is 404."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement, Select, select
from sqlmodel import col

from services.kit.auth import Caller, require_scope
from services.kit.db import utcnow
from services.kit.errors import problem_docs
from services.kit.exports import XLSX_MEDIA_TYPE, attachment, xlsx_chunks
from services.kit.fields import OptionalQueryBool
from services.kit.identity import Scope
from services.kit.pagination import PageDep, paginate
from services.scoring.deps import IssuesFeedDep, SessionDep, SettingsDep
from services.scoring.levels import UnitLevel, one_of
from services.scoring.lists.rules import MEASURE_NAMES, Measure
from services.scoring.periods import PERIOD_PATTERN, SHANGHAI, parse_period
from services.scoring.publishing import bulletins, service
from services.scoring.publishing.models import (
    Bulletin,
    EscalationRow,
    ListEntryRow,
    Publication,
    RankingEntry,
)
from services.scoring.publishing.rulesets import PRESET_BODY
from services.scoring.publishing.schemas import (
    AcknowledgeRequest,
    BulletinPage,
    BulletinPublic,
    BulletinSummary,
    EscalationPage,
    EscalationPublic,
    ListEntryPublic,
    ListPage,
    PeriodScorePublic,
    PublicationPage,
    PublicationPublic,
    PublishRequest,
    RankingEntryPublic,
    RankingPage,
    RegionRef,
    RuleSetPublic,
    RuleSetUpdate,
    UnitHistoryPublic,
    WeeklyBulletinRequest,
)

router = APIRouter(tags=["rankings"])

Reader = Annotated[Caller, Depends(require_scope(Scope.scoring_read))]
Writer = Annotated[Caller, Depends(require_scope(Scope.scoring_write))]
PeriodPath = Annotated[
    str,
    Path(
        max_length=8,
        pattern=PERIOD_PATTERN,
        description="`2026-11` (a month), `2026-Q4` (a quarter) or `2026` (a year).",
    ),
]
Code = Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z-]+$")]
PeriodQuery = Annotated[
    str | None, Query(max_length=8, pattern=PERIOD_PATTERN, description="`2026-11`, `2026-Q4` or `2026`.")
]


def _key(column: Any) -> ColumnElement[Any]:
    """A model's id as the keyset pagination's key."""
    return cast("ColumnElement[Any]", col(column))


def _publication(row: Publication, bulletin_id: int | None, summary: dict[str, Any]) -> PublicationPublic:
    assert row.id is not None
    return PublicationPublic(
        id=row.id,
        period=row.period,
        kind=row.kind,
        label=parse_period(row.period).label,
        scope=RegionRef(code=row.scope_code, name=row.scope_name),
        published_at=row.published_at,
        published_by=row.published_by,
        rubric=row.rubric,
        rule_set_version=row.rule_set_version,
        rounds=row.rounds,
        summary=summary,
        bulletin_id=bulletin_id,
    )


PUBLISH_DOC = """\
Combines the period's closed rounds of `scope` (default: the caller's region) by the rubric's weights with
the rectification rate and the satisfaction rating read from the issues service's statistics, ranks the
units within their parent regions (villages within the scope and within their town, towns within the
scope; equal scores ranked alike, 1, 2, 2, 4; the change since the previous period), writes the lists and
one escalation record per rule that fires, issues the period's bulletin, and freezes it all.

The first call answers 201; any later one (also a concurrent one) answers 200 with the same body and
changes nothing. 409 `rounds_open` while a round of the period is still open, 409 `nothing_to_publish`
without closed rounds; 404 `scope_not_found` for a scope without rounds in the caller's region; 503
`issues_unavailable` (nothing stored) when the issues service cannot be read. For the office (admin).
"""


@router.post(
    "/v1/periods/{period}/publish",
    response_model=PublicationPublic,
    status_code=201,
    summary="Publish a period (发布): scores, rankings, lists, escalations, bulletin",
    description=PUBLISH_DOC,
    responses={
        200: {"description": "Already published: the stored publication", "model": PublicationPublic},
        **problem_docs(403, 409, 503),
    },
)
async def publish_period(
    session: SessionDep,
    caller: Writer,
    feed: IssuesFeedDep,
    response: Response,
    period: PeriodPath,
    body: Annotated[
        PublishRequest | None,
        Body(openapi_examples={"county": {"summary": "A county's villages", "value": {"scope": "370282"}}}),
    ] = None,
) -> PublicationPublic:
    outcome = await service.publish(session, caller, feed, period, body.scope if body else None)
    if not outcome.created:
        response.status_code = 200
    return _publication(outcome.publication, outcome.bulletin_id, outcome.publication.figures)


@router.get(
    "/v1/periods",
    response_model=PublicationPage,
    summary="Published periods overlapping the caller's region, newest first",
    description="A period published for a scope above the caller's region (a county's, read by a town or "
    "a village) is listed with its `summary` counted over the caller's own subtree only.",
)
async def list_periods(
    session: SessionDep,
    caller: Reader,
    page: PageDep,
    kind: Annotated[str | None, Query(pattern=r"^(month|quarter|year)$")] = None,
) -> PublicationPage:
    statement = select(Publication).where(service.overlapping(col(Publication.scope_path), caller))
    if kind:
        statement = statement.where(col(Publication.kind) == kind)
    result = await paginate(
        session, statement, [_key(Publication.id)], page, lambda r: r, lambda r: [r.id], descending=True
    )
    rows: list[Publication] = result.items
    ids = [row.id for row in rows if row.id is not None]
    bulletins = await service.bulletin_ids(session, ids)
    summaries = await service.summaries(session, caller, rows)
    items = [_publication(row, bulletins.get(row.id or 0), summaries[row.id or 0]) for row in rows]
    return PublicationPage(items=items, next_cursor=result.next_cursor, limit=result.limit)


@router.get(
    "/v1/periods/{period}",
    response_model=PublicationPublic,
    summary="A published period",
    description="The broadest publication of `period` overlapping the caller's region (or the one of "
    "`scope`); 404 `period_not_published` otherwise. A reader below the publication's scope (a town or a "
    "village of a county's period) gets the `summary` counted over its own subtree: its units scored and "
    "unscored, the rankings they are in, their list entries and escalations; never the whole scope's.",
)
async def get_period(
    session: SessionDep, caller: Reader, period: PeriodPath, scope: Code = None
) -> PublicationPublic:
    row = await service.visible_publication(session, caller, service.parse_period_or_422(period), scope)
    assert row.id is not None
    summary = (await service.summaries(session, caller, [row]))[row.id]
    return _publication(row, await service.bulletin_id(session, row.id), summary)


# ---- rankings ----


def _ranking(row: RankingEntry) -> RankingEntryPublic:
    return RankingEntryPublic(
        period=row.period,
        parent=RegionRef(code=row.parent_code, name=row.parent_name),
        level=row.level,
        unit=RegionRef(code=row.unit_code, name=row.unit_name),
        score=float(row.score),
        rank=row.rank,
        size=row.size,
        previous_rank=row.previous_rank,
        change=row.change,
        for_lists=row.for_lists,
    )


def _period_filter(statement: Select[Any], column: Any, period: str | None) -> Select[Any]:
    if period is None:
        return statement
    return statement.where(column == service.parse_period_or_422(period).code)


@router.get(
    "/v1/rankings",
    response_model=RankingPage,
    summary="Rankings of published periods (排名), best first within each parent region",
    description="Entries of the units in the caller's subtree, in ranking order (publication, parent, "
    "level, rank). Filters: `period`, `parent` (the region ranked within), `level` (`village`, `town`), "
    "`for_lists` (only the rankings the lists are drawn from).",
)
async def rankings(
    session: SessionDep,
    caller: Reader,
    page: PageDep,
    period: PeriodQuery = None,
    parent: Code = None,
    level: Annotated[str | None, Query(pattern=one_of(UnitLevel))] = None,
    for_lists: Annotated[OptionalQueryBool, Query()] = None,
) -> RankingPage:
    statement = _period_filter(select(RankingEntry), col(RankingEntry.period), period).where(
        service.visible(col(RankingEntry.path), caller)
    )
    if parent:
        statement = statement.where(col(RankingEntry.parent_code) == parent)
    if level:
        statement = statement.where(col(RankingEntry.level) == level)
    if for_lists is not None:
        statement = statement.where(col(RankingEntry.for_lists).is_(for_lists))
    result = await paginate(session, statement, [_key(RankingEntry.id)], page, _ranking, lambda r: [r.id])
    return RankingPage(items=result.items, next_cursor=result.next_cursor, limit=result.limit)


# ---- lists and their rules ----


def _list_entry(row: ListEntryRow) -> ListEntryPublic:
    return ListEntryPublic(
        period=row.period,
        list_code=row.list_code,
        list_name=row.list_name,
        polarity=row.polarity,
        parent_code=row.parent_code,
        level=row.level,
        unit=RegionRef(code=row.unit_code, name=row.unit_name),
        rank=row.rank,
        size=row.size,
        score=float(row.score),
        reason=row.reason,
    )


@router.get(
    "/v1/lists",
    response_model=ListPage,
    summary="Red and black lists (红黑榜) and the other lists of published periods",
    description="Entries of the units in the caller's subtree. Filters: `period`, `list` (a list code such "
    "as `black-monthly`), `polarity` (`good`, `bad`), `unit`.",
)
async def lists(
    session: SessionDep,
    caller: Reader,
    page: PageDep,
    period: PeriodQuery = None,
    list_code: Annotated[str | None, Query(alias="list", max_length=48)] = None,
    polarity: Annotated[str | None, Query(pattern=r"^(good|bad)$")] = None,
    unit: Code = None,
) -> ListPage:
    statement = _period_filter(select(ListEntryRow), col(ListEntryRow.period), period).where(
        service.visible(col(ListEntryRow.path), caller)
    )
    if list_code:
        statement = statement.where(col(ListEntryRow.list_code) == list_code)
    if polarity:
        statement = statement.where(col(ListEntryRow.polarity) == polarity)
    if unit:
        statement = statement.where(col(ListEntryRow.unit_code) == unit)
    result = await paginate(session, statement, [_key(ListEntryRow.id)], page, _list_entry, lambda r: [r.id])
    return ListPage(items=result.items, next_cursor=result.next_cursor, limit=result.limit)


def _rules(current: service.CurrentRules) -> RuleSetPublic:
    return RuleSetPublic(
        scope_code=current.scope_code,
        version=current.version,
        preset=current.version is None,
        note=current.note,
        created_at=current.created_at,
        created_by=current.created_by,
        rules=current.body,
    )


@router.get(
    "/v1/lists/rules",
    response_model=RuleSetPublic,
    summary="The list and escalation rules that apply to the caller's region",
)
async def get_rules(session: SessionDep, caller: Reader) -> RuleSetPublic:
    return _rules(await service.current_rules(session, caller))


@router.get(
    "/v1/lists/rules/presets",
    response_model=RuleSetPublic,
    summary="The seeds' rules, shipped as presets",
)
async def get_presets(caller: Reader) -> RuleSetPublic:
    return RuleSetPublic(
        scope_code=caller.region,
        version=None,
        preset=True,
        note="",
        created_at=None,
        created_by=None,
        rules=PRESET_BODY,
    )


@router.put(
    "/v1/lists/rules",
    response_model=RuleSetPublic,
    summary="Store a new version of the caller's region's rules (admin)",
    description="The whole rule set, checked as a whole (422 `rules_invalid` with every problem, nothing "
    "stored); publications already made keep the rules they applied.",
    responses=problem_docs(403, 409),
)
async def put_rules(session: SessionDep, caller: Writer, body: RuleSetUpdate) -> RuleSetPublic:
    return _rules(await service.replace_rules(session, caller, body.rules, body.note))


# ---- escalations ----


def _escalation(row: EscalationRow) -> EscalationPublic:
    assert row.id is not None
    return EscalationPublic(
        id=row.id,
        period=row.period,
        rule_code=row.rule_code,
        rule_name=row.rule_name,
        level=row.level,
        unit=RegionRef(code=row.unit_code, name=row.unit_name),
        parent_code=row.parent_code,
        streak=row.streak,
        measures=row.measures,
        measure_names=[MEASURE_NAMES[Measure(m)] for m in row.measures],
        addressees=row.addressees,
        reason=row.reason,
        figures=row.figures,
        created_at=row.created_at,
        acknowledged=row.acknowledged,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        acknowledgement_note=row.acknowledgement_note,
    )


@router.get(
    "/v1/escalations",
    response_model=EscalationPage,
    summary="Escalations (约谈, 书面检查, 组织处理 …) of published periods",
    description="Of the units in the caller's subtree. Filters: `period`, `rule`, `unit`, `acknowledged`.",
)
async def escalations(
    session: SessionDep,
    caller: Reader,
    page: PageDep,
    period: PeriodQuery = None,
    rule: Annotated[str | None, Query(max_length=48)] = None,
    unit: Code = None,
    acknowledged: Annotated[OptionalQueryBool, Query()] = None,
) -> EscalationPage:
    statement = _period_filter(select(EscalationRow), col(EscalationRow.period), period).where(
        service.visible(col(EscalationRow.path), caller)
    )
    if rule:
        statement = statement.where(col(EscalationRow.rule_code) == rule)
    if unit:
        statement = statement.where(col(EscalationRow.unit_code) == unit)
    if acknowledged is not None:
        statement = statement.where(col(EscalationRow.acknowledged).is_(acknowledged))
    result = await paginate(session, statement, [_key(EscalationRow.id)], page, _escalation, lambda r: [r.id])
    return EscalationPage(items=result.items, next_cursor=result.next_cursor, limit=result.limit)


@router.get("/v1/escalations/{escalation_id}", response_model=EscalationPublic, summary="One escalation")
async def get_escalation(
    session: SessionDep, caller: Reader, escalation_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> EscalationPublic:
    return _escalation(await service.visible_escalation(session, caller, escalation_id))


@router.post(
    "/v1/escalations/{escalation_id}/acknowledge",
    response_model=EscalationPublic,
    summary="Acknowledge an escalation: the office has acted on it (admin)",
    description="Once: a second acknowledgement is 409 `already_acknowledged` and changes nothing.",
    responses=problem_docs(403, 409),
)
async def acknowledge_escalation(
    session: SessionDep,
    caller: Writer,
    escalation_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: Annotated[
        AcknowledgeRequest | None,
        Body(
            openapi_examples={
                "interviewed": {"summary": "约谈", "value": {"note": "12月3日已约谈村支部书记"}}
            }
        ),
    ] = None,
) -> EscalationPublic:
    return _escalation(await service.acknowledge(session, caller, escalation_id, body.note if body else None))


# ---- a unit's history ----


@router.get(
    "/v1/rankings/units/{code}",
    response_model=UnitHistoryPublic,
    summary="A unit's history: scores per period, places, streaks, lists, escalations, breakdowns",
    description="Newest period first (at most `limit` periods). 404 `unit_not_found` for a unit outside "
    "the caller's subtree or never published.",
)
async def unit_history(
    session: SessionDep,
    caller: Reader,
    code: Annotated[str, Path(max_length=32, pattern=r"^[0-9A-Za-z-]+$")],
    limit: Annotated[int, Query(ge=1, le=120)] = 24,
) -> UnitHistoryPublic:
    history = await service.unit_history(session, caller, code, limit)
    places: dict[int, list[dict[str, Any]]] = {}
    for place in history.places:
        places.setdefault(place.publication_id, []).append(
            {
                "parent_code": place.parent_code,
                "parent_name": place.parent_name,
                "level": place.level,
                "rank": place.rank,
                "size": place.size,
                "previous_rank": place.previous_rank,
                "change": place.change,
                "for_lists": place.for_lists,
            }
        )
    periods = [s.period for s in history.scores]
    return UnitHistoryPublic(
        unit=RegionRef(code=history.unit_code, name=history.unit_name),
        level=history.level,
        periods=[
            PeriodScorePublic(
                period=s.period,
                score=None if s.score is None else float(s.score),
                max_score=float(s.max_score),
                unscored_reason=s.unscored_reason,
                components=s.components,
                rounds=s.rounds,
                rectification=s.rectification,
                satisfaction=None if s.satisfaction is None else float(s.satisfaction),
                places=places.get(s.publication_id, []),
            )
            for s in history.scores
        ],
        streaks=service.streaks(history.lists, periods),
        lists=[_list_entry(e) for e in history.lists],
        escalations=[_escalation(e) for e in history.escalations],
        breakdowns={str(k): v for k, v in sorted(history.breakdowns.items())},
    )


# ---- bulletins ----

bulletin_router = APIRouter(tags=["bulletins"])


def _summary(row: Bulletin) -> BulletinSummary:
    assert row.id is not None
    return BulletinSummary(
        id=row.id,
        kind=row.kind,
        title=row.title,
        scope=RegionRef(code=row.scope_code, name=row.scope_name),
        period=row.period,
        week_start=row.week_start,
        issued_at=row.issued_at,
        issued_by=row.issued_by,
    )


def _bulletin(row: Bulletin, caller: Caller) -> BulletinPublic:
    whole = row.scope_path.startswith(caller.region_path)
    return BulletinPublic(
        **_summary(row).model_dump(),
        partial=not whole,
        body=bulletins.visible_body(row.body, caller.region_path, whole),
    )


@bulletin_router.get(
    "/v1/bulletins",
    response_model=BulletinPage,
    summary="Bulletins (通报) overlapping the caller's region, newest first",
    description="Filters: `kind` (`weekly`, `period`), `period`.",
)
async def list_bulletins(
    session: SessionDep,
    caller: Reader,
    page: PageDep,
    kind: Annotated[str | None, Query(pattern=r"^(weekly|period)$")] = None,
    period: PeriodQuery = None,
) -> BulletinPage:
    statement = _period_filter(select(Bulletin), col(Bulletin.period), period).where(
        service.overlapping(col(Bulletin.scope_path), caller)
    )
    if kind:
        statement = statement.where(col(Bulletin.kind) == kind)
    result = await paginate(
        session, statement, [_key(Bulletin.id)], page, _summary, lambda r: [r.id], descending=True
    )
    return BulletinPage(items=result.items, next_cursor=result.next_cursor, limit=result.limit)


@bulletin_router.post(
    "/v1/bulletins/weekly",
    response_model=BulletinPublic,
    status_code=201,
    summary="Issue the weekly bulletin (每周一通报) of a week that is over",
    description="The inspection rounds of the scope closed in the week, each unit's score, and each "
    "village's rectification rate from 1 January to the week's end, read from the issues service and "
    "frozen. Issuing the same week again answers the stored bulletin (200). 422 `not_a_monday`, 409 "
    "`week_not_over`; 503 `issues_unavailable` (nothing stored). Office and inspectors.",
    responses={
        200: {"description": "Already issued", "model": BulletinPublic},
        **problem_docs(403, 409, 503),
    },
)
async def issue_weekly(
    session: SessionDep,
    caller: Writer,
    feed: IssuesFeedDep,
    response: Response,
    body: WeeklyBulletinRequest,
) -> BulletinPublic:
    today = utcnow().astimezone(SHANGHAI).date()
    outcome = await service.issue_weekly(session, caller, feed, body.week_start, body.scope, today)
    if not outcome.created:
        response.status_code = 200
    return _bulletin(outcome.bulletin, caller)


BulletinId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@bulletin_router.get(
    "/v1/bulletins/{bulletin_id:int}.xlsx",
    summary="One bulletin as a spreadsheet (Chinese headers, one sheet per list)",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX_MEDIA_TYPE: {}}, "description": "The .xlsx file"}},
)
async def bulletin_xlsx(
    session: SessionDep, caller: Reader, settings: SettingsDep, bulletin_id: BulletinId
) -> StreamingResponse:
    row = await service.visible_bulletin(session, caller, bulletin_id)
    body = _bulletin(row, caller).body
    return StreamingResponse(
        xlsx_chunks(bulletins.sheets(body), settings.data_dir / "tmp"),
        media_type=XLSX_MEDIA_TYPE,
        headers=attachment(f"{row.title}.xlsx"),
    )


@bulletin_router.get(
    "/v1/bulletins/{bulletin_id:int}", response_model=BulletinPublic, summary="One bulletin, as issued"
)
async def get_bulletin(session: SessionDep, caller: Reader, bulletin_id: BulletinId) -> BulletinPublic:
    return _bulletin(await service.visible_bulletin(session, caller, bulletin_id), caller)
