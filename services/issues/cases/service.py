"""What the lifecycle does: take a report, act on an issue, keep every change as a chained event.

Every read starts from "issues in the caller's region subtree" (a citizen: its own reports), so an issue
outside is simply not found. Each action loads the issue (locked on PostgreSQL; a version column catches
a concurrent change anywhere), asks the rules whether the state and the role allow it, applies it, and
appends one event holding the hash of the one before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col

from services.issues.calendar.rules import Light
from services.issues.cases import evidence, timing
from services.issues.cases.models import Issue, IssueCounter, IssueEvent
from services.issues.cases.rules import (
    GENESIS,
    OPEN_STATUSES,
    Action,
    CaseState,
    ChainLink,
    RejectReason,
    Source,
    Status,
    actions_for,
    allowed_actions,
    first_break,
    initial_status,
    issue_code,
    link_hash,
    may_take,
    next_state,
)
from services.issues.cases.schemas import (
    AcceptBody,
    ApproveExtensionBody,
    AssignBody,
    ChainReport,
    EventPublic,
    FeedbackBody,
    IssueCreate,
    IssuePage,
    IssuePublic,
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
from services.issues.deps import IssuesState
from services.issues.regions.models import Level, Region
from services.issues.regions.service import get_visible as visible_region
from services.kit.auth import Caller, in_subtree
from services.kit.db import utcnow
from services.kit.errors import Conflict, FieldError, Forbidden, NotFound, Problem, UnprocessableEntity
from services.kit.geo import distance_m
from services.kit.identity import Role, codes_in_path
from services.kit.pagination import PageParams, paginate

ISSUE_REGION_LEVELS = frozenset({Level.village, Level.grid})
RESPONSIBLE_LEVELS = frozenset({Level.town, Level.zone, Level.village, Level.grid})
HIDES_REPORTER = frozenset({Role.village, Role.grid})


class TooManyReports(Problem):
    status, code, title = 429, "too_many_reports", "Too many requests"


def _not_found(what: str | int) -> NotFound:
    return NotFound(f"issue {what} not found", code="issue_not_found")


def visible_to(caller: Caller) -> ColumnElement[bool]:
    """Issues in the caller's subtree; a citizen sees only its own reports."""
    condition = in_subtree(col(Issue.region_path), caller)
    if caller.role is Role.citizen:
        condition = and_(condition, col(Issue.reporter) == str(caller.subject))
    return condition


async def get_visible(session: AsyncSession, caller: Caller, issue_id: int, *, lock: bool = False) -> Issue:
    statement = select(Issue).where(col(Issue.id) == issue_id, visible_to(caller))
    if lock and session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    issue = (await session.execute(statement)).scalar_one_or_none()
    if issue is None:
        raise _not_found(issue_id)
    return issue


def state_of(issue: Issue) -> CaseState:
    return CaseState(
        status=Status(issue.status),
        extension_pending=issue.extension_pending,
        on_account=issue.on_account,
        supervised=issue.supervised,
        has_feedback=issue.satisfaction is not None,
        probable_duplicate=issue.probable_duplicate_of is not None,
    )


# ---- the public shape ----


