"""Evidence at `submit` and codes under load, as a user of the API sees them: an after photo copied from
another issue, media out of reach while a fix is handed in, and many reports of one county at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.issues.app import _self_minted
from services.issues.cases.models import Issue, IssueEvent
from services.issues.deps import IssuesState
from services.kit.peers import Peer
from services.kit.state import state_of, typed_state
from tests.issues.lifecycle import POINT, Media, media, report, scene_jpeg
from tests.issues.lifecycle import act as _act
from tests.issues.lifecycle import reported as _report
from tests.support.builders import COUNTY, VILLAGE
from tests.support.ports import closed_port
from tests.support.problems import assert_problem

__all__ = ["media"]  # the fixture, used by name

Auth = Callable[..., dict[str, str]]
CountRows = Callable[..., Any]


async def _read(client: httpx.AsyncClient, issue_id: int, headers: dict[str, str]) -> dict[str, Any]:
    answer = await client.get(f"/v1/issues/{issue_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _events(client: httpx.AsyncClient, issue_id: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get(f"/v1/issues/{issue_id}/events", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _number(code: str) -> int:
    return int(code.rsplit("-", 1)[1])


# ---- an after photo copied from another issue ----


@pytest.mark.parametrize("copy", ["same_bytes", "re_encoded"])
async def test_an_after_photo_copied_from_another_issue_names_it_and_needs_an_override(
    copy: str, client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    inspector, village = auth("inspector"), auth("village", VILLAGE)
    original = await media.upload(inspector, scene_jpeg(21))
    other = await _report(client, inspector, before_photo_ids=[original])
    # The other issue's before photo is its evidence now (pinned once the report committed).
    assert (await media.photo(original, inspector))["issue_id"] == other["code"]
    own_before = await media.upload(inspector, scene_jpeg(22))
    issue = await _report(client, inspector, latitude=POINT[0] + 0.01, before_photo_ids=[own_before])

    # The village hands in the other issue's before picture, uploaded again, as its fix for this one.
    again = await media.upload(
        village, scene_jpeg(21) if copy == "same_bytes" else scene_jpeg(21, quality=60)
    )
    assert again != original
    submitted = await _act(client, issue["id"], "submit", village, after_photo_ids=[again])
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted" and submitted.json()["after_photo_ids"] == [again]
    flags = {f["code"]: f for f in submitted.json()["evidence_flags"]}
    assert set(flags) == {"no_exif", "reuses_photo_of_issue"}  # a copy of another issue's, not its own
    assert flags["reuses_photo_of_issue"] == {
        "code": "reuses_photo_of_issue",
        "detail": f"the after photo is a copy of a photo of issue {other['code']}",
        "figures": {"photo_id": original, "issue_code": other["code"]},
        "photo_id": again,
    }
    submit_event = (await _events(client, issue["id"], inspector))[-1]
    assert submit_event["action"] == "submit" and submit_event["photos"][0]["id"] == again
    assert any(
        f["code"] == "reuses_photo_of_issue" and f["figures"]["issue_code"] == other["code"]
        for f in submit_event["photos"][0]["flags"]
    )

    # Accepting without a reason is refused, and nothing changes.
    shown, events = await _read(client, issue["id"], inspector), await _events(client, issue["id"], inspector)
    refused = await _act(client, issue["id"], "accept", inspector, note="已整改")
    body = assert_problem(refused, 409, "evidence_flags_unresolved")
    assert body["flags"] == ["reuses_photo_of_issue"]
    assert await _read(client, issue["id"], inspector) == shown and shown["status"] == "submitted"
    assert await _events(client, issue["id"], inspector) == events and len(events) == 2
    refused_blank = await _act(client, issue["id"], "accept", inspector, override_reason=None)
    assert_problem(refused_blank, 409, "evidence_flags_unresolved")
    assert await _events(client, issue["id"], inspector) == events

    # With a reason it closes, and the accept event keeps the reason and the flags it overrode.
    reason = "现场复核：两处问题同为村口堆放，照片属实"
    accepted = await _act(client, issue["id"], "accept", inspector, override_reason=reason)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "closed"
    after = await _events(client, issue["id"], inspector)
    assert [e["action"] for e in after] == ["report", "submit", "accept"] and after[:2] == events
    assert after[-1]["changes"]["override_reason"] == [None, reason]
    assert after[-1]["changes"]["overridden_flags"] == [None, ["reuses_photo_of_issue"]]
    assert after[-1]["changes"]["status"] == ["submitted", "closed"]
    assert (await client.get(f"/v1/issues/{issue['id']}/verify", headers=inspector)).json()["intact"] is True
    # The other issue is untouched; the copy is now this issue's evidence.
    assert (await _read(client, other["id"], inspector))["status"] == "assigned"
    assert (await media.photo(again, inspector))["issue_id"] == issue["code"]


async def test_the_other_issues_photo_itself_cannot_be_handed_in_and_nothing_changes(
    client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    """The same photo id is not a way round the reuse check: a photo pinned to another issue is refused."""
    inspector, village = auth("inspector"), auth("village", VILLAGE)
    original = await media.upload(inspector, scene_jpeg(21))
    other = await _report(client, inspector, before_photo_ids=[original])
    issue = await _report(client, inspector, latitude=POINT[0] + 0.01)
    shown, events = await _read(client, issue["id"], village), await _events(client, issue["id"], inspector)
    refused = await _act(client, issue["id"], "submit", village, after_photo_ids=[original])
    body = assert_problem(refused, 422, "photos_refused")
    assert [e["message"] for e in body["errors"]] == [
        f"photo {original} is evidence of issue {other['code']} already"
    ]
    assert await _read(client, issue["id"], village) == shown and shown["status"] == "assigned"
    assert await _events(client, issue["id"], inspector) == events and len(events) == 1
    assert (await media.photo(original, inspector))["issue_id"] == other["code"]


@pytest.mark.parametrize("again", ["the same photo", "a copy of it", "the before photo"])
async def test_a_fix_handed_in_again_after_a_return_is_flagged_and_needs_an_override(
    again: str, client: httpx.AsyncClient, auth: Auth, media: Media
) -> None:
    """退回重整 means the fix was not good enough: the photo returned with it (or a copy of it), or the issue's
    own before photo, handed in as the new fix is flagged and blocks 销号 without an `override_reason`."""
    inspector, village = auth("inspector"), auth("village", VILLAGE)
    before = await media.upload(inspector, scene_jpeg(31))
    issue = await _report(client, inspector, before_photo_ids=[before])
    first_fix = await media.upload(village, scene_jpeg(32))
    assert (
        await _act(client, issue["id"], "submit", village, after_photo_ids=[first_fix])
    ).status_code == 200
    assert (await _act(client, issue["id"], "return", inspector, note="没清干净")).status_code == 200
    assert (await media.photo(first_fix, inspector))["issue_id"] == issue["code"]  # pinned at the submit

    if again == "the same photo":
        handed, code, source = first_fix, "reuses_returned_photo", first_fix
    elif again == "a copy of it":
        handed = await media.upload(village, scene_jpeg(32, quality=60))
        code, source = "reuses_returned_photo", first_fix
    else:
        handed, code, source = before, "reuses_before_photo", before
    submitted = await _act(client, issue["id"], "submit", village, after_photo_ids=[handed])
    assert submitted.status_code == 200, submitted.text
    reuse = [f for f in submitted.json()["evidence_flags"] if f["code"].startswith("reuses_")]
    assert [(f["code"], f["figures"]["photo_id"], f["photo_id"]) for f in reuse] == [(code, source, handed)]
    shown, events = await _read(client, issue["id"], inspector), await _events(client, issue["id"], inspector)
    refused = await _act(client, issue["id"], "accept", inspector)
    assert assert_problem(refused, 409, "evidence_flags_unresolved")["flags"] == [code]
    assert await _read(client, issue["id"], inspector) == shown
    assert await _events(client, issue["id"], inspector) == events
    accepted = await _act(client, issue["id"], "accept", inspector, override_reason="现场复核已清理")
    assert accepted.status_code == 200 and accepted.json()["status"] == "closed"


# ---- media out of reach at submit ----


async def test_submit_while_media_is_unreachable_answers_503_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth, media: Media, count_rows: CountRows
) -> None:
    inspector, village = auth("inspector"), auth("village", VILLAGE)
    before = await media.upload(inspector, scene_jpeg(23))
    issue = await _report(client, inspector, before_photo_ids=[before])
    after = await media.upload(village, seed=24)  # taken while media was still up
    state = typed_state(app, IssuesState)
    outbox = state_of(app).outbox.table
    shown, events = await _read(client, issue["id"], village), await _events(client, issue["id"], inspector)
    counts = (await count_rows(Issue), await count_rows(IssueEvent), await count_rows(outbox))

    # Media goes away: its address now refuses connections.
    working = state.media
    state.media = Peer(
        "media", f"http://127.0.0.1:{closed_port()}", state.http, _self_minted(state.keyring, state.settings)
    )
    try:
        answer = await _act(client, issue["id"], "submit", village, after_photo_ids=[after], note="已清运")
    finally:
        state.media = working
    body = assert_problem(answer, 503, "media_unavailable")
    assert "media" in body["detail"] and answer.headers["retry-after"] == "5"

    assert await _read(client, issue["id"], village) == shown
    assert shown["status"] == "assigned" and shown["after_photo_ids"] == [] and shown["evidence_flags"] == []
    assert await _events(client, issue["id"], inspector) == events and len(events) == 1
    assert (await count_rows(Issue), await count_rows(IssueEvent), await count_rows(outbox)) == counts
    assert (await media.photo(after, village))["issue_id"] is None  # nothing was pinned

    # Media back: the same submission goes through.
    retried = await _act(client, issue["id"], "submit", village, after_photo_ids=[after], note="已清运")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "submitted" and retried.json()["after_photo_ids"] == [after]


# ---- codes under concurrency ----


async def test_reports_posted_at_once_get_unique_gap_free_codes(
    backend: str, client: httpx.AsyncClient, auth: Auth, count_rows: CountRows
) -> None:
    inspector = auth("inspector")
    earlier = [await _report(client, inspector, latitude=POINT[0] - 0.001 * n) for n in range(1, 3)]
    last = _number(earlier[-1]["code"])
    answers = await asyncio.gather(
        *(
            client.post("/v1/issues", json=report(latitude=POINT[0] + 0.0005 * n), headers=inspector)
            for n in range(25)
        )
    )
    assert [a.status_code for a in answers] == [201] * 25, [a.text for a in answers if a.status_code != 201]
    codes = [a.json()["code"] for a in answers]
    prefix = earlier[0]["code"].rsplit("-", 1)[0]
    assert prefix.startswith(f"{COUNTY}-") and all(c.rsplit("-", 1)[0] == prefix for c in codes)
    assert len(set(codes)) == 25
    assert sorted(_number(c) for c in codes) == list(range(last + 1, last + 26))
    assert len({a.json()["id"] for a in answers}) == 25
    assert await count_rows(Issue) == 27 and await count_rows(IssueEvent) == 27
    # What was answered is what is stored.
    for answer in answers:
        assert (await _read(client, answer.json()["id"], inspector))["code"] == answer.json()["code"]
    after = await _report(client, inspector, latitude=POINT[0] + 0.05)
    assert _number(after["code"]) == last + 26
