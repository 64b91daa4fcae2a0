"""The lifecycle across the running services: photos checked and pinned in media over HTTP, and a before
photo handed in again as the after photo caught before 销号."""

from __future__ import annotations

import io

import httpx
import pytest

from tests.crossservice.conftest import LiveStack
from tests.media import photos
from tests.support.builders import VILLAGE

pytestmark = pytest.mark.crossservice


def _scene(quality: int) -> bytes:
    buf = io.BytesIO()
    photos.camera(404, (1280, 960)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _upload(live_stack: LiveStack, http: httpx.Client, token: str, data: bytes) -> str:
    answer = http.post(
        live_stack.urls["media"] + "/v1/photos",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("photo.jpg", data, "image/jpeg")},
        data={"purpose": "before"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_a_reused_before_photo_is_flagged_and_blocks_acceptance(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    inspector, village = live_stack.login(http, "inspector"), live_stack.login(http, "village")
    as_inspector = {"Authorization": f"Bearer {inspector}"}
    as_village = {"Authorization": f"Bearer {village}"}
    issues = live_stack.urls["issues"]

    before = _upload(live_stack, http, inspector, _scene(92))
    reported = http.post(
        issues + "/v1/issues",
        json={
            "category": "luan-dui-fang",
            "region": VILLAGE,
            "source": "inspection",
            "description": "村口堆放杂物",
            "latitude": 36.4312,
            "longitude": 120.4471,
            "before_photo_ids": [before],
        },
        headers=as_inspector,
    )
    assert reported.status_code == 201, reported.text
    issue = reported.json()
    assert issue["status"] == "assigned"
    pinned = http.get(f"{live_stack.urls['media']}/v1/photos/{before}", headers=as_inspector).json()
    assert pinned["issue_id"] == issue["code"]  # pinned over HTTP once the report committed

    after = _upload(live_stack, http, village, _scene(60))  # the same picture, re-encoded
    submitted = http.post(
        f"{issues}/v1/issues/{issue['id']}/actions/submit",
        json={"after_photo_ids": [after]},
        headers=as_village,
    )
    assert submitted.status_code == 200, submitted.text
    flags = {f["code"]: f for f in submitted.json()["evidence_flags"]}
    assert "reuses_before_photo" in flags and flags["reuses_before_photo"]["figures"]["photo_id"] == before

    refused = http.post(f"{issues}/v1/issues/{issue['id']}/actions/accept", json={}, headers=as_inspector)
    assert refused.status_code == 409 and refused.json()["code"] == "evidence_flags_unresolved"
    events = http.get(f"{issues}/v1/issues/{issue['id']}/events", headers=as_inspector).json()["items"]
    submit_event = events[-1]
    assert submit_event["action"] == "submit"
    assert (
        submit_event["photos"][0]["sha256"]
        == http.get(f"{live_stack.urls['media']}/v1/photos/{after}", headers=as_inspector).json()["sha256"]
    )
    chain = http.get(f"{issues}/v1/issues/{issue['id']}/verify", headers=as_inspector).json()
    assert chain["intact"] is True and chain["events"] == 2


def test_with_media_stopped_an_action_with_photos_answers_503_and_changes_nothing(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    inspector = live_stack.login(http, "inspector")
    as_inspector = {"Authorization": f"Bearer {inspector}"}
    issues = live_stack.urls["issues"]
    before = http.get(issues + "/v1/issues", headers=as_inspector).json()["items"]
    live_stack.stop_service("media")
    try:
        answer = http.post(
            issues + "/v1/issues",
            json={
                "category": "luan-dui-fang",
                "region": VILLAGE,
                "source": "inspection",
                "description": "媒体服务停机时的上报",
                "before_photo_ids": ["a" * 32],
            },
            headers=as_inspector,
        )
    finally:
        live_stack.start_service("media")
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"]
    assert http.get(issues + "/v1/issues", headers=as_inspector).json()["items"] == before