@dataclass(frozen=True)
class Presenter:
    """Shapes issues for one caller: codes of linked issues, the light, what the caller may do."""

    caller: Caller
    now: datetime
    codes: dict[int, str]

    def issue(self, issue: Issue) -> IssuePublic:
        assert issue.id is not None
        state = state_of(issue)
        open_ = Status(issue.status) in OPEN_STATUSES
        overdue = open_ and issue.deadline is not None and self.now > issue.deadline
        light = timing.light_of(issue, self.now) if open_ else None
        return IssuePublic(
            id=issue.id,
            code=issue.code,
            status=Status(issue.status),
            category=issue.category,
            severity=Severity(issue.severity),
            source=Source(issue.source),
            region=issue.region_code,
            responsible_region=issue.responsible_region_code,
            responsible_user_id=issue.responsible_user_id,
            description=issue.description,
            address=issue.address,
            latitude=issue.latitude,
            longitude=issue.longitude,
            fields=issue.fields,
            before_photo_ids=issue.before_photo_ids,
            after_photo_ids=issue.after_photo_ids,
            evidence_flags=issue.evidence_flags,
            reporter=None if self.caller.role in HIDES_REPORTER else issue.reporter,
            reported_at=issue.reported_at,
            deadline=issue.deadline,
            light=light,
            overdue=overdue,
            submitted_at=issue.submitted_at,
            closed_at=issue.closed_at,
            closed_late=issue.closed_late,
            rejected_at=issue.rejected_at,
            reject_reason=RejectReason(issue.reject_reason) if issue.reject_reason else None,
            rework_count=issue.rework_count,
            extension_count=issue.extension_count,
            extension_pending=issue.extension_pending,
            on_account=issue.on_account,
            account_plan=issue.account_plan,
            account_target=issue.account_target,
            supervised=issue.supervised,
            probable_duplicate_of=self.codes.get(issue.probable_duplicate_of or 0),
            duplicate_of=self.codes.get(issue.duplicate_of or 0),
            recurrence_of=self.codes.get(issue.recurrence_of or 0),
            satisfaction=issue.satisfaction,
            allowed_actions=self.allowed(issue, state),
        )

    def allowed(self, issue: Issue, state: CaseState) -> list[Action]:
        actions = actions_for(state, self.caller.role)
        mine = issue.reporter == str(self.caller.subject)
        return [
            a
            for a in actions
            if (a is not Action.feedback or mine)
            and (a not in (Action.accept, Action.return_) or issue.submitter != str(self.caller.subject))
        ]


async def presenter(session: AsyncSession, caller: Caller, issues: Sequence[Issue]) -> Presenter:
    linked = {
        i
        for issue in issues
        for i in (issue.probable_duplicate_of, issue.duplicate_of, issue.recurrence_of)
        if i
    }
    codes: dict[int, str] = {}
    if linked:
        rows = await session.execute(
            select(col(Issue.id), col(Issue.code)).where(col(Issue.id).in_(sorted(linked)))
        )
        codes = {issue_id: code for issue_id, code in rows.all() if issue_id is not None}
    return Presenter(caller, utcnow(), codes)


# ---- reporting ----


async def _county_of(session: AsyncSession, region: Region) -> str:
    """The county (or the nearest ancestor above the town) the region lies in: codes are numbered per county."""
    rows = await session.execute(
        select(col(Region.code), col(Region.level)).where(col(Region.code).in_(codes_in_path(region.path)))
    )
    levels = {code: level for code, level in rows.all()}
    for code in reversed(codes_in_path(region.path)):
        if levels.get(code) == Level.county:
            return code
    return codes_in_path(region.path)[0]


