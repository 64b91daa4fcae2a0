"""Scorecards (评分表): one per unit per round, filed and changed by inspectors while the round is open,
every version kept. Items are checked against the round's rubric; photos with the media service."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.kit.auth import Caller, in_subtree
from services.kit.db import savepoint, utcnow
from services.kit.errors import Conflict, FieldError, NotFound, UnprocessableEntity
from services.kit.outbox import Outbox
from services.kit.pagination import Page, PageParams, paginate
from services.kit.peers import Peer
from services.scoring.feed import IssuesFeed, ScopeRegionNotFound
from services.scoring.rounds import photos
from services.scoring.rounds.models import Round, RoundUnit, Scorecard, ScorecardRevision
from services.scoring.rounds.schemas import (
    ScorecardBody,
    ScorecardItemPublic,
    ScorecardPublic,
    ScorecardRevisionPublic,
)
from services.scoring.rounds.service import (
    RoundClosed,
    claim_open,
    ensure_open,
    get_unit,
    get_visible,
    rubric_for,
)
from services.scoring.rubrics.rules import Rubric
from services.scoring.scores.rules import ItemDeduction, scorecard_problems

_CARD_UNIT = cast("ColumnElement[str]", col(Scorecard.unit_code))
_REVISION = cast("ColumnElement[int]", col(ScorecardRevision.revision))


class InvalidScorecard(UnprocessableEntity):
    code = "invalid_scorecard"


def scorecard_not_found(unit_code: str) -> NotFound:
    return NotFound(
        f"no scorecard of unit {unit_code} in this round that you may see", code="scorecard_not_found"
    )


def _stored_items(body: ScorecardBody) -> list[dict[str, Any]]:
    return [
        {
            "indicator": item.indicator,
            "deduction": None if item.deduction is None else str(item.deduction),
            "score": None if item.score is None else str(item.score),
            "note": item.note,
        }
        for item in body.items
    ]


def _points(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _unchanged(card: Scorecard, body: ScorecardBody) -> bool:
    """Whether `body` says what the scorecard holds: the same items (points compared as numbers, 2 is 2.0),
    notes and photos in the same order."""
    stored = [
        (
            item["indicator"],
            _points(item.get("deduction")),
            _points(item.get("score")),
            item.get("note") or "",
        )
        for item in card.items
    ]
    given = [(i.indicator, _points(i.deduction), _points(i.score), i.note or "") for i in body.items]
    return (stored, card.notes, list(card.photo_ids)) == (given, body.notes, list(body.photo_ids))


def _items(stored: list[dict[str, Any]]) -> list[ScorecardItemPublic]:
    return [ScorecardItemPublic.model_validate(item) for item in stored]


def check_items(rubric: Rubric, body: ScorecardBody) -> None:
    """422 `invalid_scorecard` with every problem: an indicator the rubric lacks, a deduction or score
    beyond the indicator's points, an indicator given a score twice or a score beside deductions."""
    indicators = rubric.indicators_by_code()
    problems: list[str] = []
    deductions: list[ItemDeduction] = []
    scored: set[str] = set()
    deducted: set[str] = set()
    for number, item in enumerate(body.items, 1):
        indicator = indicators.get(item.indicator)
        if indicator is None:
            problems.append(f"item {number}: the rubric has no indicator {item.indicator!r}")
            continue
        if item.score is not None:
            if item.indicator in scored or item.indicator in deducted:
                problems.append(
                    f"item {number}: indicator {item.indicator!r} gets a score once, without deductions"
                )
            scored.add(item.indicator)
            if item.score > indicator.max_points:
                problems.append(
                    f"item {number}: a score of {item.score} does not fit indicator {item.indicator!r}"
                    f" ({indicator.max_points} points)"
                )
                continue
            deductions.append(ItemDeduction(item.indicator, indicator.max_points - item.score, item.note))
        else:
            if item.indicator in scored:
                problems.append(
                    f"item {number}: indicator {item.indicator!r} gets a score once, without deductions"
                )
            deducted.add(item.indicator)
            deductions.append(ItemDeduction(item.indicator, item.deduction or Decimal(0), item.note))
    problems += [p.replace("item ", "deduction ", 1) for p in scorecard_problems(rubric, deductions)]
    if problems:
        raise InvalidScorecard(
            "the scorecard does not fit the round's rubric: " + "; ".join(problems),
            errors=[
                FieldError(field="body.items", message=problem, type="invalid_scorecard")
                for problem in problems
            ],
        )


