"""The issue lifecycle through the API: report, the actions and their refusals, scope, history, evidence."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, text, update
from sqlmodel import col

from services.issues.cases.check import main as check_main
from services.issues.cases.models import Issue, IssueCounter, IssueEvent
from services.issues.cases.schemas import IssuePage, IssuePublic
from services.kit.state import state_of
from tests.issues.lifecycle import POINT, Media, media, report, scene_jpeg
from tests.issues.lifecycle import act as _act
from tests.issues.lifecycle import reported as _report
from tests.media.images import exif_block, jpeg
from tests.support.apps import client_for
from tests.support.builders import COUNTY, FAR_VILLAGE, GRID, OTHER_TOWN, TOWN, VILLAGE
from tests.support.problems import assert_problem

__all__ = ["media"]  # the fixture, used by name

Auth = Callable[..., dict[str, str]]


# ---- report ----


async def test_an_inspectors_finding_starts_assigned_with_a_deadline_and_a_code(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    answer = await client.post("/v1/issues", json=report(), headers=auth("inspector"))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert answer.headers["location"] == f"/v1/issues/{body['id']}"
    assert body["status"] == "assigned" and body["light"] == "green" and body["overdue"] is False
    assert body["code"].startswith(f"{COUNTY}-") and body["code"].endswith("-000001")
    assert body["deadline"] is not None and body["responsible_region"] == VILLAGE
    assert await count_rows(Issue) == 1 and await count_rows(IssueEvent) == 1


async def test_a_citizens_report_starts_reported_and_codes_stay_gap_free(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    citizen = auth("citizen", VILLAGE)
    first = await _report(client, citizen, source="citizen")
    refused = await client.post(
        "/v1/issues", json=report(source="citizen", category="no-such"), headers=citizen
    )
    assert_problem(refused, 422, "unknown_category")
    second = await _report(client, citizen, source="citizen", latitude=POINT[0] + 0.01)
    assert first["status"] == second["status"] == "reported" and first["deadline"] is None
    numbers = [int(first["code"].rsplit("-", 1)[1]), int(second["code"].rsplit("-", 1)[1])]
    assert numbers[1] == numbers[0] + 1  # the refused report took no number


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"region": TOWN}, 422, "region_not_village"),
        ({"region": FAR_VILLAGE}, 404, "region_not_found"),
        ({"latitude": None}, 422, "incomplete_position"),
        ({"source": "rumour"}, 422, "validation_failed"),
        ({"severity": "catastrophic"}, 422, "validation_failed"),
        ({"description": ""}, 422, "validation_failed"),
        ({"description": "x\u202eyz"}, 422, "validation_failed"),
        ({"fields": {"no_such_field": 1}}, 422, "fields_do_not_fit"),
        ({"before_photo_ids": ["not-an-id"]}, 422, "validation_failed"),
    ],
)
async def test_a_bad_report_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Callable[..., Any],
    changes: dict[str, Any],
    status: int,
    code: str,
) -> None:
    officer = auth("officer", TOWN)
    assert_problem(await client.post("/v1/issues", json=report(**changes), headers=officer), status, code)
    assert await count_rows(Issue) == 0 and await count_rows(IssueEvent) == 0


async def test_a_report_near_an_open_one_of_the_same_category_names_it(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    grid = auth("grid", GRID)
    first = await _report(client, grid, source="grid", region=GRID)
    near = await _report(client, grid, source="grid", region=GRID, latitude=POINT[0] + 0.0002)  # ~22 m away
    far = await _report(client, grid, source="grid", region=GRID, latitude=POINT[0] + 0.01)
    other_kind = await _report(
        client, grid, source="grid", region=GRID, category="luan-reng-dao", latitude=POINT[0] + 0.0002
    )
    assert near["probable_duplicate_of"] == first["code"]
    assert far["probable_duplicate_of"] is None and other_kind["probable_duplicate_of"] is None
    officer = auth("officer", TOWN)
    unlinked = await _act(client, near["id"], "unlink", officer, note="非同一问题")
    assert unlinked.status_code == 200 and unlinked.json()["probable_duplicate_of"] is None


async def test_the_nearest_open_one_within_the_distance_is_named_and_a_closed_one_never(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    grid, admin = auth("grid", GRID), auth("admin", COUNTY)
    # 0.0001° of latitude is ~11 m: the setting is 50 m.
    north = await _report(client, grid, source="grid", region=GRID, latitude=POINT[0] + 0.0004)
    centre = await _report(client, grid, source="grid", region=GRID)
    assert north["probable_duplicate_of"] is None and centre["probable_duplicate_of"] == north["code"]  # 44 m
    between = await _report(client, grid, source="grid", region=GRID, latitude=POINT[0] + 0.0001)
    assert between["probable_duplicate_of"] == centre["code"]  # 11 m from the centre, 33 m from the north one
    beyond = await _report(client, grid, source="grid", region=GRID, latitude=POINT[0] + 0.0009)
    assert beyond["probable_duplicate_of"] is None  # 56 m from the nearest
    # Closed issues are history, not duplicates.
    inspector = auth("inspector")
    lone = await _report(client, inspector, latitude=POINT[0] + 0.05)
    after = await media.upload(auth("village", VILLAGE), seed=75)
    submitted = await _act(client, lone["id"], "submit", auth("village", VILLAGE), after_photo_ids=[after])
    assert submitted.status_code == 200, submitted.text
    assert (await _act(client, lone["id"], "accept", admin)).status_code == 200
    again = await _report(client, inspector, latitude=POINT[0] + 0.05)
    assert again["probable_duplicate_of"] is None


@pytest.mark.parametrize("overrides", [{"citizen_reports_per_hour": 3}])
async def test_citizens_are_limited_per_hour(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    citizen = auth("citizen", VILLAGE)
    for n in range(3):
        await _report(client, citizen, source="citizen", latitude=POINT[0] + 0.001 * n)
    refused = await client.post("/v1/issues", json=report(source="citizen"), headers=citizen)
    assert_problem(refused, 429, "too_many_reports")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert await count_rows(Issue) == 3


# ---- the whole flow, with evidence ----


async def test_the_flow_from_report_to_closing_with_evidence(
    client: httpx.AsyncClient, auth: Auth, media: Media, count_rows: Callable[..., Any]
) -> None:
    citizen, officer, village, inspector = (
        auth("citizen", VILLAGE),
        auth("officer", TOWN),
        auth("village", VILLAGE),
        auth("inspector"),
    )
    before = await media.upload(citizen, seed=11)
    reported = await _report(client, citizen, source="citizen", before_photo_ids=[before])
    issue_id = reported["id"]
    assert reported["allowed_actions"] == []  # a citizen cannot act on a report yet

    assert_problem(
        await _act(client, issue_id, "submit", village, after_photo_ids=[before]), 409, "action_not_allowed"
    )
    verified = await _act(client, issue_id, "verify", officer, note="属实")
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "assigned" and verified.json()["deadline"]
    # The before photo is pinned to the issue once the report committed (the outbox after the commit).
    assert (await media.photo(before, officer))["issue_id"] == reported["code"]

    after = await media.upload(village, seed=12)
    submitted = await _act(client, issue_id, "submit", village, after_photo_ids=[after], note="已清运")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    assert {f["code"] for f in submitted.json()["evidence_flags"]} == {"no_exif"}  # shown, never blocking

    assert_problem(await _act(client, issue_id, "accept", village), 403, "insufficient_scope")
    accepted = await _act(client, issue_id, "accept", inspector, note="核查已整改")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "closed" and accepted.json()["closed_late"] is False

    feedback = await _act(client, issue_id, "feedback", citizen, satisfaction=5, comment="满意")
    assert feedback.status_code == 200 and feedback.json()["satisfaction"] == 5
    assert_problem(
        await _act(client, issue_id, "feedback", citizen, satisfaction=1), 409, "action_not_allowed"
    )

    events = (await client.get(f"/v1/issues/{issue_id}/events", headers=officer)).json()["items"]
    assert [e["action"] for e in events] == ["report", "verify", "submit", "accept", "feedback"]
    assert events[0]["photos"][0]["id"] == before and len(events[0]["photos"][0]["sha256"]) == 64
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))
    hidden = (await client.get(f"/v1/issues/{issue_id}/events", headers=village)).json()["items"]
    assert hidden[0]["actor"] is None  # village cadres never see who reported
    assert (await client.get(f"/v1/issues/{issue_id}", headers=village)).json()["reporter"] is None
    chain = (await client.get(f"/v1/issues/{issue_id}/verify", headers=officer)).json()
    assert chain == {
        "code": reported["code"],
        "events": 5,
        "intact": True,
        "first_bad_seq": None,
        "reason": None,
    }


async def test_a_before_photo_handed_in_as_the_after_photo_blocks_acceptance(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    inspector, village = auth("inspector"), auth("village", VILLAGE)
    before = await media.upload(inspector, scene_jpeg(21))
    issue = await _report(client, inspector, before_photo_ids=[before])
    # The village re-encodes the before picture and hands it in as the fix.
    again = await media.upload(village, scene_jpeg(21, quality=60))
    submitted = await _act(client, issue["id"], "submit", village, after_photo_ids=[again])
    assert submitted.status_code == 200, submitted.text
    codes = {f["code"] for f in submitted.json()["evidence_flags"]}
    assert "reuses_before_photo" in codes
    refused = await _act(client, issue["id"], "accept", inspector)
    assert_problem(refused, 409, "evidence_flags_unresolved")
    assert (await client.get(f"/v1/issues/{issue['id']}", headers=inspector)).json()["status"] == "submitted"
    returned = await _act(client, issue["id"], "return", inspector, note="照片为整改前照片")
    assert returned.status_code == 200
    assert returned.json()["rework_count"] == 1 and returned.json()["status"] == "assigned"


async def test_far_and_early_after_photos_are_flagged_and_an_override_is_recorded(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    inspector, village = auth("inspector"), auth("village", VILLAGE)
    issue = await _report(client, inspector)
    long_ago = datetime.now(timezone(timedelta(hours=8))) - timedelta(days=30)
    far_away = exif_block(gps=(POINT[0] + 0.05, POINT[1]), taken_at=long_ago.replace(tzinfo=None))
    after = await media.upload(village, jpeg(seed=31, exif=far_away))
    submitted = await _act(client, issue["id"], "submit", village, after_photo_ids=[after])
    codes = {f["code"] for f in submitted.json()["evidence_flags"]}
    assert {"far_from_issue", "taken_before_report"} <= codes
    accepted = await _act(
        client, issue["id"], "accept", inspector, override_reason="现场复核属实，照片为补拍"
    )
    assert accepted.status_code == 200, accepted.text
    events = (await client.get(f"/v1/issues/{issue['id']}/events", headers=inspector)).json()["items"]
    assert events[-1]["changes"]["override_reason"][1] == "现场复核属实，照片为补拍"


async def test_photos_that_are_not_the_callers_are_refused_and_nothing_stored(
    client: httpx.AsyncClient, auth: Auth, media: Media, count_rows: Callable[..., Any]
) -> None:
    far_officer = auth("officer", OTHER_TOWN)
    theirs = await media.upload(far_officer, seed=41)
    answer = await client.post(
        "/v1/issues", json=report(before_photo_ids=[theirs, "0" * 32]), headers=auth("officer", TOWN)
    )
    body = assert_problem(answer, 422, "photos_refused")
    assert len(body["errors"]) == 2
    assert await count_rows(Issue) == 0


async def test_without_media_a_report_with_photos_answers_503_and_stores_nothing(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    answer = await client.post(
        "/v1/issues", json=report(before_photo_ids=["a" * 32]), headers=auth("inspector")
    )
    assert_problem(answer, 503, "media_not_configured")
    assert await count_rows(Issue) == 0


# ---- refusals of actions ----


async def test_actions_refused_by_state_role_or_submitter(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    officer, village, inspector, admin = (
        auth("officer", TOWN),
        auth("village", VILLAGE),
        auth("inspector"),
        auth("admin"),
    )
    issue = await _report(client, inspector)
    refused = await _act(client, issue["id"], "verify", officer)
    body = assert_problem(refused, 409, "action_not_allowed")
    assert "assign" in body["allowed_actions"]
    assert_problem(await _act(client, issue["id"], "approve_extension", admin), 409, "action_not_allowed")
    assert_problem(
        await _act(client, issue["id"], "put_on_account", village, plan="x", target_date="2027-06-30"),
        403,
        "role_not_allowed",
    )
    after = await media.upload(admin, seed=51)
    assert (await _act(client, issue["id"], "submit", admin, after_photo_ids=[after])).status_code == 200
    assert_problem(await _act(client, issue["id"], "accept", admin), 403, "own_submission")
    assert_problem(
        await _act(client, issue["id"], "submit", village, after_photo_ids=[after]), 409, "action_not_allowed"
    )
    assert_problem(await _act(client, issue["id"], "accept", inspector, bogus=1), 422, "validation_failed")


async def test_extension_account_and_supervision(client: httpx.AsyncClient, auth: Auth) -> None:
    inspector, village, admin = auth("inspector"), auth("village", VILLAGE), auth("admin")
    issue = await _report(client, inspector)
    asked = await _act(
        client,
        issue["id"],
        "request_extension",
        village,
        reason="需协调铲车",
        until="2027-01-31T23:59:59+08:00",
    )
    assert asked.status_code == 200 and asked.json()["extension_pending"] is True
    assert_problem(
        await _act(
            client,
            issue["id"],
            "request_extension",
            village,
            reason="再延",
            until="2027-02-28T23:59:59+08:00",
        ),
        409,
        "action_not_allowed",
    )
    approved = await _act(client, issue["id"], "approve_extension", admin, note="同意")
    assert approved.status_code == 200
    assert approved.json()["deadline"].startswith("2027-01-31") and approved.json()["extension_count"] == 1
    on_account = await _act(
        client, issue["id"], "put_on_account", admin, plan="纳入明年项目", target_date="2027-06-30"
    )
    assert on_account.json()["on_account"] is True and on_account.json()["account_plan"] == "纳入明年项目"
    resumed = await _act(client, issue["id"], "resume", admin, note="资金到位")
    assert resumed.json()["on_account"] is False
    supervised = await _act(client, issue["id"], "supervise", inspector, note="区督办")
    assert supervised.json()["supervised"] is True
    assert_problem(
        await _act(client, issue["id"], "supervise", inspector, note="again"), 409, "action_not_allowed"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"reason": "other"}, "note_required"),
        ({"reason": "other", "note": None}, "note_required"),
        ({"reason": "duplicate"}, "duplicate_of_required"),
    ],
)
async def test_a_rejection_without_what_its_reason_needs_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, auth: Auth, app: Any, body: dict[str, Any], code: str
) -> None:
    officer, grid = auth("officer", TOWN), auth("grid", GRID)
    issue = await _report(client, grid, source="grid", region=GRID)
    assert_problem(await _act(client, issue["id"], "reject", officer, **body), 422, code)
    after = (await client.get(f"/v1/issues/{issue['id']}", headers=grid)).json()
    assert after == {**issue, "allowed_actions": after["allowed_actions"]} and after["status"] == "reported"
    events = (await client.get(f"/v1/issues/{issue['id']}/events", headers=officer)).json()["items"]
    assert len(events) == 1
    # The schema says so too, so that a client (and schemathesis) knows before asking.
    rules = app.openapi()["components"]["schemas"]["RejectBody"]["allOf"]
    needed = {rule["if"]["properties"]["reason"]["const"]: rule["then"]["required"] for rule in rules}
    assert needed == {"other": ["note"], "duplicate": ["duplicate_of"]}


async def test_reject_as_duplicate_and_recur(client: httpx.AsyncClient, auth: Auth, media: Media) -> None:
    officer, grid, inspector, village = (
        auth("officer", TOWN),
        auth("grid", GRID),
        auth("inspector"),
        auth("village", VILLAGE),
    )
    original = await _report(client, inspector)
    repeat = await _report(client, grid, source="grid", region=GRID, latitude=POINT[0] + 0.003)
    rejected = await _act(
        client, repeat["id"], "reject", officer, reason="duplicate", duplicate_of=original["code"]
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["duplicate_of"] == original["code"]
    assert_problem(
        await _act(client, repeat["id"], "reject", officer, reason="other"), 409, "action_not_allowed"
    )

    after = await media.upload(village, seed=61)
    await _act(client, original["id"], "submit", village, after_photo_ids=[after])
    assert (await _act(client, original["id"], "accept", inspector)).status_code == 200
    recurred = await _act(client, original["id"], "recur", inspector, note="又堆上了")
    assert recurred.status_code == 201, recurred.text
    assert recurred.json()["recurrence_of"] == original["code"] and recurred.json()["status"] == "assigned"
    assert recurred.headers["location"] == f"/v1/issues/{recurred.json()['id']}"


# ---- scope and listing ----


async def test_every_route_hides_issues_outside_the_callers_region(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    issue = await _report(client, auth("inspector"))
    outsider = auth("officer", OTHER_TOWN)
    for path in ("", "/events", "/verify"):
        assert_problem(
            await client.get(f"/v1/issues/{issue['id']}{path}", headers=outsider), 404, "issue_not_found"
        )
    assert_problem(await _act(client, issue["id"], "assign", outsider), 404, "issue_not_found")
    assert (await client.get("/v1/issues", headers=outsider)).json()["items"] == []
    other_citizen = auth("citizen", VILLAGE, subject="user:999999")
    assert_problem(
        await client.get(f"/v1/issues/{issue['id']}", headers=other_citizen), 404, "issue_not_found"
    )
    assert_problem(await client.get(f"/v1/issues/{issue['id']}"), 401, "missing_token")


async def test_the_list_filters_and_pages_stably(client: httpx.AsyncClient, auth: Auth) -> None:
    inspector, grid = auth("inspector"), auth("grid", GRID)
    made = [await _report(client, inspector, latitude=POINT[0] + 0.001 * n) for n in range(5)]
    reported = await _report(
        client, grid, source="grid", region=GRID, description="河道漂浮垃圾", latitude=POINT[0] + 0.02
    )
    first = (await client.get("/v1/issues", params={"limit": 4}, headers=inspector)).json()
    second = (
        await client.get("/v1/issues", params={"limit": 4, "cursor": first["next_cursor"]}, headers=inspector)
    ).json()
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6 and second["next_cursor"] is None
    only_reported = (await client.get("/v1/issues", params={"status": "reported"}, headers=inspector)).json()
    assert [i["id"] for i in only_reported["items"]] == [reported["id"]]
    text = (await client.get("/v1/issues", params={"q": "漂浮"}, headers=inspector)).json()
    assert [i["id"] for i in text["items"]] == [reported["id"]]
    green = (await client.get("/v1/issues", params={"light": "green"}, headers=inspector)).json()
    assert {i["id"] for i in green["items"]} == {m["id"] for m in made}
    mine = (await client.get("/v1/issues", params={"mine": "true"}, headers=grid)).json()
    assert [i["id"] for i in mine["items"]] == [reported["id"]]
    late = (await client.get("/v1/issues", params={"overdue": "true"}, headers=inspector)).json()
    assert late["items"] == []
    not_late = (await client.get("/v1/issues", params={"overdue": "false"}, headers=inspector)).json()
    assert len(not_late["items"]) == 6  # the reported one, with no deadline yet, included
    assert_problem(
        await client.get("/v1/issues", params={"region": FAR_VILLAGE}, headers=auth("officer", TOWN)),
        404,
        "region_not_found",
    )


async def test_an_assigned_finding_flagged_as_a_duplicate_is_merged_into_the_first(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    """An inspector's finding starts assigned; beside an open issue of its category it is flagged, and the
    office merges it (`reject` as the `duplicate` of the flagged one) even though it is already assigned: it
    leaves the open list, is never counted as found, and its account and extension flags are cleared."""
    inspector, admin, village = auth("inspector"), auth("admin", COUNTY), auth("village", VILLAGE)
    first = await _report(client, inspector)
    second = await _report(client, inspector)
    assert second["status"] == "assigned" and second["probable_duplicate_of"] == first["code"]
    assert "reject" in second["allowed_actions"] and "unlink" in second["allowed_actions"]
    asked = await _act(
        client, second["id"], "request_extension", village, reason="雨天", until="2027-01-20T18:00:00+08:00"
    )
    assert asked.status_code == 200, asked.text
    await _act(client, second["id"], "put_on_account", admin, plan="明年", target_date="2027-06-30")
    window = {"from": "2026-01-01", "to": "2028-01-01", "region": COUNTY}
    found_before = (await client.get("/v1/stats/rectification", params=window, headers=admin)).json()

    merged = await _act(
        client,
        second["id"],
        "reject",
        admin,
        reason="duplicate",
        duplicate_of=second["probable_duplicate_of"],
    )
    assert merged.status_code == 200, merged.text
    shown = merged.json()
    assert (shown["status"], shown["reject_reason"], shown["duplicate_of"]) == (
        "rejected",
        "duplicate",
        first["code"],
    )
    assert (shown["on_account"], shown["extension_pending"], shown["light"]) == (False, False, None)
    events = (await client.get(f"/v1/issues/{second['id']}/events", headers=admin)).json()["items"]
    assert events[-1]["action"] == "reject"
    assert events[-1]["changes"]["status"] == ["assigned", "rejected"]
    assert events[-1]["changes"]["on_account"] == [True, False]
    assert events[-1]["changes"]["extension_pending"] == [True, False]
    open_ids = [
        i["id"]
        for i in (await client.get("/v1/issues", params={"status": "assigned"}, headers=admin)).json()[
            "items"
        ]
    ]
    assert second["id"] not in open_ids and first["id"] in open_ids
    found_after = (await client.get("/v1/stats/rectification", params=window, headers=admin)).json()
    assert found_after["total"]["found"] == found_before["total"]["found"] - 1
    assert found_after["total"]["rejected"] == found_before["total"]["rejected"] + 1


async def test_a_listed_issue_is_exactly_the_issue_read_alone(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    """The list writes its page without building IssuePublic models: its items must still be the same
    JSON, field for field, as `GET /v1/issues/{id}` (deadlines, lights, enums, linked codes, actions)."""
    inspector, village = auth("inspector"), auth("village", VILLAGE)
    first = await _report(client, inspector)
    second = await _report(client, inspector)  # beside the first: its probable duplicate
    after = await media.upload(village, seed=72)
    assert (await _act(client, first["id"], "submit", village, after_photo_ids=[after])).status_code == 200
    listed = (await client.get("/v1/issues", headers=inspector)).json()
    IssuePage.model_validate(listed)
    for item in listed["items"]:
        alone = (await client.get(f"/v1/issues/{item['id']}", headers=inspector)).json()
        assert item == alone
    by_id = {item["id"]: item for item in listed["items"]}
    assert by_id[second["id"]]["probable_duplicate_of"] == first["code"]
    assert by_id[first["id"]]["status"] == "submitted" and by_id[first["id"]]["after_photo_ids"] == [after]


def _as_the_schema_writes_it(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer read as `IssuePublic` and written again by the model: what the schema says it must be."""
    shaped: dict[str, Any] = json.loads(IssuePublic.model_validate(answer).model_dump_json())
    return shaped


