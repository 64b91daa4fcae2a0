"""Actions on an issue: the rules decide whether the state and the role allow it; each handler applies it
and appends one event. Two actions on one issue at once: exactly one wins (row lock, version column)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col

from services.issues.cases import evidence, history, service, timing
from services.issues.cases.models import Issue
from services.issues.cases.rules import (
    Action,
    RejectReason,
    Source,
    Status,
    actions_for,
    allowed_actions,
    may_take,
    next_state,
)
from services.issues.cases.schemas import (
    AcceptBody,
    ApproveExtensionBody,
    AssignBody,
    FeedbackBody,
    IssueCreate,
    PutOnAccountBody,
    RecurBody,
    RefuseExtensionBody,
    RejectBody,
    RequestExtensionBody,
    ResumeBody,
    ReturnBody,
    SubmitBody,
    SuperviseBody,
    UnlinkBody,
    VerifyBody,
)
from services.issues.categories.models import Severity
from services.issues.categories.service import get_category
from services.issues.deps import IssuesState
from services.issues.regions.models import Region
from services.kit.auth import Caller
from services.kit.db import utcnow
from services.kit.errors import Conflict, Forbidden, UnprocessableEntity
from services.kit.identity import Role


async def act(
    session: AsyncSession, state: IssuesState, caller: Caller, issue_id: int, action: Action, body: Any
) -> tuple[Issue, Issue | None]:
    """Take `action` on the issue; answers the issue and, for `recur`, the new one."""
    issue = await service.get_visible(session, caller, issue_id, lock=True)
    if not may_take(caller.role, action):  # whatever the state: this role never may
        raise Forbidden(f"a {caller.role.value} may not {action.value} an issue", code="role_not_allowed")
    current = service.state_of(issue)
    if action not in allowed_actions(current):
        raise Conflict(
            f"{action.value} is not possible while the issue is {issue.status}",
            code="action_not_allowed",
            allowed_actions=[a.value for a in actions_for(current, caller.role)],
        )
    handler = _HANDLERS[action]
    recurred = await handler(session, state, caller, issue, body)
    after = next_state(current, action)
    issue.status = after.status.value
    issue.extension_pending, issue.on_account = after.extension_pending, after.on_account
    issue.supervised = after.supervised
    try:
        await session.flush()
    except (StaleDataError, OperationalError) as exc:
        if isinstance(exc, OperationalError) and "locked" not in str(exc).lower():
            raise
        raise Conflict(
            "the issue was changed at the same moment; reload it", code="concurrent_change"
        ) from exc
    return issue, recurred


def _changes(**pairs: tuple[Any, Any]) -> dict[str, Any]:
    return {k: [_plain(a), _plain(b)] for k, (a, b) in pairs.items() if a != b}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def _dispatch(
    session: AsyncSession,
    caller: Caller,
    issue: Issue,
    responsible_code: str | None,
    user_id: int | None,
    deadline: datetime | None,
) -> dict[str, Any]:
    region = (
        await service._responsible(session, caller, responsible_code, await _region_of(session, issue))
        if responsible_code or not issue.responsible_region_code
        else None
    )
    now = utcnow()
    timing.check_ahead(deadline, now)
    old = (issue.responsible_region_code, issue.responsible_user_id, issue.deadline)
    if region is not None:
        if region.code != issue.responsible_region_code and user_id is None:
            issue.responsible_user_id = None  # the one named belonged to the unit that had it
        issue.responsible_region_code, issue.responsible_region_path = region.code, region.path
    if user_id is not None:
        issue.responsible_user_id = await service.responsible_user(session, user_id, issue.region_path)
    issue.assigned_at = issue.assigned_at or now
    if deadline is not None or issue.deadline is None:
        category = await get_category(session, issue.category)
        await timing.apply_deadline(session, issue, deadline, start=now, default_from=category)
    return _changes(
        responsible_region=(old[0], issue.responsible_region_code),
        responsible_user_id=(old[1], issue.responsible_user_id),
        deadline=(old[2], issue.deadline),
    )


async def _region_of(session: AsyncSession, issue: Issue) -> Region:
    return (await session.execute(select(Region).where(col(Region.code) == issue.region_code))).scalar_one()


async def _verify(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: VerifyBody
) -> None:
    changes = await _dispatch(
        session, caller, issue, body.responsible_region, body.responsible_user_id, body.deadline
    )
    issue.verified_at = utcnow()
    await history.append_event(
        session,
        issue,
        caller,
        Action.verify,
        body.note,
        {"status": [issue.status, Status.assigned], **changes},
        [],
    )


async def _reject(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: RejectBody
) -> None:
    if body.reason is RejectReason.other and not body.note:
        raise UnprocessableEntity("say why in `note` when the reason is `other`", code="note_required")
    changes: dict[str, Any] = {
        "status": [issue.status, Status.rejected],
        "reject_reason": [None, body.reason],
    }
    for flag in ("extension_pending", "on_account"):  # cleared by `next_state`
        if getattr(issue, flag):
            changes[flag] = [True, False]
    if body.reason is RejectReason.duplicate:
        if not body.duplicate_of:
            raise UnprocessableEntity(
                "name the issue this one repeats in `duplicate_of`", code="duplicate_of_required"
            )
        original = (
            await session.execute(
                select(Issue).where(col(Issue.code) == body.duplicate_of, service.visible_to(caller))
            )
        ).scalar_one_or_none()
        if original is None or original.id == issue.id:
            raise service._not_found(body.duplicate_of)
        issue.duplicate_of = original.id
        changes["duplicate_of"] = [None, original.code]
    issue.reject_reason, issue.rejected_at = body.reason.value, utcnow()
    await history.append_event(session, issue, caller, Action.reject, body.note, changes, [])


async def _assign(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: AssignBody
) -> None:
    changes = await _dispatch(
        session, caller, issue, body.responsible_region, body.responsible_user_id, body.deadline
    )
    if issue.status != Status.assigned:  # from reported: assigning it is its 立案 too
        changes["status"] = [issue.status, Status.assigned]
        issue.verified_at = utcnow()
    await history.append_event(session, issue, caller, Action.assign, body.note, changes, [])


async def _submit(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: SubmitBody
) -> None:
    photos = await service._checked_photos(
        session, state, caller, body.after_photo_ids, issue_code=issue.code
    )
    records, flags = [], []
    for photo in photos:
        look_alikes = await evidence.similar_ids(state.media, photo.id)
        owners = {
            str(i["id"]): i.get("issue_id") for i in await evidence.fetch_photos(state.media, look_alikes)
        }
        findings = evidence.after_photo_findings(
            photo,
            issue_position=(issue.latitude, issue.longitude)
            if issue.latitude is not None and issue.longitude is not None
            else None,
            reported_at=issue.reported_at,
            max_distance_m=state.settings.evidence_max_distance_m,
            before_ids=issue.before_photo_ids,
            reused_from={other: owners.get(other) for other in look_alikes if other in owners},
            issue_code=issue.code,
        )
        records.append(evidence.evidence_record(photo, findings))
        flags += [{**f, "photo_id": photo.id} for f in findings]
    now = utcnow()
    issue.after_photo_ids, issue.evidence_flags = [p.id for p in photos], flags
    issue.submitted_at, issue.submitter = now, str(caller.subject)
    await history.append_event(
        session,
        issue,
        caller,
        Action.submit,
        body.note,
        {"status": [issue.status, Status.submitted], "after_photo_ids": [None, issue.after_photo_ids]},
        records,
        at=now,
    )
    await service.attach_later(session, state, issue, issue.after_photo_ids)


async def _accept(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: AcceptBody
) -> None:
    if issue.submitter == str(caller.subject):
        raise Forbidden("the one who submitted a fix may not accept it", code="own_submission")
    unresolved = evidence.blocking(issue.evidence_flags)
    if unresolved and not body.override_reason:
        raise Conflict(
            "the after photos carry flags: accept with an `override_reason`, or return the issue",
            code="evidence_flags_unresolved",
            flags=unresolved,
        )
    now = utcnow()
    issue.closed_at = now
    issue.closed_late = issue.deadline is not None and now > issue.deadline
    changes = {"status": [issue.status, Status.closed], "closed_late": [None, issue.closed_late]}
    if body.override_reason:
        changes["override_reason"] = [None, body.override_reason]
        changes["overridden_flags"] = [None, unresolved]
    await history.append_event(session, issue, caller, Action.accept, body.note, changes, [], at=now)


async def _return(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: ReturnBody
) -> None:
    if issue.submitter == str(caller.subject):
        raise Forbidden("the one who submitted a fix may not return it", code="own_submission")
    category = await get_category(session, issue.category)
    old_deadline = issue.deadline
    now = utcnow()
    timing.check_ahead(body.deadline, now)
    issue.assigned_at = now  # the rework's time starts now
    await timing.apply_deadline(session, issue, body.deadline, start=now, default_from=category)
    issue.rework_count += 1
    issue.after_photo_ids, issue.evidence_flags, issue.submitter = [], [], None
    await history.append_event(
        session,
        issue,
        caller,
        Action.return_,
        body.note,
        {
            "status": [issue.status, Status.assigned],
            "rework_count": [issue.rework_count - 1, issue.rework_count],
            **_changes(deadline=(old_deadline, issue.deadline)),
        },
        [],
        at=now,
    )


async def _request_extension(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: RequestExtensionBody
) -> None:
    if issue.deadline is not None and body.until <= issue.deadline:
        raise UnprocessableEntity("an extension runs past the current deadline", code="extension_too_short")
    issue.extension_pending, issue.extension_reason, issue.extension_until = True, body.reason, body.until
    await history.append_event(
        session,
        issue,
        caller,
        Action.request_extension,
        body.reason,
        {"extension_until": [None, body.until.isoformat()]},
        [],
    )


async def _approve_extension(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: ApproveExtensionBody
) -> None:
    until = body.until or issue.extension_until
    old = issue.deadline
    if until is not None and old is not None and until <= old:
        raise UnprocessableEntity("an extension runs past the current deadline", code="extension_too_short")
    await timing.apply_deadline(session, issue, until, start=issue.assigned_at or issue.reported_at)
    issue.extension_pending = False
    issue.extension_count += 1
    await history.append_event(
        session,
        issue,
        caller,
        Action.approve_extension,
        body.note,
        _changes(deadline=(old, issue.deadline)),
        [],
    )


async def _refuse_extension(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: RefuseExtensionBody
) -> None:
    issue.extension_pending, issue.extension_until = False, None
    await history.append_event(
        session, issue, caller, Action.refuse_extension, body.note, {"extension_pending": [True, False]}, []
    )


async def _put_on_account(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: PutOnAccountBody
) -> None:
    target = datetime.combine(body.target_date, datetime.max.time(), tzinfo=timing.CHINA).astimezone(UTC)
    issue.on_account, issue.account_plan, issue.account_target = True, body.plan, target
    await history.append_event(
        session,
        issue,
        caller,
        Action.put_on_account,
        body.plan,
        {"on_account": [False, True], "account_target": [None, target.isoformat()]},
        [],
    )


async def _resume(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: ResumeBody
) -> None:
    old = issue.deadline
    timing.check_ahead(body.deadline, utcnow())
    issue.on_account = False
    if body.deadline is not None:
        await timing.apply_deadline(
            session, issue, body.deadline, start=issue.assigned_at or issue.reported_at
        )
    await history.append_event(
        session,
        issue,
        caller,
        Action.resume,
        body.note,
        {"on_account": [True, False], **_changes(deadline=(old, issue.deadline))},
        [],
    )


async def _supervise(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: SuperviseBody
) -> None:
    issue.supervised = True
    await history.append_event(
        session, issue, caller, Action.supervise, body.note, {"supervised": [False, True]}, []
    )


async def _recur(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: RecurBody
) -> Issue:
    """反弹: a new issue in the same place and category, linked to the closed one (which stays closed)."""
    report = IssueCreate(
        category=issue.category,
        region=issue.region_code,
        source=Source.inspection
        if caller.role in (Role.admin, Role.inspector, Role.officer)
        else Source.grid,
        severity=Severity(issue.severity),
        description=body.description or f"反弹：{issue.description}"[:2000],
        latitude=issue.latitude,
        longitude=issue.longitude,
        address=issue.address,
        before_photo_ids=body.before_photo_ids,
        fields=issue.fields,
        responsible_region=issue.responsible_region_code,
    )
    again = (await service.create(session, state, caller, report, recurrence_of=issue)).as_issue()
    await history.append_event(
        session, issue, caller, Action.recur, body.note, {"recurred_as": [None, again.code]}, []
    )
    return again


async def _feedback(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: FeedbackBody
) -> None:
    if issue.reporter != str(caller.subject):
        raise Forbidden(
            "only the one who reported the problem gives feedback on its fix", code="not_reporter"
        )
    issue.satisfaction, issue.satisfaction_comment = body.satisfaction, body.comment
    await history.append_event(
        session, issue, caller, Action.feedback, body.comment, {"satisfaction": [None, body.satisfaction]}, []
    )


async def _unlink(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: UnlinkBody
) -> None:
    old = issue.probable_duplicate_of
    issue.probable_duplicate_of = None
    await history.append_event(
        session, issue, caller, Action.unlink, body.note, {"probable_duplicate_of": [old, None]}, []
    )


_HANDLERS: dict[Action, Any] = {
    Action.verify: _verify,
    Action.reject: _reject,
    Action.assign: _assign,
    Action.submit: _submit,
    Action.accept: _accept,
    Action.return_: _return,
    Action.request_extension: _request_extension,
    Action.approve_extension: _approve_extension,
    Action.refuse_extension: _refuse_extension,
    Action.put_on_account: _put_on_account,
    Action.resume: _resume,
    Action.supervise: _supervise,
    Action.recur: _recur,
    Action.feedback: _feedback,
    Action.unlink: _unlink,
}