def scorecard_public(card: Scorecard, unit_name: str) -> ScorecardPublic:
    return ScorecardPublic(
        round_id=card.round_id,
        unit_code=card.unit_code,
        unit_name=unit_name,
        items=_items(card.items),
        notes=card.notes,
        photo_ids=list(card.photo_ids),
        revision=card.revision,
        filed_by=card.filed_by,
        filed_by_name=card.filed_by_name,
        created_at=card.created_at,
        updated_at=card.updated_at,
    )


async def _locate(
    session: AsyncSession, feed: IssuesFeed, round_id: int, codes: Sequence[str]
) -> dict[str, str]:
    """The paths of these regions: from the round's snapshot, else (a grid below its units, say) as the
    issues service has them now; a code neither knows is left out."""
    rows = await session.execute(
        select(col(RoundUnit.code), col(RoundUnit.path)).where(
            col(RoundUnit.round_id) == round_id, col(RoundUnit.code).in_(list(codes))
        )
    )
    paths = {str(code): str(path) for code, path in rows.all()}
    for code in codes:
        if code not in paths:
            try:
                paths[code] = (await feed.region(code)).path
            except ScopeRegionNotFound:
                continue
    return paths


async def _open_unit(
    session: AsyncSession, caller: Caller, round_id: int, unit_code: str
) -> tuple[Round, RoundUnit]:
    """The round (visible, open) and the unit (of its snapshot, in the caller's subtree), else 404 or 409.
    Asks no peer and writes nothing."""
    round_ = await get_visible(session, caller, round_id)
    unit = await get_unit(session, caller, round_, unit_code)
    ensure_open(round_)
    return round_, unit


async def _check_photos_and_claim(
    session: AsyncSession,
    caller: Caller,
    media: Peer | None,
    feed: IssuesFeed,
    round_: Round,
    unit: RoundUnit,
    photo_ids: list[str],
) -> None:
    """The photos checked with media, then the round claimed (locked against a concurrent close): the last
    steps before a write, once everything local has been checked."""
    assert round_.id is not None
    round_id = round_.id
    await photos.check_photos(
        media,
        photo_ids,
        caller,
        unit_path=unit.path,
        label=photos.pin_label(round_id, unit.code),
        locate=lambda codes: _locate(session, feed, round_id, codes),
    )
    if not await claim_open(session, round_):  # closed while the photos were checked
        raise RoundClosed(f"round {round_id} is closed: its scores are frozen")


async def _pin(
    session: AsyncSession, outbox: Outbox, round_id: int, unit: RoundUnit, photo_ids: list[str]
) -> None:
    if photo_ids:
        await outbox.enqueue(
            session,
            photos.PIN,
            {
                "label": photos.pin_label(round_id, unit.code),
                "region_code": unit.code,
                "region_path": unit.path,
                "photo_ids": photo_ids,
            },
        )


def _revision(card: Scorecard, caller: Caller) -> ScorecardRevision:
    assert card.id is not None
    return ScorecardRevision(
        scorecard_id=card.id,
        revision=card.revision,
        items=card.items,
        notes=card.notes,
        photo_ids=card.photo_ids,
        author=str(caller.subject),
        author_name=caller.name,
        created_at=card.updated_at,
    )


async def file_scorecard(
    session: AsyncSession,
    caller: Caller,
    media: Peer | None,
    feed: IssuesFeed,
    outbox: Outbox,
    round_id: int,
    unit_code: str,
    body: ScorecardBody,
) -> tuple[Scorecard, RoundUnit]:
    """The unit's first scorecard in the round (409 `scorecard_exists` when it has one: change it)."""
    round_, unit = await _open_unit(session, caller, round_id, unit_code)
    check_items(await rubric_for(session, round_), body)
    await _check_photos_and_claim(session, caller, media, feed, round_, unit, body.photo_ids)
    code = unit.code  # read now: a failed insert below expires what the session holds
    photo_ids = list(dict.fromkeys(body.photo_ids))
    card = Scorecard(
        round_id=round_id,
        unit_code=unit.code,
        unit_path=unit.path,
        items=_stored_items(body),
        notes=body.notes,
        photo_ids=photo_ids,
        filed_by=str(caller.subject),
        filed_by_name=caller.name,
    )
    session.add(card)
    try:
        async with savepoint(session, Scorecard):
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"unit {code} has a scorecard in round {round_id} already: change it with PUT",
            code="scorecard_exists",
        ) from exc
    session.add(_revision(card, caller))
    await _pin(session, outbox, round_id, unit, photo_ids)
    await session.flush()
    return card, unit


