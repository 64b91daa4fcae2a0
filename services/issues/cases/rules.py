"""The pure core of an issue's life (销号制): states, who may do what from where, codes, and the event chain.

reported ──verify──▶ assigned ──submit──▶ submitted ──accept──▶ closed (销号)
   │                    ▲                     │
   └─reject─▶ rejected  └──────return─────────┘  (退回重整: rework count + 1)
assigned ──reject──▶ rejected (a finding that repeats an open issue, or is not the county's)
closed ──recur──▶ a new issue linked to the old one (反弹)

Beside the status an open issue may carry: an extension asked for (延期), being on account (挂账), being
supervised (督办). No I/O here: the service loads an issue, asks these rules, and stores what they say.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from services.kit.identity import Role


class Status(StrEnum):
    reported = "reported"  # 上报, waiting to be verified (立案)
    assigned = "assigned"  # 派遣: the responsible unit is to fix it by the deadline
    submitted = "submitted"  # 处置完毕, waiting for acceptance (核查)
    closed = "closed"  # 销号
    rejected = "rejected"  # not a real problem, a duplicate, not the county's: never counted as fixed


OPEN_STATUSES = frozenset({Status.reported, Status.assigned, Status.submitted})


class Source(StrEnum):
    inspection = "inspection"  # 督查检查
    covert = "covert"  # 暗访
    grid = "grid"  # 网格巡查
    citizen = "citizen"  # 群众随手拍
    hotline = "hotline"  # 12345 / 12319
    integration = "integration"
    open311 = "open311"


class Action(StrEnum):
    verify = "verify"  # 立案
    reject = "reject"
    assign = "assign"  # 派遣 (again)
    submit = "submit"  # 整改完毕, with after photos
    accept = "accept"  # 销号
    return_ = "return"  # 退回重整
    request_extension = "request_extension"  # 申请延期
    approve_extension = "approve_extension"
    refuse_extension = "refuse_extension"
    put_on_account = "put_on_account"  # 挂账
    resume = "resume"
    supervise = "supervise"  # 督办
    recur = "recur"  # 反弹
    feedback = "feedback"  # 群众满意度
    unlink = "unlink"  # not a duplicate after all


class RejectReason(StrEnum):
    invalid = "invalid"
    duplicate = "duplicate"
    not_responsible = "not_responsible"
    other = "other"


STAFF_SUPERVISORS = frozenset({Role.admin, Role.inspector})
DISPATCHERS = frozenset({Role.admin, Role.inspector, Role.officer})
RESPONSIBLE = frozenset({Role.admin, Role.officer, Role.village, Role.grid})

# From which statuses each action may be taken.
FROM: Mapping[Action, frozenset[Status]] = {
    Action.verify: frozenset({Status.reported}),
    # Also once assigned: an inspector's finding starts assigned, and may turn out to repeat an open issue
    # (merged: rejected as its `duplicate`) or not to be the county's.
    Action.reject: frozenset({Status.reported, Status.assigned}),
    Action.assign: frozenset({Status.reported, Status.assigned}),
    Action.submit: frozenset({Status.assigned}),
    Action.accept: frozenset({Status.submitted}),
    Action.return_: frozenset({Status.submitted}),
    Action.request_extension: frozenset({Status.assigned}),
    Action.approve_extension: frozenset({Status.assigned}),
    Action.refuse_extension: frozenset({Status.assigned}),
    Action.put_on_account: frozenset({Status.assigned}),
    Action.resume: frozenset({Status.assigned}),
    Action.supervise: OPEN_STATUSES,
    Action.recur: frozenset({Status.closed}),
    Action.feedback: frozenset({Status.closed}),
    Action.unlink: OPEN_STATUSES,
}

# Who may take each action. Accept and return are never the village's or the grid's: they check others'
# work (and the service also refuses the one who submitted). Feedback is the reporter's own, any role.
ROLES: Mapping[Action, frozenset[Role]] = {
    Action.verify: DISPATCHERS,
    Action.reject: DISPATCHERS,
    Action.assign: DISPATCHERS,
    Action.submit: RESPONSIBLE,
    Action.accept: STAFF_SUPERVISORS,
    Action.return_: STAFF_SUPERVISORS,
    Action.request_extension: frozenset({Role.officer, Role.village, Role.grid}),
    Action.approve_extension: frozenset({Role.admin}),
    Action.refuse_extension: frozenset({Role.admin}),
    Action.put_on_account: frozenset({Role.admin}),
    Action.resume: frozenset({Role.admin}),
    Action.supervise: STAFF_SUPERVISORS,
    Action.recur: DISPATCHERS | {Role.grid},
    Action.feedback: frozenset(Role),
    Action.unlink: DISPATCHERS,
}


@dataclass(frozen=True)
class CaseState:
    """What the rules need to know of an issue."""

    status: Status
    extension_pending: bool = False
    on_account: bool = False
    supervised: bool = False
    has_feedback: bool = False
    probable_duplicate: bool = False


def _condition_holds(state: CaseState, action: Action) -> bool:
    """The flags an action needs beside the status."""
    if action is Action.request_extension:
        return not state.extension_pending and not state.on_account
    if action in (Action.approve_extension, Action.refuse_extension):
        return state.extension_pending
    if action is Action.put_on_account:
        return not state.on_account
    if action is Action.resume:
        return state.on_account
    if action is Action.supervise:
        return not state.supervised
    if action is Action.feedback:
        return not state.has_feedback
    if action is Action.unlink:
        return state.probable_duplicate
    return True


def allowed_actions(state: CaseState) -> list[Action]:
    """Every action the issue's state allows now (whoever asks), in a stable order."""
    return [action for action in Action if state.status in FROM[action] and _condition_holds(state, action)]