async def next_code(session: AsyncSession, county: str, year: int) -> str:
    """The next number of a county's year, taken in the request's transaction: gap-free, and unique under
    concurrency (the counter's row is locked until the transaction ends)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(IssueCounter)
        .values(county_code=county, year=year, last_number=1)
        .on_conflict_do_update(
            index_elements=[col(IssueCounter.county_code), col(IssueCounter.year)],
            set_={"last_number": IssueCounter.last_number + 1},
        )
        .returning(col(IssueCounter.last_number))
    )
    number = (await session.execute(statement)).scalar_one()
    return issue_code(county, year, int(number))


async def _region_paths(session: AsyncSession, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await session.execute(
        select(col(Region.code), col(Region.path)).where(col(Region.code).in_(sorted(codes)))
    )
    return {code: path for code, path in rows.all()}


async def _checked_photos(
    session: AsyncSession, state: IssuesState, caller: Caller, ids: Sequence[str], *, issue_code: str | None
) -> list[evidence.MediaPhoto]:
    """The photos as media knows them, if this caller may use them as evidence; else 422 and nothing stored."""
    if not ids:
        return []
    items = await evidence.fetch_photos(state.media, ids)
    paths = await _region_paths(session, {str(item.get("region_code", "")) for item in items})
    found = {str(item["id"]): evidence.MediaPhoto.of(item, paths) for item in items}
    refused = evidence.refusals(ids, found, caller, issue_code=issue_code)
    if refused:
        raise evidence.PhotosRefused(
            "; ".join(refused),
            errors=[FieldError(field="body.photo_ids", message=r, type="photo") for r in refused],
        )
    return [found[i] for i in dict.fromkeys(ids)]


async def _responsible(session: AsyncSession, caller: Caller, code: str | None, default: Region) -> Region:
    if code is None:
        return default
    region = await visible_region(session, caller, code)
    if Level(region.level) not in RESPONSIBLE_LEVELS:
        raise UnprocessableEntity(
            f"region {code} is a {region.level}: a town, 管区, village or grid is responsible",
            code="responsible_level",
        )
    return region


async def _throttle_citizen(session: AsyncSession, state: IssuesState, caller: Caller) -> None:
    if caller.role is not Role.citizen:
        return
    since = utcnow() - timedelta(hours=1)
    rows = await session.execute(
        select(col(Issue.reported_at))
        .where(col(Issue.reporter) == str(caller.subject), col(Issue.reported_at) >= since)
        .order_by(col(Issue.reported_at))
    )
    recent = [at for (at,) in rows.all()]
    limit = state.settings.citizen_reports_per_hour
    if len(recent) >= limit:
        wait = int((recent[-limit] + timedelta(hours=1) - utcnow()).total_seconds()) + 1
        raise TooManyReports(
            f"at most {limit} reports an hour; try again later", headers={"Retry-After": str(max(1, wait))}
        )


async def _probable_duplicate(session: AsyncSession, state: IssuesState, issue: Issue) -> int | None:
    """The nearest open issue of the same category within the duplicate distance, in the same county."""
    if issue.latitude is None or issue.longitude is None:
        return None
    # A box around the point first (an index-friendly filter), then the exact distance.
    degrees = state.settings.duplicate_distance_m / 111_000 * 1.5
    rows = await session.execute(
        select(col(Issue.id), col(Issue.latitude), col(Issue.longitude)).where(
            col(Issue.county_code) == issue.county_code,
            col(Issue.category) == issue.category,
            col(Issue.status).in_([s.value for s in OPEN_STATUSES]),
            col(Issue.id) != issue.id,
            col(Issue.latitude).between(issue.latitude - degrees, issue.latitude + degrees),
            col(Issue.longitude).between(issue.longitude - degrees * 1.5, issue.longitude + degrees * 1.5),
        )
    )
    point = (issue.latitude, issue.longitude)
    near = [
        (distance_m(point, (lat, lon)), other)
        for other, lat, lon in rows.all()
        if lat is not None and lon is not None
    ]
    near = [(d, other) for d, other in near if d <= state.settings.duplicate_distance_m]
    return min(near)[1] if near else None


async def create(session: AsyncSession, state: IssuesState, caller: Caller, body: IssueCreate) -> Issue:
    """Take a report; a refusal stores nothing."""
    category = await timing.category(session, body.category)
    field_errors = timing.field_errors(category, body.fields)
    if field_errors:
        raise UnprocessableEntity("the category's fields do not fit", errors=field_errors)
    if (body.latitude is None) != (body.longitude is None):
        raise UnprocessableEntity("give both latitude and longitude, or neither", code="incomplete_position")
    region = await visible_region(session, caller, body.region)
    if Level(region.level) not in ISSUE_REGION_LEVELS:
        raise UnprocessableEntity(
            f"region {body.region} is a {region.level}: issues are reported in a village or a grid",
            code="region_not_village",
        )
    await _throttle_citizen(session, state, caller)
    status = initial_status(body.source, caller.role)
    responsible = await _responsible(session, caller, body.responsible_region, region)
    photos = await _checked_photos(session, state, caller, body.before_photo_ids, issue_code=None)
    now = utcnow()
    county = await _county_of(session, region)
    issue = Issue(
        code=await next_code(session, county, now.astimezone(timing.CHINA).year),
        category=category.code,
        severity=body.severity.value,
        source=body.source.value,
        status=status.value,
        region_code=region.code,
        region_path=region.path,
        county_code=county,
        description=body.description,
        address=body.address,
        latitude=body.latitude,
        longitude=body.longitude,
        fields=body.fields,
        before_photo_ids=[p.id for p in photos],
        reporter=str(caller.subject),
        reporter_role=caller.role.value,
        reported_at=now,
        last_event_hash=GENESIS,
    )
    if status is Status.assigned:
        issue.responsible_region_code, issue.responsible_region_path = responsible.code, responsible.path
        issue.responsible_user_id = body.responsible_user_id
        issue.assigned_at = now
        await timing.apply_deadline(session, issue, body.deadline, start=now, default_from=category)
    session.add(issue)
    await session.flush()
    issue.probable_duplicate_of = await _probable_duplicate(session, state, issue)
    changes: dict[str, Any] = {"status": [None, status.value]}
    if issue.deadline is not None:
        changes["deadline"] = [None, issue.deadline.isoformat()]
    if issue.probable_duplicate_of is not None:
        changes["probable_duplicate_of"] = [None, issue.probable_duplicate_of]
    await _append_event(
        session, issue, caller, "report", None, changes, [evidence.evidence_record(p) for p in photos], at=now
    )
    await _attach_later(session, state, issue, [p.id for p in photos])
    return issue


async def _attach_later(
    session: AsyncSession, state: IssuesState, issue: Issue, photo_ids: Sequence[str]
) -> None:
    """Pin the photos to the issue once this transaction has committed (retried until media answers)."""
    if photo_ids:
        await state.outbox.enqueue(
            session,
            evidence.ATTACH,
            {
                "issue_code": issue.code,
                "region_code": issue.region_code,
                "region_path": issue.region_path,
                "photo_ids": list(photo_ids),
            },
        )


# ---- events ----


async def _append_event(
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
    assert issue.id is not None
    moment = (at or utcnow()).astimezone(UTC)
    link = ChainLink(
        issue_id=issue.id,
        seq=issue.event_count + 1,
        action=action,
        actor=str(caller.subject),
        role=caller.role.value,
        at=moment.isoformat(),
        note=note,
        changes=changes,
        photos=photos,
        prev_hash=issue.last_event_hash,
    )
    event = IssueEvent(
        issue_id=issue.id,
        seq=link.seq,
        action=action,
        actor=link.actor,
        role=link.role,
        at=moment,
        note=note,
        changes=changes,
        photos=photos,
        prev_hash=link.prev_hash,
        hash=link_hash(link),
    )
    session.add(event)
    issue.last_event_hash, issue.event_count = event.hash, link.seq
    issue.updated_at = moment
    return event


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


async def events_of(session: AsyncSession, caller: Caller, issue_id: int) -> list[EventPublic]:
    issue = await get_visible(session, caller, issue_id)
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


# ---- actions ----


async def act(
    session: AsyncSession, state: IssuesState, caller: Caller, issue_id: int, action: Action, body: Any
) -> tuple[Issue, Issue | None]:
    """Take `action` on the issue; answers the issue and, for `recur`, the new one."""
    issue = await get_visible(session, caller, issue_id, lock=True)
    current = state_of(issue)
    allowed = allowed_actions(current)
    if action not in allowed:
        raise Conflict(
            f"{action.value} is not possible while the issue is {issue.status}",
            code="action_not_allowed",
            allowed_actions=[a.value for a in actions_for(current, caller.role)],
        )
    if not may_take(caller.role, action):
        raise Forbidden(f"a {caller.role.value} may not {action.value} an issue", code="role_not_allowed")
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
        await _responsible(session, caller, responsible_code, await _region_of(session, issue))
        if responsible_code or not issue.responsible_region_code
        else None
    )
    now = utcnow()
    old = (issue.responsible_region_code, issue.responsible_user_id, issue.deadline)
    if region is not None:
        issue.responsible_region_code, issue.responsible_region_path = region.code, region.path
    if user_id is not None:
        issue.responsible_user_id = user_id
    issue.assigned_at = issue.assigned_at or now
    if deadline is not None or issue.deadline is None:
        category = await timing.category(session, issue.category, for_new=False)
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
    await _append_event(
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
    if body.reason is RejectReason.duplicate:
        if not body.duplicate_of:
            raise UnprocessableEntity(
                "name the issue this one repeats in `duplicate_of`", code="duplicate_of_required"
            )
        original = (
            await session.execute(
                select(Issue).where(col(Issue.code) == body.duplicate_of, visible_to(caller))
            )
        ).scalar_one_or_none()
        if original is None or original.id == issue.id:
            raise _not_found(body.duplicate_of)
        issue.duplicate_of = original.id
        changes["duplicate_of"] = [None, original.code]
    issue.reject_reason, issue.rejected_at = body.reason.value, utcnow()
    await _append_event(session, issue, caller, Action.reject, body.note, changes, [])


async def _assign(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: AssignBody
) -> None:
    changes = await _dispatch(
        session, caller, issue, body.responsible_region, body.responsible_user_id, body.deadline
    )
    if issue.status != Status.assigned:
        changes["status"] = [issue.status, Status.assigned]
    await _append_event(session, issue, caller, Action.assign, body.note, changes, [])


async def _submit(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: SubmitBody
) -> None:
    photos = await _checked_photos(session, state, caller, body.after_photo_ids, issue_code=issue.code)
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
        )
        records.append(evidence.evidence_record(photo, findings))
        flags += [{**f, "photo_id": photo.id} for f in findings]
    now = utcnow()
    issue.after_photo_ids, issue.evidence_flags = [p.id for p in photos], flags
    issue.submitted_at, issue.submitter = now, str(caller.subject)
    await _append_event(
        session,
        issue,
        caller,
        Action.submit,
        body.note,
        {"status": [issue.status, Status.submitted], "after_photo_ids": [None, issue.after_photo_ids]},
        records,
        at=now,
    )
    await _attach_later(session, state, issue, issue.after_photo_ids)


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
    await _append_event(session, issue, caller, Action.accept, body.note, changes, [], at=now)


async def _return(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: ReturnBody
) -> None:
    if issue.submitter == str(caller.subject):
        raise Forbidden("the one who submitted a fix may not return it", code="own_submission")
    category = await timing.category(session, issue.category, for_new=False)
    old_deadline = issue.deadline
    now = utcnow()
    issue.assigned_at = now  # the rework's time starts now
    await timing.apply_deadline(session, issue, body.deadline, start=now, default_from=category)
    issue.rework_count += 1
    issue.after_photo_ids, issue.evidence_flags, issue.submitter = [], [], None
    await _append_event(
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
    await _append_event(
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
    await timing.apply_deadline(session, issue, until, start=issue.assigned_at or issue.reported_at)
    issue.extension_pending = False
    issue.extension_count += 1
    await _append_event(
        session, issue, caller, Action.approve_extension, body.note, _changes(deadline=(old, until)), []
    )


async def _refuse_extension(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: RefuseExtensionBody
) -> None:
    issue.extension_pending, issue.extension_until = False, None
    await _append_event(
        session, issue, caller, Action.refuse_extension, body.note, {"extension_pending": [True, False]}, []
    )


async def _put_on_account(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: PutOnAccountBody
) -> None:
    target = datetime.combine(body.target_date, datetime.max.time(), tzinfo=timing.CHINA).astimezone(UTC)
    issue.on_account, issue.account_plan, issue.account_target = True, body.plan, target
    await _append_event(
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
    issue.on_account = False
    if body.deadline is not None:
        await timing.apply_deadline(
            session, issue, body.deadline, start=issue.assigned_at or issue.reported_at
        )
    await _append_event(
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
    await _append_event(
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
    again = await create(session, state, caller, report)
    again.recurrence_of = issue.id
    await _append_event(
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
    await _append_event(
        session, issue, caller, Action.feedback, body.comment, {"satisfaction": [None, body.satisfaction]}, []
    )


async def _unlink(
    session: AsyncSession, state: IssuesState, caller: Caller, issue: Issue, body: UnlinkBody
) -> None:
    old = issue.probable_duplicate_of
    issue.probable_duplicate_of = None
    await _append_event(
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


# ---- the list ----


@dataclass(frozen=True)
class IssueFilters:
    """What a list (or an export) narrows to, always within the caller's subtree."""

    region: str | None = None
    status: Sequence[Status] = ()
    category: Sequence[str] = ()
    source: Sequence[Source] = ()
    severity: Sequence[str] = ()
    overdue: bool | None = None
    light: Light | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    closed_from: datetime | None = None
    closed_to: datetime | None = None
    q: str | None = None
    mine: bool = False