async def test_every_answer_holding_an_issue_is_exactly_what_its_schema_writes(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    """Reports, reads, actions and lists write issues from the stored values without a model: each answer
    must be `IssuePublic`'s own JSON of itself, in every state (links, reasons, feedback, lights)."""
    inspector, admin, village = auth("inspector"), auth("admin", COUNTY), auth("village", VILLAGE)
    answers: list[dict[str, Any]] = []
    first = await _report(client, inspector)
    second = await _report(client, inspector)  # a probable duplicate of the first
    answers += [first, second]
    citizen_report = await client.post(
        "/v1/issues", json=report(source="citizen"), headers=auth("citizen", VILLAGE)
    )
    assert citizen_report.status_code == 201, citizen_report.text
    answers.append(citizen_report.json())
    rejected = await _act(
        client, citizen_report.json()["id"], "reject", admin, reason="invalid", note="不属实"
    )
    answers.append(rejected.json())
    after = await media.upload(village, seed=74)
    submitted = await _act(client, first["id"], "submit", village, after_photo_ids=[after])
    accepted = await _act(client, first["id"], "accept", admin)
    assert (submitted.status_code, accepted.status_code) == (200, 200), accepted.text
    recurred = await _act(client, first["id"], "recur", inspector, note="又堆上了")
    assert recurred.status_code == 201, recurred.text
    answers += [submitted.json(), accepted.json(), recurred.json()]
    assert recurred.json()["recurrence_of"] == first["code"]
    for issue_id in {a["id"] for a in answers}:
        answers.append((await client.get(f"/v1/issues/{issue_id}", headers=admin)).json())
    answers += (await client.get("/v1/issues", headers=admin)).json()["items"]
    for answer in answers:
        assert answer == _as_the_schema_writes_it(answer)


# ---- concurrency and tampering ----


async def test_two_conflicting_actions_at_once_exactly_one_wins(
    backend: str, client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    inspector, admin, village = auth("inspector"), auth("admin"), auth("village", VILLAGE)
    issue = await _report(client, inspector)
    after = await media.upload(village, seed=71)
    assert (await _act(client, issue["id"], "submit", village, after_photo_ids=[after])).status_code == 200
    answers = await asyncio.gather(
        _act(client, issue["id"], "accept", inspector),
        _act(client, issue["id"], "return", admin, note="不合格"),
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409], [a.text for a in answers]
    events = (await client.get(f"/v1/issues/{issue['id']}/events", headers=admin)).json()["items"]
    assert [e["action"] for e in events][-1] in ("accept", "return") and len(events) == 3


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "delete_last", "reorder"])
async def test_history_changed_behind_the_apis_back_is_caught(
    tamper: str, client: httpx.AsyncClient, auth: Auth, app: Any
) -> None:
    inspector, admin = auth("inspector"), auth("admin")
    issue = await _report(client, inspector)
    await _act(client, issue["id"], "supervise", inspector, note="督办")
    await _act(client, issue["id"], "put_on_account", admin, plan="明年", target_date="2027-06-30")
    assert (await client.get(f"/v1/issues/{issue['id']}/verify", headers=admin)).json()["intact"] is True
    database = state_of(app).database
    async with database.transaction() as session:
        where = col(IssueEvent.issue_id) == issue["id"]
        if tamper == "edit":
            await session.execute(
                update(IssueEvent).where(where, col(IssueEvent.seq) == 2).values(note="无需督办")
            )
        elif tamper == "delete_middle":
            await session.execute(delete(IssueEvent).where(where, col(IssueEvent.seq) == 2))
        elif tamper == "delete_last":
            await session.execute(delete(IssueEvent).where(where, col(IssueEvent.seq) == 3))
        else:
            await session.execute(update(IssueEvent).where(where, col(IssueEvent.seq) == 2).values(seq=99))
            await session.execute(update(IssueEvent).where(where, col(IssueEvent.seq) == 3).values(seq=2))
            await session.execute(update(IssueEvent).where(where, col(IssueEvent.seq) == 99).values(seq=3))
    report_ = (await client.get(f"/v1/issues/{issue['id']}/verify", headers=admin)).json()
    assert report_["intact"] is False
    assert report_["first_bad_seq"] in (2, 3)


