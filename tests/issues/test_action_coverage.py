"""The action routes seen from outside: every one hides issues outside the caller's region, refusing an
extension, assigning, and who may accept and return. Each refusal is checked to have changed nothing: the
issue as read back and its events are the same as before."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.issues.cases.models import Issue
from services.issues.cases.routes import ACTION_SCOPES
from services.issues.cases.rules import Action
from services.issues.cases.timing import CHINA
from services.issues.users.models import User
from services.kit.identity import ROLE_SCOPES, Role, Scope
from services.kit.state import state_of
from tests.issues.api import user_id
from tests.issues.lifecycle import POINT, Media, media, report
from tests.issues.lifecycle import act as _act
from tests.issues.lifecycle import reported as _report
from tests.support.builders import COUNTY, FAR_VILLAGE, GRID, OTHER_TOWN, TOWN, VILLAGE, ZONE
from tests.support.problems import assert_problem

__all__ = ["media"]  # the fixture, used by name

Auth = Callable[..., dict[str, str]]


async def _ok(
    client: httpx.AsyncClient, issue_id: int, action: str, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    answer = await _act(client, issue_id, action, headers, **body)
    assert answer.status_code in (200, 201), answer.text
    shown: dict[str, Any] = answer.json()
    return shown


async def _seen(client: httpx.AsyncClient, issue_id: int, headers: dict[str, str]) -> tuple[Any, Any]:
    """The issue and its events as `headers` reads them now."""
    issue = await client.get(f"/v1/issues/{issue_id}", headers=headers)
    events = await client.get(f"/v1/issues/{issue_id}/events", headers=headers)
    assert issue.status_code == events.status_code == 200, (issue.text, events.text)
    return issue.json(), events.json()["items"]


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


MOMENTS = ("reported_at", "deadline", "submitted_at", "closed_at", "rejected_at", "account_target")


def _as_instants(issue: dict[str, Any]) -> dict[str, Any]:
    """The issue with its moments as instants: an action's answer writes a deadline in the offset it was
    given in (`+08:00`), a later read in UTC (`Z`), the same moment."""
    return {k: _moment(v) if k in MOMENTS and v is not None else v for k, v in issue.items()}


def _later(days: int) -> str:
    """An RFC 3339 moment `days` from now, in China time."""
    return (datetime.now(UTC) + timedelta(days=days)).astimezone(CHINA).isoformat()


# ---- 1. every action route hides issues outside the caller's region ----

# The state each action is possible from, and who in the issue's region may take it with that body.
STAGE: dict[Action, str] = {
    Action.verify: "reported",
    Action.reject: "reported",
    Action.assign: "reported",
    Action.submit: "assigned",
    Action.accept: "submitted",
    Action.return_: "submitted",
    Action.request_extension: "assigned",
    Action.approve_extension: "extension_pending",
    Action.refuse_extension: "extension_pending",
    Action.put_on_account: "assigned",
    Action.resume: "on_account",
    Action.supervise: "assigned",
    Action.recur: "closed",
    Action.feedback: "closed",
    Action.unlink: "duplicate",
}
INSIDER: dict[Action, tuple[str, str]] = {
    Action.verify: ("officer", TOWN),
    Action.reject: ("officer", TOWN),
    Action.assign: ("officer", TOWN),
    Action.submit: ("village", VILLAGE),
    Action.accept: ("inspector", COUNTY),
    Action.return_: ("inspector", COUNTY),
    Action.request_extension: ("village", VILLAGE),
    Action.approve_extension: ("admin", COUNTY),
    Action.refuse_extension: ("admin", COUNTY),
    Action.put_on_account: ("admin", COUNTY),
    Action.resume: ("admin", COUNTY),
    Action.supervise: ("inspector", COUNTY),
    Action.recur: ("inspector", COUNTY),
    Action.feedback: ("citizen", VILLAGE),
    Action.unlink: ("officer", TOWN),
}
NEEDS = ACTION_SCOPES  # the scope each action route asks for: an outsider without it is refused first


async def _body_for(action: Action, media: Media, auth: Auth) -> dict[str, Any]:
    """A valid body for `action` (what the insider's request then succeeds with)."""
    if action is Action.submit:
        return {"after_photo_ids": [await media.upload(auth("village", VILLAGE), seed=91)], "note": "已清运"}
    return {
        Action.verify: {"note": "属实"},
        Action.reject: {"reason": "invalid", "note": "不属实"},
        Action.assign: {"responsible_region": VILLAGE, "deadline": _later(30)},
        Action.accept: {"note": "核查已整改"},
        Action.return_: {"note": "未清理干净"},
        Action.request_extension: {"reason": "需协调铲车", "until": _later(120)},
        Action.approve_extension: {"note": "同意延期"},
        Action.refuse_extension: {"note": "不符合延期条件"},
        Action.put_on_account: {"plan": "纳入明年项目", "target_date": "2027-06-30"},
        Action.resume: {"note": "资金已到位"},
        Action.supervise: {"note": "区督办"},
        Action.recur: {"description": "原处再次堆放垃圾", "note": "又堆上了"},
        Action.feedback: {"satisfaction": 4, "comment": "满意"},
        Action.unlink: {"note": "非同一问题"},
    }[action]


async def _issue_at(stage: str, client: httpx.AsyncClient, auth: Auth, media: Media) -> dict[str, Any]:
    """A citizen's report in 前庄村 taken to `stage` through the API."""
    citizen, officer, village = auth("citizen", VILLAGE), auth("officer", TOWN), auth("village", VILLAGE)
    admin, inspector = auth("admin", COUNTY), auth("inspector")
    issue = await _report(client, citizen, source="citizen")
    if stage == "duplicate":
        again = await _report(client, citizen, source="citizen", latitude=POINT[0] + 0.0001)
        assert again["probable_duplicate_of"] == issue["code"]
        return again
    if stage == "reported":
        return issue
    issue = await _ok(client, issue["id"], "verify", officer, note="属实")
    if stage == "extension_pending":
        issue = await _ok(
            client, issue["id"], "request_extension", village, reason="需协调铲车", until=_later(90)
        )
    elif stage == "on_account":
        issue = await _ok(client, issue["id"], "put_on_account", admin, plan="明年", target_date="2027-06-30")
    elif stage in ("submitted", "closed"):
        after = await media.upload(village, seed=92)
        issue = await _ok(client, issue["id"], "submit", village, after_photo_ids=[after])
        if stage == "closed":
            issue = await _ok(client, issue["id"], "accept", inspector)
    return issue


OUTSIDERS = [("inspector", OTHER_TOWN), ("officer", OTHER_TOWN), ("admin", OTHER_TOWN)]


@pytest.mark.parametrize("action", list(Action), ids=[a.value for a in Action])
async def test_every_action_on_an_issue_outside_the_callers_region_is_404_and_changes_nothing(
    action: Action, client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    issue = await _issue_at(STAGE[action], client, auth, media)
    body = await _body_for(action, media, auth)
    admin = auth("admin", COUNTY)
    before = await _seen(client, issue["id"], admin)
    outsiders = [
        (role, region)
        for role, region in OUTSIDERS
        if action not in NEEDS or NEEDS[action] in ROLE_SCOPES[Role(role)]
    ]
    assert ("inspector", OTHER_TOWN) in outsiders  # every action is tried by someone with its scope
    for role, region in outsiders:
        refused = await _act(client, issue["id"], action.value, auth(role, region), **body)
        problem = assert_problem(refused, 404, "issue_not_found")
        assert str(issue["id"]) in problem["detail"] and issue["code"] not in refused.text
        assert await _seen(client, issue["id"], admin) == before, (role, region)
    # The same request from inside the region is one the route takes: the 404 was the region's alone.
    insider = auth(*INSIDER[action])
    done = await _act(client, issue["id"], action.value, insider, **body)
    assert done.status_code == (201 if action is Action.recur else 200), done.text
    events = (await _seen(client, issue["id"], admin))[1]
    assert len(events) == len(before[1]) + 1 and events[-1]["action"] == action.value


# ---- 2. refusing an extension ----


async def test_the_office_refuses_an_extension_and_the_deadline_stays(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    inspector, village, admin = auth("inspector"), auth("village", VILLAGE), auth("admin", COUNTY)
    issue = await _report(client, inspector)
    asked = await _ok(
        client, issue["id"], "request_extension", village, reason="雨天无法施工", until=_later(90)
    )
    assert asked["extension_pending"] is True and asked["deadline"] == issue["deadline"]
    refused = await _act(client, issue["id"], "refuse_extension", admin, note="不符合延期条件")
    assert refused.status_code == 200, refused.text
    shown = refused.json()
    assert shown["status"] == "assigned" and shown["extension_pending"] is False
    assert _moment(shown["deadline"]) == _moment(issue["deadline"]) and shown["extension_count"] == 0
    assert shown["light"] == issue["light"] == "green"
    read, events = await _seen(client, issue["id"], admin)
    assert _as_instants(read) == _as_instants(shown)
    assert [e["action"] for e in events] == ["report", "request_extension", "refuse_extension"]
    last = events[-1]
    assert last["note"] == "不符合延期条件" and last["role"] == "admin"
    assert last["changes"] == {"extension_pending": [True, False]}
    assert last["prev_hash"] == events[-2]["hash"]
    # The village may ask again; the office no longer has anything to decide.
    village_view = (await client.get(f"/v1/issues/{issue['id']}", headers=village)).json()
    assert "request_extension" in village_view["allowed_actions"]
    assert not {"approve_extension", "refuse_extension"} & set(read["allowed_actions"])


async def test_refusing_an_extension_nobody_asked_for_is_409_naming_what_the_office_may_do(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    inspector, admin = auth("inspector"), auth("admin", COUNTY)
    issue = await _report(client, inspector, region=GRID)
    before = await _seen(client, issue["id"], admin)
    problem = assert_problem(
        await _act(client, issue["id"], "refuse_extension", admin, note="不同意"), 409, "action_not_allowed"
    )
    # What the office may do now: exactly the buttons the issue as read shows it, the extension's not among them.
    assert problem["allowed_actions"] == before[0]["allowed_actions"]
    assert {"assign", "submit", "put_on_account", "supervise"} <= set(problem["allowed_actions"])
    assert not {"approve_extension", "refuse_extension"} & set(problem["allowed_actions"])
    assert await _seen(client, issue["id"], admin) == before
    # Once refused, a second refusal is the same 409 and changes nothing either.
    await _ok(client, issue["id"], "request_extension", auth("grid", GRID), reason="需协调", until=_later(90))
    await _ok(client, issue["id"], "refuse_extension", admin, note="不同意")
    after_first = await _seen(client, issue["id"], admin)
    assert_problem(
        await _act(client, issue["id"], "refuse_extension", admin, note="再次"), 409, "action_not_allowed"
    )
    assert await _seen(client, issue["id"], admin) == after_first


@pytest.mark.parametrize(
    ("role", "region"),
    [("inspector", COUNTY), ("officer", TOWN), ("village", VILLAGE), ("grid", GRID)],
)
async def test_only_the_office_may_refuse_an_extension(
    role: str, region: str, client: httpx.AsyncClient, auth: Auth
) -> None:
    admin = auth("admin", COUNTY)
    issue = await _report(client, auth("inspector"), region=GRID)
    await _ok(
        client, issue["id"], "request_extension", auth("village", VILLAGE), reason="需协调", until=_later(90)
    )
    before = await _seen(client, issue["id"], admin)
    refused = await _act(client, issue["id"], "refuse_extension", auth(role, region), note="不同意")
    assert_problem(refused, 403, "role_not_allowed")
    after = await _seen(client, issue["id"], admin)
    assert after == before and after[0]["extension_pending"] is True


# ---- 3. assigning ----


async def test_an_officer_assigns_a_reported_issue_to_a_village_with_a_deadline(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    officer = auth("officer", TOWN)
    issue = await _report(client, auth("grid", GRID), source="grid", region=GRID)
    assert issue["status"] == "reported" and issue["responsible_region"] is None
    village_user = await user_id(app, "village")
    deadline = _later(20)
    answer = await _act(
        client,
        issue["id"],
        "assign",
        officer,
        responsible_region=VILLAGE,
        responsible_user_id=village_user,
        deadline=deadline,
        note="交前庄村",
    )
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["status"] == "assigned"
    assert (shown["responsible_region"], shown["responsible_user_id"]) == (VILLAGE, village_user)
    assert _moment(shown["deadline"]) == _moment(deadline)
    assert shown["light"] == "green" and shown["overdue"] is False
    read, events = await _seen(client, issue["id"], officer)
    assert _as_instants(read) == _as_instants(shown)
    assert [e["action"] for e in events] == ["report", "assign"]
    changes = events[-1]["changes"]
    assert changes["status"] == ["reported", "assigned"]
    assert changes["responsible_region"] == [None, VILLAGE]
    assert changes["responsible_user_id"] == [None, village_user]
    assert changes["deadline"][0] is None and _moment(changes["deadline"][1]) == _moment(deadline)
    assert events[-1]["note"] == "交前庄村" and events[-1]["role"] == "officer"
    # The user it is assigned to finds it among its own issues.
    assignee = auth("village", VILLAGE, subject=f"user:{village_user}")
    mine = (await client.get("/v1/issues", params={"mine": "true"}, headers=assignee)).json()["items"]
    assert [i["id"] for i in mine] == [issue["id"]]


async def test_an_inspector_reassigns_an_assigned_issue_to_another_region_and_user(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    inspector = auth("inspector")
    issue = await _report(client, inspector, region=GRID)
    assert issue["status"] == "assigned" and issue["responsible_region"] == GRID
    village_user = await user_id(app, "village")
    deadline = _later(45)
    shown = await _ok(
        client,
        issue["id"],
        "assign",
        inspector,
        responsible_region=VILLAGE,
        responsible_user_id=village_user,
        deadline=deadline,
    )
    assert shown["status"] == "assigned"
    assert (shown["responsible_region"], shown["responsible_user_id"]) == (VILLAGE, village_user)
    assert _moment(shown["deadline"]) == _moment(deadline) and shown["light"] == "green"
    read, events = await _seen(client, issue["id"], inspector)
    assert _as_instants(read) == _as_instants(shown)
    assert [e["action"] for e in events] == ["report", "assign"]
    changes = events[-1]["changes"]
    assert "status" not in changes  # it was assigned already
    assert changes["responsible_region"] == [GRID, VILLAGE]
    assert changes["responsible_user_id"] == [None, village_user]
    assert _moment(changes["deadline"][0]) == _moment(issue["deadline"])
    assert _moment(changes["deadline"][1]) == _moment(deadline)
    # The user it is now assigned to finds it among its own issues.
    assignee = auth("village", VILLAGE, subject=f"user:{village_user}")
    mine = (await client.get("/v1/issues", params={"mine": "true"}, headers=assignee)).json()["items"]
    assert [i["id"] for i in mine] == [issue["id"]]
    # A later reassignment to the 管区 above the village, keeping the deadline.
    again = await _ok(client, issue["id"], "assign", inspector, responsible_region=ZONE)
    assert again["responsible_region"] == ZONE and _moment(again["deadline"]) == _moment(deadline)
    last = (await _seen(client, issue["id"], inspector))[1][-1]
    assert last["action"] == "assign" and last["changes"]["responsible_region"] == [VILLAGE, ZONE]
    assert "deadline" not in last["changes"]


@pytest.mark.parametrize("stage", ["reported", "assigned"])
async def test_assigning_to_a_region_above_the_town_is_422_and_changes_nothing(
    stage: str, client: httpx.AsyncClient, auth: Auth
) -> None:
    inspector, admin = auth("inspector"), auth("admin", COUNTY)
    if stage == "reported":
        issue = await _report(client, auth("citizen", VILLAGE), source="citizen")
    else:
        issue = await _report(client, inspector)
    assert issue["status"] == stage
    before = await _seen(client, issue["id"], admin)
    for caller in (inspector, admin):
        refused = await _act(
            client, issue["id"], "assign", caller, responsible_region=COUNTY, deadline=_later(10)
        )
        problem = assert_problem(refused, 422, "responsible_level")
        assert COUNTY in problem["detail"]
        assert await _seen(client, issue["id"], admin) == before


# ---- 4. who may accept and return ----


async def _submitted(
    client: httpx.AsyncClient, auth: Auth, media: Media, submitter: dict[str, str]
) -> dict[str, Any]:
    issue = await _report(client, auth("inspector"), region=GRID)  # in the grid: the grid sees it too
    after = await media.upload(submitter, seed=93)
    shown = await _ok(client, issue["id"], "submit", submitter, after_photo_ids=[after], note="已清运")
    assert shown["status"] == "submitted"
    return shown


async def test_the_submitter_may_not_return_its_own_fix(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    admin = auth("admin", COUNTY)
    issue = await _submitted(client, auth, media, admin)
    before = await _seen(client, issue["id"], admin)
    refused = await _act(client, issue["id"], "return", admin, note="自己退回")
    assert_problem(refused, 403, "own_submission")
    after = await _seen(client, issue["id"], admin)
    assert after == before and after[0]["status"] == "submitted"
    # Someone else may.
    returned = await _ok(client, issue["id"], "return", auth("inspector"), note="未清理干净")
    assert returned["status"] == "assigned" and returned["rework_count"] == 1


@pytest.mark.parametrize(
    ("role", "region", "action"),
    [("village", VILLAGE, "return"), ("grid", GRID, "return"), ("grid", GRID, "accept")],
)
@pytest.mark.parametrize("widened", [False, True], ids=["own_scopes", "with_accept_scope"])
async def test_the_village_and_the_grid_may_not_check_a_fix(
    role: str,
    region: str,
    action: str,
    widened: bool,
    client: httpx.AsyncClient,
    auth: Auth,
    media: Media,
) -> None:
    """Their tokens lack `issues:accept` (403 `insufficient_scope`); given it, the role still may not
    (403 `role_not_allowed`)."""
    admin = auth("admin", COUNTY)
    issue = await _submitted(client, auth, media, auth("village", VILLAGE))
    before = await _seen(client, issue["id"], admin)
    scopes = ROLE_SCOPES[Role(role)] | {Scope.issues_accept} if widened else None
    body = {"note": "退回"} if action == "return" else {}
    refused = await _act(client, issue["id"], action, auth(role, region, scopes=scopes), **body)
    assert_problem(refused, 403, "role_not_allowed" if widened else "insufficient_scope")
    after = await _seen(client, issue["id"], admin)
    assert after == before and after[0]["status"] == "submitted"
    assert [e["action"] for e in after[1]] == ["report", "submit"]


# ---- 5. what an assignment may name, and when ----


async def test_an_actions_answer_writes_the_deadline_as_every_read_does(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """A deadline given in China time is stored and answered in UTC: the action's answer is, text for
    text, what a later read gives."""
    officer = auth("officer", TOWN)
    issue = await _report(client, auth("citizen", VILLAGE), source="citizen")
    deadline = _later(15)
    assert deadline.endswith("+08:00")
    shown = await _ok(client, issue["id"], "assign", officer, responsible_region=VILLAGE, deadline=deadline)
    assert shown["deadline"].endswith("Z") and _moment(shown["deadline"]) == _moment(deadline)
    read, events = await _seen(client, issue["id"], officer)
    assert read == shown
    assert _moment(events[-1]["changes"]["deadline"][1]) == _moment(shown["deadline"])


@pytest.mark.parametrize("where", ["below the place", "in another town"])
async def test_a_responsible_region_whose_people_could_not_see_the_issue_is_422(
    where: str, client: httpx.AsyncClient, auth: Auth
) -> None:
    """Users see the issues of their own region: a unit below the issue's village, or beside it, could
    never read or fix what it was given. Refused at the report and at assignment; nothing stored."""
    admin = auth("admin", COUNTY)
    elsewhere = GRID if where == "below the place" else FAR_VILLAGE
    issue = await _report(client, auth("citizen", VILLAGE), source="citizen")
    before = await _seen(client, issue["id"], admin)
    for action in ("assign", "verify"):
        refused = await _act(client, issue["id"], action, admin, responsible_region=elsewhere)
        problem = assert_problem(refused, 422, "responsible_cannot_see")
        assert elsewhere in problem["detail"] and VILLAGE in problem["detail"]
        assert await _seen(client, issue["id"], admin) == before
    listed = (await client.get("/v1/issues", headers=admin)).json()["items"]
    at_report = await client.post("/v1/issues", json=report(responsible_region=elsewhere), headers=admin)
    assert_problem(at_report, 422, "responsible_cannot_see")
    assert (await client.get("/v1/issues", headers=admin)).json()["items"] == listed


async def test_a_new_responsible_region_without_a_user_drops_the_previous_units_user(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    inspector = auth("inspector")
    issue = await _report(client, inspector)
    village_user = await user_id(app, "village")
    named = await _ok(client, issue["id"], "assign", inspector, responsible_user_id=village_user)
    assert (named["responsible_region"], named["responsible_user_id"]) == (VILLAGE, village_user)
    moved = await _ok(client, issue["id"], "assign", inspector, responsible_region=TOWN)
    assert (moved["responsible_region"], moved["responsible_user_id"]) == (TOWN, None)
    last = (await _seen(client, issue["id"], inspector))[1][-1]
    assert last["changes"]["responsible_user_id"] == [village_user, None]


async def test_a_deadline_that_has_passed_is_422_wherever_one_is_given(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    inspector, officer, admin = auth("inspector"), auth("officer", TOWN), auth("admin", COUNTY)
    passed = _later(-1)
    listed = (await client.get("/v1/issues", headers=admin)).json()["items"]
    refused = await client.post("/v1/issues", json=report(deadline=passed), headers=inspector)
    assert_problem(refused, 422, "deadline_passed")
    assert (await client.get("/v1/issues", headers=admin)).json()["items"] == listed

    reported = await _report(client, auth("citizen", VILLAGE), source="citizen")
    on_account = await _report(client, inspector)
    await _ok(client, on_account["id"], "put_on_account", admin, plan="明年", target_date="2027-06-30")
    submitted = await _report(client, inspector, latitude=POINT[0] + 0.01)
    after = await media.upload(auth("village", VILLAGE), seed=94)
    await _ok(client, submitted["id"], "submit", auth("village", VILLAGE), after_photo_ids=[after])
    for issue_id, action, caller in (
        (reported["id"], "verify", officer),
        (reported["id"], "assign", officer),
        (submitted["id"], "return", inspector),
        (on_account["id"], "resume", admin),
    ):
        before = await _seen(client, issue_id, admin)
        refused = await _act(client, issue_id, action, caller, deadline=passed, note="重新限期")
        assert_problem(refused, 422, "deadline_passed")
        assert await _seen(client, issue_id, admin) == before


async def test_an_approved_extension_may_not_end_before_the_current_deadline(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    admin, village = auth("admin", COUNTY), auth("village", VILLAGE)
    issue = await _report(client, auth("inspector"))
    await _ok(client, issue["id"], "request_extension", village, reason="雨天", until=_later(60))
    before = await _seen(client, issue["id"], admin)
    earlier = (_moment(issue["deadline"]) - timedelta(hours=1)).isoformat()
    refused = await _act(client, issue["id"], "approve_extension", admin, until=earlier)
    assert_problem(refused, 422, "extension_too_short")
    assert await _seen(client, issue["id"], admin) == before
    approved = await _ok(client, issue["id"], "approve_extension", admin, until=_later(50))
    assert _moment(approved["deadline"]) > _moment(issue["deadline"]) and not approved["extension_pending"]


async def test_a_role_that_may_never_take_an_action_is_403_whatever_the_state(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """A village cadre may never approve an extension: 403, even where the state would not allow it
    either (a 409 would tell it what to do instead, as if it could)."""
    admin, village = auth("admin", COUNTY), auth("village", VILLAGE)
    issue = await _report(client, auth("citizen", VILLAGE), source="citizen")  # reported: no extension asked
    before = await _seen(client, issue["id"], admin)
    refused = await _act(client, issue["id"], "approve_extension", village, note="同意")
    assert_problem(refused, 403, "role_not_allowed")
    assert await _seen(client, issue["id"], admin) == before
    assert_problem(await _act(client, issue["id"], "approve_extension", admin), 409, "action_not_allowed")


async def test_assigning_a_reported_issue_verifies_it(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    issue = await _report(client, auth("citizen", VILLAGE), source="citizen")
    await _ok(client, issue["id"], "assign", auth("officer", TOWN), responsible_region=VILLAGE)
    async with state_of(app).database.transaction() as session:
        stored = await session.get(Issue, issue["id"])
        assert stored is not None and stored.verified_at is not None


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("nobody", "responsible_user_unknown"),
        ("officer2", "responsible_user_cannot_see"),  # the other town's cadre
        ("grid", "responsible_user_cannot_see"),  # a grid below the issue's village
        ("viewer", "responsible_user_role"),  # reads, never fixes
        ("disabled", "responsible_user_unknown"),
    ],
)
async def test_a_responsible_user_who_could_not_take_the_fix_in_hand_is_422(
    who: str, code: str, client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    """Named at the report or at assignment: a user that does not exist or is disabled, one whose region
    does not hold the issue's place (it could not see the issue), or of a role that never submits a fix."""
    admin = auth("admin", COUNTY)
    if who == "nobody":
        named = 987_654
    elif who == "disabled":
        named = await user_id(app, "village")
        async with state_of(app).database.transaction() as session:
            user = await session.get(User, named)
            assert user is not None
            user.disabled = True
    else:
        named = await user_id(app, who)
    issue = await _report(client, auth("citizen", VILLAGE), source="citizen")
    before = await _seen(client, issue["id"], admin)
    refused = await _act(client, issue["id"], "assign", admin, responsible_user_id=named)
    assert_problem(refused, 422, code)
    assert await _seen(client, issue["id"], admin) == before
    listed = (await client.get("/v1/issues", headers=admin)).json()["items"]
    at_report = await client.post("/v1/issues", json=report(responsible_user_id=named), headers=admin)
    assert_problem(at_report, 422, code)
    assert (await client.get("/v1/issues", headers=admin)).json()["items"] == listed