def may_take(role: Role, action: Action) -> bool:
    return role in ROLES[action]


def actions_for(state: CaseState, role: Role) -> list[Action]:
    """What this role may do to the issue now: what a front end shows as buttons."""
    return list(_actions_for(state, role))


@functools.cache
def _actions_for(state: CaseState, role: Role) -> tuple[Action, ...]:
    # A few hundred states × roles at most; a page of 50 issues asks 50 times.
    return tuple(action for action in allowed_actions(state) if may_take(role, action))


def status_after(state: CaseState, action: Action) -> Status:
    """The status an allowed action leads to (recur leaves the old issue closed and opens a new one)."""
    return {
        Action.verify: Status.assigned,
        Action.reject: Status.rejected,
        Action.assign: Status.assigned,
        Action.submit: Status.submitted,
        Action.accept: Status.closed,
        Action.return_: Status.assigned,
    }.get(action, state.status)


def next_state(state: CaseState, action: Action) -> CaseState:
    """The state an allowed action leads to, flags included: handing in the fix makes a pending extension
    moot, 销号 and a rejection take an issue off the account, a return keeps what was asked for the rework."""
    extension_pending = {
        Action.request_extension: True,
        Action.approve_extension: False,
        Action.refuse_extension: False,
        Action.submit: False,
        Action.reject: False,
    }.get(action, state.extension_pending)
    on_account = {
        Action.put_on_account: True,
        Action.resume: False,
        Action.accept: False,
        Action.reject: False,
    }.get(action, state.on_account)
    return CaseState(
        status=status_after(state, action),
        extension_pending=extension_pending,
        on_account=on_account,
        supervised=state.supervised or action is Action.supervise,
        has_feedback=state.has_feedback or action is Action.feedback,
        probable_duplicate=state.probable_duplicate and action is not Action.unlink,
    )


def initial_status(source: Source, role: Role) -> Status:
    """Inspectors' and the office's findings start assigned; what citizens, grids and systems report is
    verified (立案) first."""
    if role in DISPATCHERS and source in (Source.inspection, Source.covert):
        return Status.assigned
    return Status.reported


# ---- the human code: per county and year, gap-free: 370282-2026-001104 ----


def issue_code(county_code: str, year: int, number: int) -> str:
    return f"{county_code}-{year}-{number:06d}"


# ---- the event chain: every change is an event holding the hash of the one before ----

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainLink:
    """The hashed content of one event (what a verifier recomputes)."""

    issue_id: int
    seq: int
    action: str
    actor: str
    role: str
    at: str  # RFC 3339 in UTC, to the microsecond
    note: str | None
    changes: Mapping[str, Any]
    photos: Sequence[Mapping[str, Any]]
    prev_hash: str


def link_hash(link: ChainLink) -> str:
    """SHA-256 over the event's canonical JSON (sorted keys, no spaces): any change to a field changes it."""
    document = {
        "issue_id": link.issue_id,
        "seq": link.seq,
        "action": link.action,
        "actor": link.actor,
        "role": link.role,
        "at": link.at,
        "note": link.note,
        "changes": link.changes,
        "photos": list(link.photos),
        "prev_hash": link.prev_hash,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def first_break(
    links: Iterable[tuple[ChainLink, str]], *, expected_head: str | None = None
) -> ChainBreak | None:
    """The first event whose stored hash or link does not hold, in stored order; None when the chain is whole.

    `links` are (content, stored hash) in the order of `seq`. A changed field, a removed or reordered row,
    or a row put in between all show as a break; `expected_head` (the issue's record of its last hash)
    also catches rows removed at the end.
    """
    previous, expected_seq, last = GENESIS, 1, GENESIS
    for link, stored in links:
        if link.seq != expected_seq:
            return ChainBreak(link.seq, f"event {expected_seq} is missing or out of order")
        if link.prev_hash != previous:
            return ChainBreak(link.seq, "does not follow the event before it")
        if link_hash(link) != stored:
            return ChainBreak(link.seq, "its content does not match its hash")
        previous = last = stored
        expected_seq += 1
    if expected_head is not None and expected_head != last:
        return ChainBreak(expected_seq, "the last events are missing")
    return None
