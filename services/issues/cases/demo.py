"""Demo issues for the embedded default: a few dozen in every state, so a newcomer sees a living county.

Written the way the lifecycle writes them (rows plus hash-chained events), dated over the last weeks, with
no photos (the demo's media archive starts empty).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.cases import timing
from services.issues.cases.history import append_event
from services.issues.cases.models import Issue
from services.issues.cases.rules import GENESIS, Action, Status
from services.issues.cases.service import next_code
from services.issues.categories.service import get_category
from services.issues.regions.models import Region
from services.issues.users.models import User
from services.kit.auth import Caller
from services.kit.db import utcnow
from services.kit.identity import Role, Subject

PLACES = [
    ("370282103201", 36.4312, 120.4471, "前庄村东首村道北侧"),
    ("370282103201-W01", 36.4325, 120.4458, "前庄村第一网格文化广场西"),
    ("370282103202", 36.4290, 120.4520, "后庄村南河沿"),
    ("370282103203", 36.4401, 120.4388, "西河村村委会后"),
    ("370282104201", 36.5102, 120.3911, "七级村北大街"),
    ("370282104202", 36.5150, 120.3855, "大欧村养殖小区东"),
]
PROBLEMS = [
    ("luan-dui-fang", "路边堆放柴草杂物"),
    ("luan-reng-dao", "沟渠内乱扔生活垃圾"),
    ("luan-tie-hua", "墙面张贴小广告"),
    ("luan-ting-fang", "废旧车辆占道停放"),
    ("luan-da-jian", "私搭简易棚"),
    ("luan-pai-fang", "生活污水直排路面"),
]
# (how many, final status, the actions after the report)
STORIES: list[tuple[int, Status, list[Action]]] = [
    (24, Status.reported, []),
    (16, Status.assigned, [Action.verify]),
    (6, Status.assigned, [Action.verify, Action.supervise]),
    (4, Status.assigned, [Action.verify, Action.put_on_account]),
    (4, Status.assigned, [Action.verify, Action.request_extension]),
    (24, Status.submitted, [Action.verify, Action.submit]),
    (30, Status.closed, [Action.verify, Action.submit, Action.accept]),
    (8, Status.closed, [Action.verify, Action.submit, Action.return_, Action.submit, Action.accept]),
    (24, Status.rejected, [Action.reject]),
]


@dataclass(frozen=True)
class _People:
    by_role: dict[Role, Caller]

    def __getitem__(self, role: Role) -> Caller:
        return self.by_role[role]


async def _people(session: AsyncSession) -> _People:
    rows = await session.execute(
        select(User, Region)
        .join(Region, col(Region.id) == col(User.region_id))
        .where(col(User.username).is_not(None))
    )
    callers: dict[Role, Caller] = {}
    for user, region in rows.all():
        role = Role(user.role)
        if role not in callers and user.id is not None:
            callers[role] = Caller(
                Subject.user(user.id), role, region.code, region.path, frozenset(), user.display_name
            )
    return _People(callers)


async def seed_demo_issues(session: AsyncSession, *, seed: int = 2026) -> int:
    """Add the demo issues to a database that has the demo tree and none yet; returns how many."""
    if (await session.execute(select(col(Issue.id)).limit(1))).first() is not None:
        return 0
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible, nothing secret
    people = await _people(session)
    regions = {r.code: r for r in (await session.execute(select(Region))).scalars()}
    now = utcnow()
    made = 0
    for count, final, actions in STORIES:
        for _ in range(count):
            code, lat, lon, address = rng.choice(PLACES)
            category, description = rng.choice(PROBLEMS)
            region = regions[code]
            reported = now - timedelta(days=rng.randint(1, 25), hours=rng.randint(0, 9))
            reporter = people[rng.choice([Role.citizen, Role.grid, Role.inspector])]
            issue = Issue(
                code=await next_code(session, "370282", reported.astimezone(timing.CHINA).year),
                category=category,
                severity=rng.choice(["minor", "normal", "normal", "serious"]),
                source={Role.citizen: "citizen", Role.grid: "grid"}.get(reporter.role, "inspection"),
                status=Status.reported,
                region_code=code,
                region_path=region.path,
                county_code="370282",
                description=description,
                address=address,
                latitude=lat + rng.uniform(-0.001, 0.001),
                longitude=lon + rng.uniform(-0.001, 0.001),
                reporter=str(reporter.subject),
                reporter_role=reporter.role,
                reported_at=reported,
                last_event_hash=GENESIS,
            )
            session.add(issue)
            await session.flush()
            await append_event(
                session, issue, reporter, "report", None, {"status": [None, "reported"]}, [], at=reported
            )
            await _tell(session, issue, actions, people, reported, rng)
            assert issue.status == final, (issue.code, issue.status, final)
            made += 1
    return made


async def _tell(
    session: AsyncSession,
    issue: Issue,
    actions: list[Action],
    people: _People,
    start: datetime,
    rng: random.Random,
) -> None:
    """Move the issue through `actions`, a day or two apart, as the office and the village would."""
    moment = start
    category = await get_category(session, issue.category)
    for action in actions:
        moment = min(moment + timedelta(days=rng.randint(1, 3), hours=rng.randint(1, 5)), utcnow())
        before = issue.status
        if action in (Action.verify, Action.return_):
            actor = people[Role.officer] if action is Action.verify else people[Role.inspector]
            issue.assigned_at = moment
            issue.responsible_region_code, issue.responsible_region_path = (
                issue.region_code,
                issue.region_path,
            )
            await timing.apply_deadline(session, issue, None, start=moment, default_from=category)
            issue.status = Status.assigned
            if action is Action.return_:
                issue.rework_count += 1
        elif action is Action.submit:
            actor, issue.status, issue.submitted_at = people[Role.village], Status.submitted, moment
            issue.submitter = str(actor.subject)
        elif action is Action.accept:
            actor, issue.status, issue.closed_at = people[Role.inspector], Status.closed, moment
            issue.closed_late = issue.deadline is not None and moment > issue.deadline
        elif action is Action.reject:
            actor, issue.status, issue.rejected_at, issue.reject_reason = (
                people[Role.officer],
                Status.rejected,
                moment,
                "invalid",
            )
        elif action is Action.supervise:
            actor, issue.supervised = people[Role.admin], True
        elif action is Action.put_on_account:
            actor, issue.on_account, issue.account_plan = people[Role.admin], True, "纳入明年村庄整治项目"
            issue.account_target = moment + timedelta(days=180)
        else:  # request_extension
            actor, issue.extension_pending = people[Role.village], True
            issue.extension_reason = "需协调机械清运"
            issue.extension_until = (issue.deadline or moment) + timedelta(days=7)
        changes = {"status": [before, issue.status]} if before != issue.status else {}
        await append_event(session, issue, actor, action, None, changes, [], at=moment)
