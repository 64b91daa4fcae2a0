"""Round, scorecard and result routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.kit.auth import Caller, require_scope
from services.kit.errors import problem_doc, problem_docs
from services.kit.identity import Scope
from services.kit.pagination import Page, PageDep
from services.scoring.deps import IssuesFeedDep, MediaPeerDep, OutboxDep, SessionDep
from services.scoring.levels import RegionLevel, UnitLevel, one_of
from services.scoring.periods import PERIOD_PATTERN
from services.scoring.rounds import scorecards, service
from services.scoring.rounds.models import RoundKind, RoundStatus
from services.scoring.rounds.schemas import (
    REGION_CODE,
    MonthlyInspectionsCreate,
    RoundCreate,
    RoundPair,
    RoundPublic,
    RoundResultPublic,
    RoundUnitPublic,
    RoundUpdate,
    ScorecardBody,
    ScorecardCreate,
    ScorecardPublic,
    ScorecardRevisionPublic,
)

router = APIRouter(tags=["rounds"])

ReaderDep = Annotated[Caller, Depends(require_scope(Scope.scoring_read))]
WriterDep = Annotated[Caller, Depends(require_scope(Scope.scoring_write))]
RoundId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The round's id.")]
# The levels a round's snapshot holds: its scope and what lies below it down to villages (never grids).
SNAPSHOT_LEVELS = one_of(level for level in RegionLevel if level.depth <= RegionLevel.village.depth)
UnitCode = Annotated[str, Path(pattern=REGION_CODE, description="A unit's region code.")]


def _problem(status_code: int, code: str, text: str) -> dict[int | str, dict[str, Any]]:
    return {status_code: problem_doc(text, code, status_code)}


_ROUND_404 = _problem(404, "round_not_found", "No such round, or it neither covers nor lies in your region")
_UNIT_404 = _problem(
    404,
    "unit_not_found",
    "No such round or unit, the unit outside your region, or (reading or changing one) no scorecard of it "
    "(`round_not_found`, `unit_not_found`, `scorecard_not_found`)",
)
_CLOSED = _problem(409, "round_closed", "The round is closed: its scorecards and scores are frozen")
_ISSUES_503 = _problem(
    503, "issues_unavailable", "The issues service cannot be read (down, 5xx, timeout): nothing was changed"
)
_WRITERS = (
    "Needs `scoring:write` (inspectors, the county office) and a home region that holds the whole scope "
    "(403 `round_beyond_region` otherwise)."
)
_VISIBILITY = (
    "A round is visible to callers whose region lies in its scope (a village of a county round) or holds it; "
    "otherwise 404 `round_not_found`. Per-unit data (snapshot, scorecards, scores) is limited to the units "
    "in the caller's own subtree: a village sees its own, a town its villages."
)


@router.post(
    "/v1/rounds",
    response_model=RoundPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a round",
    description="Takes a snapshot of the scope's region tree from the issues service (towns, 管区 and "
    "villages down to `unit_level`, as they are now: a village renamed later keeps its name in this "
    "round) and freezes the rubric (it can no longer change; a change makes a new version). Inspection "
    "rounds are per month, 上旬 (`window=first`) or 下旬 (`second`); a month's inspection of a scope and "
    "level exists once (409 `round_exists`). 422 `invalid_round` (kind, period, window and days that do not "
    "fit), `rubric_not_found`, `scope_below_units`, `scope_has_no_units`; the scope outside your region: "
    "404 `region_not_found`. " + _WRITERS,
    responses={
        **problem_docs(403, 409),
        **_problem(404, "region_not_found", "The scope region does not exist or is outside your region"),
        **_ISSUES_503,
    },
)
async def create_round(
    body: RoundCreate, session: SessionDep, caller: WriterDep, feed: IssuesFeedDep, response: Response
) -> RoundPublic:
    round_ = await service.create_round(session, caller, feed, body)
    response.headers["Location"] = f"/v1/rounds/{round_.id}"
    return await service.round_public(session, round_)


@router.post(
    "/v1/rounds/monthly",
    response_model=RoundPair,
    status_code=status.HTTP_201_CREATED,
    summary="Create a month's two inspection rounds (上旬, 下旬)",
    description="One snapshot, two rounds (1st–15th and 16th to the month's end), both or neither (409 "
    "`round_exists` when either exists). Otherwise as `POST /v1/rounds`: 422 `invalid_round`, "
    "`rubric_not_found`, `scope_below_units`, `scope_has_no_units`; the scope outside your region: 404 "
    "`region_not_found`. " + _WRITERS,
    responses={
        **problem_docs(403, 409),
        **_problem(404, "region_not_found", "The scope region does not exist or is outside your region"),
        **_ISSUES_503,
    },
)
async def create_month(
    body: MonthlyInspectionsCreate, session: SessionDep, caller: WriterDep, feed: IssuesFeedDep
) -> RoundPair:
    rounds = await service.create_month(session, caller, feed, body)
    return RoundPair(items=[await service.round_public(session, r) for r in rounds])


@router.get(
    "/v1/rounds",
    response_model=Page[RoundPublic],
    summary="List rounds",
    description="Newest first, in cursor pages. " + _VISIBILITY,
    responses=problem_docs(403),
)
async def list_rounds(
    session: SessionDep,
    caller: ReaderDep,
    page: PageDep,
    kind: Annotated[RoundKind | None, Query()] = None,
    period: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="`2026-11`, `2026-Q4`, `2026`.")
    ] = None,
    status_: Annotated[RoundStatus | None, Query(alias="status")] = None,
    unit_level: Annotated[UnitLevel | None, Query()] = None,
    scope: Annotated[
        str | None, Query(pattern=REGION_CODE, description="Rounds of exactly this scope.")
    ] = None,
) -> Page[RoundPublic]:
    filters = service.RoundFilters(
        kind=kind, period=period, status=status_, unit_level=unit_level, scope=scope
    )
    return await service.list_rounds(session, caller, filters, page)


@router.get(
    "/v1/rounds/{round_id:int}",
    response_model=RoundPublic,
    summary="A round",
    description=_VISIBILITY,
    responses={**problem_docs(403), **_ROUND_404},
)
async def read_round(round_id: RoundId, session: SessionDep, caller: ReaderDep) -> RoundPublic:
    return await service.round_public(session, await service.get_visible(session, caller, round_id))


@router.patch(
    "/v1/rounds/{round_id:int}",
    response_model=RoundPublic,
    summary="Rename an open round or move its days",
    description="The days stay within the round's period (or its window) and start no later than they end "
    "(422 `invalid_round`). A closed round: 409 `round_closed`, nothing changed. " + _WRITERS,
    responses={**problem_docs(403), **_ROUND_404, **_CLOSED},
)
async def change_round(
    round_id: RoundId, body: RoundUpdate, session: SessionDep, caller: WriterDep
) -> RoundPublic:
    return await service.round_public(session, await service.change_round(session, caller, round_id, body))


@router.post(
    "/v1/rounds/{round_id:int}/close",
    response_model=RoundPublic,
    summary="Close a round: score every unit and freeze it",
    description="Reads the verified issues (立案: assigned, submitted or closed; not rejected, not awaiting "
    "verification) reported in the scope between the round's first and last day (Beijing time) from the "
    "issues service in bulk (one call to its feed, `GET /v1/feed/issues`), deducts them by the rubric's "
    "rules (capped per indicator), subtracts the scorecards' item deductions, and stores each unit's round "
    "score (never below 0) with its breakdown. An inspection round scores every unit of its snapshot (a unit "
    "without a scorecard loses only the automatic deductions); a covert, third-party or satisfaction round "
    "scores the units it has scorecards for, and a satisfaction round deducts no issues. Then the round is "
    "frozen: scorecards and the round answer 409 `round_closed`. Closing a closed round changes nothing "
    "and answers the same. The issues service down or answering 5xx: 503 `issues_unavailable`, nothing "
    "stored. " + _WRITERS,
    responses={**problem_docs(403), **_ROUND_404, **_ISSUES_503},
)
async def close_round(
    round_id: RoundId, session: SessionDep, caller: WriterDep, feed: IssuesFeedDep
) -> RoundPublic:
    outcome = await service.close_round(session, caller, feed, round_id)
    return await service.round_public(session, outcome.round)


@router.get(
    "/v1/rounds/{round_id:int}/units",
    response_model=Page[RoundUnitPublic],
    summary="The round's region snapshot",
    description="The regions as they were when the round was created, by code; `level` filters. "
    + _VISIBILITY,
    responses={**problem_docs(403), **_ROUND_404},
)
async def list_units(
    round_id: RoundId,
    session: SessionDep,
    caller: ReaderDep,
    page: PageDep,
    level: Annotated[str | None, Query(pattern=SNAPSHOT_LEVELS)] = None,
) -> Page[RoundUnitPublic]:
    return await service.list_units(session, caller, round_id, page, level=level)


@router.get(
    "/v1/rounds/{round_id:int}/results",
    response_model=Page[RoundResultPublic],
    summary="The units' scores in a closed round",
    description="By unit code, each with its breakdown: per indicator, the inspector's item deductions and "
    "every automatic deduction with the issue behind it. An open round has none yet: 409 `round_open`. "
    + _VISIBILITY,
    responses={**problem_docs(403), **_ROUND_404, **_problem(409, "round_open", "The round is still open")},
)
async def list_results(
    round_id: RoundId, session: SessionDep, caller: ReaderDep, page: PageDep
) -> Page[RoundResultPublic]:
    return await service.list_results(session, caller, round_id, page)


@router.get(
    "/v1/rounds/{round_id:int}/results/{unit_code}",
    response_model=RoundResultPublic,
    summary="A unit's score in a closed round, with its breakdown",
    description="404 `result_not_found` for a unit without a score or outside your region. " + _VISIBILITY,
    responses={
        **problem_docs(403),
        **_problem(
            404,
            "result_not_found",
            "No score of this unit that you may see (`result_not_found`), or no such round (`round_not_found`)",
        ),
        **_problem(409, "round_open", "The round is still open"),
    },
)
async def read_result(
    round_id: RoundId, unit_code: UnitCode, session: SessionDep, caller: ReaderDep
) -> RoundResultPublic:
    return await service.get_result(session, caller, round_id, unit_code)


# ---- scorecards ----

_PHOTOS = (
    "Photos: ids from the media service, uploaded with purpose `scorecard` by you or in the unit's subtree "
    "(the unit itself or a grid of it), not evidence of anything else (422 `photos_refused` naming each "
    "photo refused and why); they are pinned to the scorecard after the commit. Media unreachable: 503 "
    "`media_unavailable`; the issues service unreachable where a photo's region must be placed: 503 "
    "`issues_unavailable`."
)
_CARD_RULES = (
    "Items are checked against the round's rubric: known indicators, deductions and scores within the "
    "indicator's points, a score given once per indicator and not beside deductions (422 `invalid_scorecard`, "
    "every problem listed; nothing stored). "
)
_CARD_WRITE = {
    **problem_docs(403),
    **_UNIT_404,
    **_CLOSED,
    **_problem(422, "invalid_scorecard", "The items do not fit the rubric, or the photos are refused"),
    **_problem(503, "media_unavailable", "The media service cannot check the photos"),
}


@router.post(
    "/v1/rounds/{round_id:int}/scorecards",
    response_model=ScorecardPublic,
    status_code=status.HTTP_201_CREATED,
    summary="File a unit's scorecard",
    description="One per unit per round (409 `scorecard_exists`: change it with PUT), while the round is open "
    "(409 `round_closed`). The unit must be one of the round's snapshot in your region (404 `unit_not_found`). "
    + _CARD_RULES
    + _PHOTOS
    + " Needs `scoring:write`.",
    responses={**_CARD_WRITE, **_problem(409, "scorecard_exists", "The unit has a scorecard in this round")},
)
async def file_scorecard(
    round_id: RoundId,
    body: ScorecardCreate,
    session: SessionDep,
    caller: WriterDep,
    media: MediaPeerDep,
    feed: IssuesFeedDep,
    outbox: OutboxDep,
    response: Response,
) -> ScorecardPublic:
    content = ScorecardBody(items=body.items, notes=body.notes, photo_ids=body.photo_ids)
    card, unit = await scorecards.file_scorecard(
        session, caller, media, feed, outbox, round_id, body.unit_code, content
    )
    response.headers["Location"] = f"/v1/rounds/{round_id}/scorecards/{unit.code}"
    return scorecards.scorecard_public(card, unit.name)


@router.get(
    "/v1/rounds/{round_id:int}/scorecards",
    response_model=Page[ScorecardPublic],
    summary="The round's scorecards",
    description="By unit code. " + _VISIBILITY,
    responses={**problem_docs(403), **_ROUND_404},
)
async def list_scorecards(
    round_id: RoundId, session: SessionDep, caller: ReaderDep, page: PageDep
) -> Page[ScorecardPublic]:
    return await scorecards.list_scorecards(session, caller, round_id, page)


@router.get(
    "/v1/rounds/{round_id:int}/scorecards/{unit_code}",
    response_model=ScorecardPublic,
    summary="A unit's scorecard",
    description=_VISIBILITY,
    responses={**problem_docs(403), **_UNIT_404},
)
async def read_scorecard(
    round_id: RoundId, unit_code: UnitCode, session: SessionDep, caller: ReaderDep
) -> ScorecardPublic:
    card, unit = await scorecards.read_scorecard(session, caller, round_id, unit_code)
    return scorecards.scorecard_public(card, unit.name)


@router.put(
    "/v1/rounds/{round_id:int}/scorecards/{unit_code}",
    response_model=ScorecardPublic,
    summary="Change a unit's scorecard",
    description="Replaces items, notes and photos while the round is open (409 `round_closed` after); every "
    "change is a new revision, kept in the history (the same content again changes nothing). Checked in "
    "this order: the round and the unit in your region, the round open, a scorecard of the unit to change "
    "(404 `scorecard_not_found`, whatever the body), the items, then the photos with media. "
    + _CARD_RULES
    + _PHOTOS
    + " Needs `scoring:write`.",
    responses=_CARD_WRITE,
)
async def change_scorecard(
    round_id: RoundId,
    unit_code: UnitCode,
    body: ScorecardBody,
    session: SessionDep,
    caller: WriterDep,
    media: MediaPeerDep,
    feed: IssuesFeedDep,
    outbox: OutboxDep,
) -> ScorecardPublic:
    card, unit = await scorecards.change_scorecard(
        session, caller, media, feed, outbox, round_id, unit_code, body
    )
    return scorecards.scorecard_public(card, unit.name)


@router.get(
    "/v1/rounds/{round_id:int}/scorecards/{unit_code}/history",
    response_model=Page[ScorecardRevisionPublic],
    summary="Every version of a unit's scorecard",
    description="The first version first, each with who filed or changed it and when. " + _VISIBILITY,
    responses={**problem_docs(403), **_UNIT_404},
)
async def scorecard_history(
    round_id: RoundId, unit_code: UnitCode, session: SessionDep, caller: ReaderDep, page: PageDep
) -> Page[ScorecardRevisionPublic]:
    return await scorecards.history(session, caller, round_id, unit_code, page)