# ---- the command-line check over all issues ----


async def test_the_command_line_check_names_the_issue_whose_history_was_changed(
    client: httpx.AsyncClient, auth: Auth, app: Any, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inspector = auth("inspector")
    kept = await _report(client, inspector)
    changed = await _report(client, inspector, latitude=POINT[0] + 0.01)
    await _act(client, changed["id"], "supervise", inspector, note="督办")
    url = settings.resolved_database_url
    assert await asyncio.to_thread(check_main, ["--database-url", url]) == 0
    async with state_of(app).database.transaction() as session:
        await session.execute(
            update(IssueEvent)
            .where(col(IssueEvent.issue_id) == changed["id"], col(IssueEvent.seq) == 1)
            .values(note="改过")
        )
    assert await asyncio.to_thread(check_main, ["--database-url", url]) == 1
    out = capsys.readouterr().out
    assert f"{changed['code']}: event 1: its content does not match its hash" in out
    assert kept["code"] not in out and "2 issues checked, 1 with a broken history" in out


async def test_moments_are_rfc3339_text_not_numbers(client: httpx.AsyncClient, auth: Auth) -> None:
    inspector = auth("inspector")
    for bad in ("0.5", "1767225600", "2026-11-03", "2026-11-03T09:12:00"):
        answer = await client.get("/v1/issues", params={"reported_to": bad}, headers=inspector)
        assert_problem(answer, 422, "validation_failed")
    good = await client.get(
        "/v1/issues", params={"reported_to": "2026-11-03T09:12:00+08:00"}, headers=inspector
    )
    assert good.status_code == 200
    assert_problem(
        await client.post("/v1/issues", json=report(deadline=0), headers=inspector), 422, "validation_failed"
    )


async def test_a_retried_report_with_the_same_key_is_stored_once(
    client: httpx.AsyncClient, auth: Auth, count_rows: Callable[..., Any]
) -> None:
    headers = {**auth("inspector"), "Idempotency-Key": "report-3f1c"}
    first = await client.post("/v1/issues", json=report(), headers=headers)
    again = await client.post("/v1/issues", json=report(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json()["code"] == first.json()["code"]
    other = await client.post("/v1/issues", json=report(description="另一处"), headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    assert await count_rows(Issue) == 1 and await count_rows(IssueEvent) == 1


# ---- the report's write: one statement on PostgreSQL, one transaction on SQLite ----


async def test_codes_past_the_millionth_keep_every_digit(
    client: httpx.AsyncClient, auth: Auth, app: Any
) -> None:
    """The code is made by the database inside the write (the counter's number, six digits at least):
    what is answered is what is stored, past 999,999 too."""
    inspector = auth("inspector")
    first = await _report(client, inspector)
    async with state_of(app).database.transaction() as session:
        await session.execute(update(IssueCounter).values(last_number=999_998))
    codes = [(await _report(client, inspector, latitude=POINT[0] + 0.01 * n))["code"] for n in (1, 2)]
    prefix = first["code"].rsplit("-", 1)[0]
    assert codes == [f"{prefix}-999999", f"{prefix}-1000000"]
    listed = (await client.get("/v1/issues", headers=inspector)).json()["items"]
    assert sorted(i["code"] for i in listed) == sorted([first["code"], *codes])


async def test_a_report_whose_write_fails_stores_nothing_and_takes_no_number(
    app: Any, service: Any, auth: Auth, media: Media, count_rows: Callable[..., Any]
) -> None:
    """A database refusal in the middle of the write (here a trigger on the first event of one report,
    after the number was taken and the issue inserted) leaves no issue, no event, no outbox row and no
    number used: the next report takes the number the failed one would have."""
    inspector = auth("inspector")
    database = state_of(app).database
    async with client_for(app, service.base_url, raise_app_exceptions=False) as client:
        first = await _report(client, inspector)
        doomed = await media.upload(inspector, seed=21)
        async with database.transaction() as session:
            if database.engine.dialect.name == "postgresql":
                await session.execute(
                    text(
                        "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
                    )
                )
                await session.execute(
                    text(
                        "CREATE TRIGGER refuse_event BEFORE INSERT ON issue_events FOR EACH ROW "
                        f"WHEN (NEW.photos::text LIKE '%{doomed}%') EXECUTE FUNCTION refuse_event()"
                    )
                )
            else:
                await session.execute(
                    text(
                        "CREATE TRIGGER refuse_event BEFORE INSERT ON issue_events "
                        f"WHEN NEW.photos LIKE '%{doomed}%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                    )
                )
        outbox = state_of(app).outbox.table
        counts = (await count_rows(Issue), await count_rows(IssueEvent), await count_rows(outbox))
        failed = await client.post(
            "/v1/issues", json=report(latitude=POINT[0] + 0.02, before_photo_ids=[doomed]), headers=inspector
        )
        assert failed.status_code == 500
        assert (await count_rows(Issue), await count_rows(IssueEvent), await count_rows(outbox)) == counts
        second = await _report(client, inspector, latitude=POINT[0] + 0.03)
    number = int(first["code"].rsplit("-", 1)[1])
    assert second["code"] == first["code"].rsplit("-", 1)[0] + f"-{number + 1:06d}"
    assert (await media.photo(doomed, inspector))["issue_id"] is None  # nothing was pinned