async def change_scorecard(
    session: AsyncSession,
    caller: Caller,
    media: Peer | None,
    feed: IssuesFeed,
    outbox: Outbox,
    round_id: int,
    unit_code: str,
    body: ScorecardBody,
) -> tuple[Scorecard, RoundUnit]:
    """Replace the unit's scorecard while the round is open; a change is a new revision (the same content
    again changes nothing). Where the scorecard is missing that is said (404) before any peer is asked."""
    round_, unit = await _open_unit(session, caller, round_id, unit_code)
    card = await _card(session, caller, round_id, unit.code)
    check_items(await rubric_for(session, round_), body)
    if _unchanged(card, body):  # nothing to write: no revision, no time moved, no peer asked
        return card, unit
    await _check_photos_and_claim(session, caller, media, feed, round_, unit, body.photo_ids)
    await session.refresh(card)  # as the round's claim left it: a concurrent change came first
    photo_ids = list(dict.fromkeys(body.photo_ids))
    items = _stored_items(body)
    if _unchanged(card, body):
        return card, unit
    added = [photo for photo in photo_ids if photo not in card.photo_ids]
    card.items, card.notes, card.photo_ids = items, body.notes, photo_ids
    card.revision += 1
    card.updated_at = utcnow()
    session.add(_revision(card, caller))
    await _pin(session, outbox, round_id, unit, added)
    await session.flush()
    return card, unit


async def _card(session: AsyncSession, caller: Caller, round_id: int, unit_code: str) -> Scorecard:
    card = (
        await session.execute(
            select(Scorecard).where(
                col(Scorecard.round_id) == round_id,
                col(Scorecard.unit_code) == unit_code,
                in_subtree(col(Scorecard.unit_path), caller),
            )
        )
    ).scalar_one_or_none()
    if card is None:
        raise scorecard_not_found(unit_code)
    return card


async def read_scorecard(
    session: AsyncSession, caller: Caller, round_id: int, unit_code: str
) -> tuple[Scorecard, RoundUnit]:
    round_ = await get_visible(session, caller, round_id)
    unit = await get_unit(session, caller, round_, unit_code)
    return await _card(session, caller, round_id, unit.code), unit


async def list_scorecards(
    session: AsyncSession, caller: Caller, round_id: int, page: PageParams
) -> Page[ScorecardPublic]:
    """The round's scorecards of units in the caller's subtree, by unit code."""
    round_ = await get_visible(session, caller, round_id)
    statement = select(Scorecard).where(
        col(Scorecard.round_id) == round_.id, in_subtree(col(Scorecard.unit_path), caller)
    )
    listed = await paginate(session, statement, [_CARD_UNIT], page, lambda c: c, lambda c: [c.unit_code])
    names = await _unit_names(session, round_id, [card.unit_code for card in listed.items])
    return Page(
        items=[scorecard_public(card, names.get(card.unit_code, card.unit_code)) for card in listed.items],
        next_cursor=listed.next_cursor,
        limit=listed.limit,
    )


async def _unit_names(session: AsyncSession, round_id: int, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await session.execute(
        select(col(RoundUnit.code), col(RoundUnit.name)).where(
            col(RoundUnit.round_id) == round_id, col(RoundUnit.code).in_(codes)
        )
    )
    return {str(code): str(name) for code, name in rows.all()}


def revision_public(revision: ScorecardRevision) -> ScorecardRevisionPublic:
    return ScorecardRevisionPublic(
        revision=revision.revision,
        items=_items(revision.items),
        notes=revision.notes,
        photo_ids=list(revision.photo_ids),
        author=revision.author,
        author_name=revision.author_name,
        created_at=revision.created_at,
    )


async def history(
    session: AsyncSession, caller: Caller, round_id: int, unit_code: str, page: PageParams
) -> Page[ScorecardRevisionPublic]:
    """Every version of the unit's scorecard, the first first."""
    card, _ = await read_scorecard(session, caller, round_id, unit_code)
    statement = select(ScorecardRevision).where(col(ScorecardRevision.scorecard_id) == card.id)
    return await paginate(session, statement, [_REVISION], page, revision_public, lambda r: [r.revision])