async def filtered(session: AsyncSession, caller: Caller, filters: IssueFilters) -> Select[Any]:
    """The statement of the issues the caller may see that match the filters (404 for a region outside)."""
    statement = select(Issue).where(visible_to(caller))
    if filters.region is not None:
        region = await visible_region(session, caller, filters.region)
        statement = statement.where(col(Issue.region_path).startswith(region.path, autoescape=True))
    if filters.status:
        statement = statement.where(col(Issue.status).in_([s.value for s in filters.status]))
    if filters.category:
        statement = statement.where(col(Issue.category).in_(list(filters.category)))
    if filters.source:
        statement = statement.where(col(Issue.source).in_([s.value for s in filters.source]))
    if filters.severity:
        statement = statement.where(col(Issue.severity).in_(list(filters.severity)))
    now = utcnow()
    open_ = col(Issue.status).in_([s.value for s in OPEN_STATUSES])
    if filters.overdue is not None:
        late = and_(open_, col(Issue.deadline) < now)
        statement = statement.where(late if filters.overdue else ~late)
    if filters.light is Light.red:
        statement = statement.where(open_, col(Issue.deadline) < now)
    elif filters.light is Light.yellow:
        statement = statement.where(open_, col(Issue.yellow_at) <= now, col(Issue.deadline) >= now)
    elif filters.light is Light.green:
        statement = statement.where(open_, col(Issue.yellow_at) > now)
    if filters.reported_from is not None:
        statement = statement.where(col(Issue.reported_at) >= filters.reported_from)
    if filters.reported_to is not None:
        statement = statement.where(col(Issue.reported_at) < filters.reported_to)
    if filters.closed_from is not None:
        statement = statement.where(col(Issue.closed_at) >= filters.closed_from)
    if filters.closed_to is not None:
        statement = statement.where(col(Issue.closed_at) < filters.closed_to)
    if filters.q:
        statement = statement.where(
            or_(
                col(Issue.description).icontains(filters.q, autoescape=True),
                col(Issue.address).icontains(filters.q, autoescape=True),
            )
        )
    if filters.mine:
        mine = col(Issue.reporter) == str(caller.subject)
        if caller.user_id is not None:
            mine = or_(mine, col(Issue.responsible_user_id) == caller.user_id)
        statement = statement.where(mine)
    return statement


async def list_issues(
    session: AsyncSession, caller: Caller, filters: IssueFilters, page: PageParams
) -> IssuePage:
    statement = await filtered(session, caller, filters)
    rows = await paginate(
        session,
        statement,
        [cast(ColumnElement[Any], Issue.id)],
        page,
        lambda issue: issue,
        lambda issue: [issue.id],
        descending=True,
    )
    shape = await presenter(session, caller, rows.items)
    return IssuePage(
        items=[shape.issue(issue) for issue in rows.items], next_cursor=rows.next_cursor, limit=rows.limit
    )
