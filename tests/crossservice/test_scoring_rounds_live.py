"""Rounds across the running services: the snapshot read from the issues service over HTTP, a scorecard
photo checked and pinned in media, the issues reported in the round deducted at closing with their codes,
and the issues service stopped: 503 and the round left open.

The stack is shared by the session's live tests, so this module keeps to rounds of its own (covert rounds
of the other town, which nothing else creates) and judges the deductions by its own issues' codes.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.scoring.periods import SHANGHAI
from tests.crossservice.conftest import LiveStack
from tests.media import photos
from tests.support.builders import FAR_VILLAGE, FAR_VILLAGE_2, OTHER_TOWN

pytestmark = pytest.mark.crossservice


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _covert_round(live_stack: LiveStack, http: httpx.Client, token: str) -> dict[str, Any]:
    today = datetime.now(SHANGHAI).date()
    body = {
        "kind": "covert",
        "period": f"{today.year:04d}-{today.month:02d}",
        "scope": OTHER_TOWN,
        "unit_level": "village",
        "rubric_id": 1,
        "starts_on": today.replace(day=1).isoformat(),
        "ends_on": today.isoformat(),
    }
    r = http.post(live_stack.urls["scoring"] + "/v1/rounds", json=body, headers=_bearer(token))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _photo(live_stack: LiveStack, http: httpx.Client, token: str) -> str:
    buf = io.BytesIO()
    photos.camera(917, (800, 600)).save(buf, "JPEG", quality=90)
    r = http.post(
        live_stack.urls["media"] + "/v1/photos",
        headers=_bearer(token),
        files={"file": ("card.jpg", buf.getvalue(), "image/jpeg")},
        data={"purpose": "scorecard"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_round_snapshots_scores_and_deducts_the_issues_found_over_http(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    inspector, admin = live_stack.login(http, "inspector"), live_stack.login(http, "admin")
    issues, scoring = live_stack.urls["issues"], live_stack.urls["scoring"]
    reported = []
    for category, severity in (("luan-dui-fang", "normal"), ("luan-da-jian", "serious")):
        r = http.post(
            issues + "/v1/issues",
            json={
                "category": category,
                "severity": severity,
                "region": FAR_VILLAGE_2,
                "source": "inspection",
                "description": "暗访发现的问题",
            },
            headers=_bearer(inspector),
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "assigned"
        reported.append(r.json()["code"])

    created = _covert_round(live_stack, http, inspector)
    assert created["units"] == 2
    # Renamed in the issues service after the round was created: the round keeps the name it took.
    renamed = http.patch(
        f"{issues}/v1/regions/{FAR_VILLAGE_2}", json={"name": "大欧社区"}, headers=_bearer(admin)
    )
    assert renamed.status_code == 200, renamed.text
    try:
        units = http.get(
            f"{scoring}/v1/rounds/{created['id']}/units", params={"level": "village"}, headers=_bearer(admin)
        )
        assert [(u["code"], u["name"]) for u in units.json()["items"]] == [
            (FAR_VILLAGE, "七级村"),
            (FAR_VILLAGE_2, "大欧村"),
        ]
    finally:
        http.patch(f"{issues}/v1/regions/{FAR_VILLAGE_2}", json={"name": "大欧村"}, headers=_bearer(admin))

    photo = _photo(live_stack, http, inspector)
    card = {
        "unit_code": FAR_VILLAGE_2,
        "items": [{"indicator": "chang-xiao", "deduction": 1}],
        "photo_ids": [photo],
    }
    filed = http.post(
        f"{scoring}/v1/rounds/{created['id']}/scorecards", json=card, headers=_bearer(inspector)
    )
    assert filed.status_code == 201, filed.text
    pinned = http.get(f"{live_stack.urls['media']}/v1/photos/{photo}", headers=_bearer(inspector)).json()
    assert (
        pinned["issue_id"] == f"scorecard:{created['id']}:{FAR_VILLAGE_2}"
    )  # pinned once the filing committed

    closed = http.post(f"{scoring}/v1/rounds/{created['id']}/close", headers=_bearer(inspector))
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    result = http.get(
        f"{scoring}/v1/rounds/{created['id']}/results/{FAR_VILLAGE_2}", headers=_bearer(admin)
    ).json()
    lines = [line for indicator in result["breakdown"]["indicators"] for line in indicator["deductions"]]
    automatic = {line["issue_code"]: line for line in lines if line["source"] == "automatic"}
    assert (automatic[reported[0]]["points"], automatic[reported[0]]["category"]) == (1, "luan-dui-fang")
    assert (automatic[reported[1]]["points"], automatic[reported[1]]["severity"]) == (3, "serious")
    counted = sum(Decimal(str(line["counted"])) for line in lines)
    assert Decimal(str(result["score"])) == Decimal(100) - counted
    assert result["breakdown"]["scorecard_filed"] is True
    # A covert round scores the villages it visited: the other village has no score.
    other = http.get(f"{scoring}/v1/rounds/{created['id']}/results/{FAR_VILLAGE}", headers=_bearer(admin))
    assert other.status_code == 404 and other.json()["code"] == "result_not_found"
    # Frozen: the scorecard cannot change any more.
    again = http.put(
        f"{scoring}/v1/rounds/{created['id']}/scorecards/{FAR_VILLAGE_2}",
        json={"items": []},
        headers=_bearer(inspector),
    )
    assert again.status_code == 409 and again.json()["code"] == "round_closed"


def test_with_the_issues_service_stopped_closing_is_503_and_the_round_stays_open(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    inspector = live_stack.login(http, "inspector")
    scoring = live_stack.urls["scoring"]
    created = _covert_round(live_stack, http, inspector)
    card = {"unit_code": FAR_VILLAGE, "items": [{"indicator": "chang-xiao", "deduction": 2}]}
    assert (
        http.post(
            f"{scoring}/v1/rounds/{created['id']}/scorecards", json=card, headers=_bearer(inspector)
        ).status_code
        == 201
    )
    live_stack.stop_service("issues")
    try:
        answer = http.post(f"{scoring}/v1/rounds/{created['id']}/close", headers=_bearer(inspector))
        still = http.get(f"{scoring}/v1/rounds/{created['id']}", headers=_bearer(inspector))
    finally:
        live_stack.start_service("issues")
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "issues_unavailable" and answer.headers["retry-after"]
    assert still.json()["status"] == "open"
    results = http.get(f"{scoring}/v1/rounds/{created['id']}/results", headers=_bearer(inspector))
    assert results.status_code == 409 and results.json()["code"] == "round_open"
    closed = http.post(f"{scoring}/v1/rounds/{created['id']}/close", headers=_bearer(inspector))
    assert closed.status_code == 200, closed.text
