"""An issue's history: every change an append-only event holding the hash of the one before, and the check
that recomputes the chain (an edit behind the API's back shows as the first event that does not hold)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.cases.models import Issue, IssueEvent
from services.issues.cases.rules import ChainLink, first_break, link_hash
from services.issues.cases.schemas import ChainReport, EventPublic
from services.kit.auth import Caller
from services.kit.db import utcnow
from services.kit.identity import Role


async def append_event(
    session: AsyncSession,
    issue: Issue,
    caller: Caller,
    action: str,
    note: str | None,
    changes: dict[str, Any],
    photos: list[dict[str, Any]],
    *,
    at: datetime | None = None,
) -> IssueEvent:
    """The issue's next event, added to the session; the issue's chain head moves to it."""
    event = chain_event(issue, caller, action, note, changes, photos, at=at)
    session.add(event)
    return event


def chain_event(
    issue: Issue,
    caller: Caller,
    action: str,
    note: str | None,
    changes: dict[str, Any],
    photos: list[dict[str, Any]],
    *,
    at: datetime | None = None,
) -> IssueEvent:
    """The issue's next event, hashed onto the one before (the issue must have its id); the issue's chain
    head, event count and `updated_at` move to it. Nothing is written."""
    assert issue.id is not None
    moment = (at or utcnow()).astimezone(UTC)
    event = IssueEvent(
        **event_values(
            issue.id,
            issue.event_count + 1,
            issue.last_event_hash,
            caller,
            action,
            note,
            changes,
            photos,
            moment,
        )
    )
    issue.last_event_hash, issue.event_count = event.hash, event.seq
    issue.updated_at = moment
    return event


def event_values(
    issue_id: int,
    seq: int,
    prev_hash: str,
    caller: Caller,
    action: str,
    note: str | None,
    changes: dict[str, Any],
    photos: list[dict[str, Any]],
    at: datetime,
) -> dict[str, Any]:
    """The columns of an issue's event number `seq` (but its id), hashed onto `prev_hash`."""
    link = ChainLink(
        issue_id=issue_id,
        seq=seq,
        action=action,
        actor=str(caller.subject),
        role=caller.role.value,
        at=at.isoformat(),
        note=note,
        changes=changes,
        photos=photos,
        prev_hash=prev_hash,
    )
    return {
        "issue_id": issue_id,
        "seq": seq,
        "action": action,
        "actor": link.actor,
        "role": link.role,
        "at": at,
        "note": note,
        "changes": changes,
        "photos": photos,
        "prev_hash": prev_hash,
        "hash": link_hash(link),
    }


def link_of(event: IssueEvent) -> ChainLink:
    return ChainLink(
        issue_id=event.issue_id,
        seq=event.seq,
        action=event.action,
        actor=event.actor,
        role=event.role,
        at=event.at.astimezone(UTC).isoformat(),
        note=event.note,
        changes=event.changes,
        photos=event.photos,
        prev_hash=event.prev_hash,
    )


# Village and grid cadres never learn who reported a problem in their village.
HIDES_REPORTER = frozenset({Role.village, Role.grid})


async def events_of(session: AsyncSession, caller: Caller, issue: Issue) -> list[EventPublic]:
    """The issue's events, oldest first, as this caller may see them."""
    issue_id = issue.id
    rows = (
        await session.execute(
            select(IssueEvent).where(col(IssueEvent.issue_id) == issue_id).order_by(col(IssueEvent.seq))
        )
    ).scalars()
    hide = caller.role in HIDES_REPORTER
    return [
        EventPublic(
            seq=e.seq,
            action=e.action,
            actor=None if hide and e.actor == issue.reporter else e.actor,
            role=e.role,
            at=e.at,
            note=e.note,
            changes=e.changes,
            photos=e.photos,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )
        for e in rows
    ]


async def check_chain(session: AsyncSession, issue: Issue) -> ChainReport:
    """Recompute the issue's chain from its stored events: the first that does not hold, if any."""
    assert issue.id is not None
    rows = (
        (
            await session.execute(
                select(IssueEvent)
                .where(col(IssueEvent.issue_id) == issue.id)
                .order_by(col(IssueEvent.seq), col(IssueEvent.id))
            )
        )
        .scalars()
        .all()
    )
    found = first_break(((link_of(e), e.hash) for e in rows), expected_head=issue.last_event_hash)
    return ChainReport(
        code=issue.code,
        events=len(rows),
        intact=found is None,
        first_bad_seq=found.seq if found else None,
        reason=found.reason if found else None,
    )
