"""/v1/rounds/{id}/scorecards: one per unit per round, checked against the rubric, photos checked and pinned
with media, every change kept, frozen with the round, region scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.kit.identity import Subject
from services.scoring.rounds.models import Scorecard, ScorecardRevision
from tests.scoring.conftest import FakeIssues, FakeMedia
from tests.support.builders import (
    COUNTY,
    FAR_GRID,
    FAR_VILLAGE,
    GRID,
    GRID_2,
    NEIGHBOUR,
    OTHER_TOWN,
    TOWN,
    VILLAGE,
    ZONE,
)
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]
CountRows = Callable[..., Any]
INSPECTOR = Subject.user(7)


@pytest.fixture
async def round_id(client: httpx.AsyncClient, auth: Auth, fake_issues: FakeIssues) -> int:
    """An open 上旬 inspection of the town's villages, by the default rubric."""
    body = {
        "kind": "inspection",
        "period": "2026-11",
        "window": "first",
        "scope": TOWN,
        "unit_level": "village",
        "rubric_id": 1,
    }
    r = await client.post("/v1/rounds", json=body, headers=auth("inspector"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def card(**changes: Any) -> dict[str, Any]:
    return {
        "unit_code": VILLAGE,
        "items": [
            {"indicator": "liu-luan", "deduction": 2, "note": "柴草乱堆"},
            {"indicator": "chang-xiao", "score": 4},
        ],
        "notes": "保洁员在岗",
        **changes,
    }


async def test_an_inspector_files_and_changes_a_scorecard_and_every_version_is_kept(
    client: httpx.AsyncClient, auth: Auth, round_id: int, count_rows: CountRows, backend: str
) -> None:
    url = f"/v1/rounds/{round_id}/scorecards"
    r = await client.post(
        url, json=card(), headers=auth("inspector", subject=INSPECTOR, name="区测评组 张三")
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{url}/{VILLAGE}"
    filed = r.json()
    assert {
        k: filed[k]
        for k in (
            "round_id",
            "unit_code",
            "unit_name",
            "revision",
            "filed_by",
            "filed_by_name",
            "notes",
            "photo_ids",
        )
    } == {
        "round_id": round_id,
        "unit_code": VILLAGE,
        "unit_name": "前庄村",
        "revision": 1,
        "filed_by": str(INSPECTOR),
        "filed_by_name": "区测评组 张三",
        "notes": "保洁员在岗",
        "photo_ids": [],
    }
    assert filed["items"] == [
        {"indicator": "liu-luan", "deduction": 2, "score": None, "note": "柴草乱堆"},
        {"indicator": "chang-xiao", "deduction": None, "score": 4, "note": ""},
    ]
    assert_problem(await client.post(url, json=card(), headers=auth("inspector")), 409, "scorecard_exists")

    change = {"items": [{"indicator": "liu-luan", "deduction": 3.5}], "notes": "复查：仍有堆放"}
    changed = await client.put(f"{url}/{VILLAGE}", json=change, headers=auth("admin"))
    assert changed.status_code == 200, changed.text
    assert (
        changed.json()["revision"],
        changed.json()["filed_by"],
        changed.json()["items"][0]["deduction"],
    ) == (2, str(INSPECTOR), 3.5)
    # The same content again is no new version.
    assert (await client.put(f"{url}/{VILLAGE}", json=change, headers=auth("admin"))).json()["revision"] == 2

    history = await client.get(f"{url}/{VILLAGE}/history", headers=auth("village", VILLAGE))
    assert history.status_code == 200, history.text
    assert [(v["revision"], v["author_name"], v["notes"]) for v in history.json()["items"]] == [
        (1, "区测评组 张三", "保洁员在岗"),
        (2, "test admin", "复查：仍有堆放"),
    ]
    assert history.json()["items"][0]["items"] == filed["items"]
    assert await count_rows(Scorecard) == 1
    assert await count_rows(ScorecardRevision) == 2
    one = await client.get(f"{url}/{VILLAGE}", headers=auth("officer", TOWN))
    assert one.json() == changed.json()


@pytest.mark.parametrize(
    ("items", "code", "message"),
    [
        (
            [{"indicator": "mystery", "deduction": 1}],
            "invalid_scorecard",
            "the rubric has no indicator 'mystery'",
        ),
        (
            [{"indicator": "dao-lu", "deduction": 6}],
            "invalid_scorecard",
            "6 points do not fit indicator 'dao-lu'",
        ),
        (
            [{"indicator": "dao-lu", "score": 5.5}],
            "invalid_scorecard",
            "a score of 5.5 does not fit indicator 'dao-lu'",
        ),
        (
            [{"indicator": "dao-lu", "score": 4}, {"indicator": "dao-lu", "deduction": 1}],
            "invalid_scorecard",
            "gets a score once, without deductions",
        ),
        (
            [{"indicator": "dao-lu", "score": 4, "deduction": 1}],
            "validation_failed",
            "either a deduction or a score",
        ),
        ([{"indicator": "dao-lu"}], "validation_failed", "either a deduction or a score"),
        ([{"indicator": "dao-lu", "deduction": -1}], "validation_failed", ""),
        ([{"indicator": "dao-lu", "deduction": 0.125}], "validation_failed", ""),
        ([{"indicator": "dao-lu", "deduction": "2"}], "validation_failed", "a number"),
        ([{"indicator": "dao-lu", "deduction": True}], "validation_failed", "a number"),
        ([{"indicator": "dao-lu", "deduction": None, "score": 3}], "validation_failed", "not null"),
    ],
)
async def test_items_that_do_not_fit_the_rubric_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    auth: Auth,
    round_id: int,
    count_rows: CountRows,
    items: list[dict[str, Any]],
    code: str,
    message: str,
) -> None:
    r = await client.post(
        f"/v1/rounds/{round_id}/scorecards", json=card(items=items), headers=auth("inspector")
    )
    body = assert_problem(r, 422, code)
    assert any(message in e["message"] for e in body["errors"]), body
    assert await count_rows(Scorecard) == 0
    assert await count_rows(ScorecardRevision) == 0


async def test_a_bad_change_leaves_the_scorecard_as_it_was(
    client: httpx.AsyncClient, auth: Auth, round_id: int, count_rows: CountRows
) -> None:
    url = f"/v1/rounds/{round_id}/scorecards"
    filed = (await client.post(url, json=card(), headers=auth("inspector"))).json()
    bad = {"items": [{"indicator": "liu-luan", "deduction": 31}]}
    assert_problem(
        await client.put(f"{url}/{VILLAGE}", json=bad, headers=auth("inspector")), 422, "invalid_scorecard"
    )
    assert (await client.get(f"{url}/{VILLAGE}", headers=auth("inspector"))).json() == filed
    assert await count_rows(ScorecardRevision) == 1
    # A unit without a scorecard: 404 whatever the body, the missing scorecard said first.
    for body in (bad, {"items": []}):
        assert_problem(
            await client.put(f"{url}/{NEIGHBOUR}", json=body, headers=auth("inspector")),
            404,
            "scorecard_not_found",
        )


async def test_only_units_of_the_round_in_the_callers_region_get_scorecards(
    client: httpx.AsyncClient, auth: Auth, round_id: int, count_rows: CountRows
) -> None:
    url = f"/v1/rounds/{round_id}/scorecards"
    for unit in (FAR_VILLAGE, ZONE, TOWN, "370282103299"):  # not in the round, or not a unit of it
        assert_problem(
            await client.post(url, json=card(unit_code=unit), headers=auth("inspector")),
            404,
            "unit_not_found",
        )
    # An inspector of the other town does not see the round at all.
    assert_problem(
        await client.post(url, json=card(), headers=auth("inspector", OTHER_TOWN)), 404, "round_not_found"
    )
    # Within the round, an inspector homed in the 管区 writes for its villages only.
    assert (
        await client.post(url, json=card(unit_code=NEIGHBOUR), headers=auth("inspector", ZONE))
    ).status_code == 201
    assert_problem(
        await client.post(url, json=card(unit_code="370282103203"), headers=auth("inspector", ZONE)),
        404,
        "unit_not_found",
    )
    for role, region in (("officer", TOWN), ("village", VILLAGE), ("viewer", COUNTY)):
        assert_problem(
            await client.post(url, json=card(), headers=auth(role, region)), 403, "insufficient_scope"
        )
        assert_problem(
            await client.put(f"{url}/{VILLAGE}", json={"items": []}, headers=auth(role, region)),
            403,
            "insufficient_scope",
        )
    assert await count_rows(Scorecard) == 1


async def test_scope_scorecards_are_read_within_the_callers_subtree(
    client: httpx.AsyncClient, auth: Auth, round_id: int
) -> None:
    url = f"/v1/rounds/{round_id}/scorecards"
    for unit in (VILLAGE, NEIGHBOUR, "370282103203"):
        assert (
            await client.post(url, json=card(unit_code=unit), headers=auth("inspector"))
        ).status_code == 201
    for (role, region), codes in {
        ("village", VILLAGE): [VILLAGE],
        ("officer", TOWN): [VILLAGE, NEIGHBOUR, "370282103203"],
        ("grid", "370282103201-W01"): [],
    }.items():
        listed = await client.get(url, headers=auth(role, region))
        assert [c["unit_code"] for c in listed.json()["items"]] == codes, role
    assert_problem(
        await client.get(f"{url}/{NEIGHBOUR}", headers=auth("village", VILLAGE)), 404, "unit_not_found"
    )
    assert_problem(
        await client.get(f"{url}/{NEIGHBOUR}/history", headers=auth("village", VILLAGE)),
        404,
        "unit_not_found",
    )
    assert_problem(await client.get(url, headers=auth("officer", OTHER_TOWN)), 404, "round_not_found")
    assert_problem(await client.get(url, headers=auth("citizen", VILLAGE)), 403, "insufficient_scope")
    page = await client.get(url, params={"limit": 2}, headers=auth("admin"))
    rest = await client.get(
        url, params={"limit": 2, "cursor": page.json()["next_cursor"]}, headers=auth("admin")
    )
    assert [c["unit_code"] for c in page.json()["items"] + rest.json()["items"]] == sorted(
        [VILLAGE, NEIGHBOUR, "370282103203"]
    )


async def test_a_closed_round_freezes_its_scorecards(
    client: httpx.AsyncClient, auth: Auth, round_id: int, count_rows: CountRows, backend: str
) -> None:
    url = f"/v1/rounds/{round_id}/scorecards"
    filed = (await client.post(url, json=card(), headers=auth("inspector"))).json()
    assert (await client.post(f"/v1/rounds/{round_id}/close", headers=auth("inspector"))).status_code == 200
    assert_problem(
        await client.put(f"{url}/{VILLAGE}", json={"items": []}, headers=auth("inspector")),
        409,
        "round_closed",
    )
    assert_problem(
        await client.post(url, json=card(unit_code=NEIGHBOUR), headers=auth("inspector")), 409, "round_closed"
    )
    assert (await client.get(f"{url}/{VILLAGE}", headers=auth("inspector"))).json() == filed
    assert await count_rows(ScorecardRevision) == 1
    result = await client.get(f"/v1/rounds/{round_id}/results/{VILLAGE}", headers=auth("village", VILLAGE))
    assert result.json()["score"] == 100 - 2 - 1


async def test_photos_are_checked_with_media_and_pinned_after_the_commit(
    client: httpx.AsyncClient, auth: Auth, round_id: int, fake_media: FakeMedia, backend: str
) -> None:
    fake_media.add("01eb8b57cd595fced8e06d29c962728a", uploader=str(INSPECTOR), region_code=COUNTY)
    fake_media.add("36e1ee609cc5c33000a7b025bdb133e1", uploader="user:55", region_code=VILLAGE)
    url = f"/v1/rounds/{round_id}/scorecards"
    r = await client.post(
        url,
        json=card(photo_ids=["01eb8b57cd595fced8e06d29c962728a", "36e1ee609cc5c33000a7b025bdb133e1"]),
        headers=auth("inspector", subject=INSPECTOR),
    )
    assert r.status_code == 201, r.text
    assert r.json()["photo_ids"] == ["01eb8b57cd595fced8e06d29c962728a", "36e1ee609cc5c33000a7b025bdb133e1"]
    label = f"scorecard:{round_id}:{VILLAGE}"
    assert [(photo, body["issue_id"], body["region_code"]) for photo, body in fake_media.pinned] == [
        ("01eb8b57cd595fced8e06d29c962728a", label, VILLAGE),
        ("36e1ee609cc5c33000a7b025bdb133e1", label, VILLAGE),
    ]
    # A change pins only what it adds; photos already pinned to this scorecard are fine again.
    fake_media.add("699c64025ceb26b9f7a6adbc23246c55", uploader=str(INSPECTOR), region_code=VILLAGE)
    change = {
        "items": [],
        "photo_ids": ["36e1ee609cc5c33000a7b025bdb133e1", "699c64025ceb26b9f7a6adbc23246c55"],
    }
    assert (
        await client.put(f"{url}/{VILLAGE}", json=change, headers=auth("inspector", subject=INSPECTOR))
    ).status_code == 200
    assert [photo for photo, _ in fake_media.pinned] == [
        "01eb8b57cd595fced8e06d29c962728a",
        "36e1ee609cc5c33000a7b025bdb133e1",
        "699c64025ceb26b9f7a6adbc23246c55",
    ]


@pytest.mark.parametrize(
    ("photo", "reason"),
    [
        ("da8c6ce1a5e68b49a79b0e441455312b", "photo da8c6ce1a5e68b49a79b0e441455312b not found"),
        (
            "cb11e45d8b43178d7ca6d346d2d5d2aa",
            "photo cb11e45d8b43178d7ca6d346d2d5d2aa not found",
        ),  # someone else's, taken elsewhere
        ("727ac5ecf79ab45faaa17ac88ed96921", "was not uploaded for a scorecard"),
        ("68b69a6c2488fb6377a642e139711393", "is evidence of 370282-2026-000101 already"),
    ],
)
async def test_photos_that_cannot_be_used_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    auth: Auth,
    round_id: int,
    fake_media: FakeMedia,
    count_rows: CountRows,
    photo: str,
    reason: str,
) -> None:
    fake_media.add("cb11e45d8b43178d7ca6d346d2d5d2aa", uploader="user:55", region_code=NEIGHBOUR)
    fake_media.add(
        "727ac5ecf79ab45faaa17ac88ed96921", uploader=str(INSPECTOR), region_code=VILLAGE, purpose="after"
    )
    fake_media.add(
        "68b69a6c2488fb6377a642e139711393",
        uploader=str(INSPECTOR),
        region_code=VILLAGE,
        issue_id="370282-2026-000101",
    )
    r = await client.post(
        f"/v1/rounds/{round_id}/scorecards",
        json=card(photo_ids=[photo]),
        headers=auth("inspector", subject=INSPECTOR),
    )
    body = assert_problem(r, 422, "photos_refused")
    assert reason in body["detail"]
    assert await count_rows(Scorecard) == 0
    assert fake_media.pinned == []


async def test_photos_taken_in_a_grid_of_the_unit_are_accepted_and_others_outside_refused(
    client: httpx.AsyncClient,
    auth: Auth,
    round_id: int,
    fake_media: FakeMedia,
    fake_issues: FakeIssues,
    count_rows: CountRows,
    backend: str,
) -> None:
    """Photos of others are placed by their region's path: the unit's grids (网格) lie within it."""
    in_grid, in_grid_2 = "5d3b9a0c1e2f4a6b8c7d9e0f1a2b3c4d", "6e4c0b1d2f3a5b7c9d8e0f1a2b3c4d5e"
    far_grid, neighbour = "7f5d1c2e3a4b6c8d0e9f1a2b3c4d5e6f", "8a6e2d3f4b5c7d9e1f0a2b3c4d5e6f7a"
    fake_media.add(in_grid, uploader="user:55", region_code=GRID)
    fake_media.add(in_grid_2, uploader="user:56", region_code=GRID_2)
    fake_media.add(far_grid, uploader="user:55", region_code=FAR_GRID)
    fake_media.add(neighbour, uploader="user:55", region_code=NEIGHBOUR)
    url = f"/v1/rounds/{round_id}/scorecards"
    for outside in (far_grid, neighbour):
        refused = assert_problem(
            await client.post(
                url, json=card(photo_ids=[in_grid, outside]), headers=auth("inspector", subject=INSPECTOR)
            ),
            422,
            "photos_refused",
        )
        assert refused["detail"] == f"photo {outside} not found"
    # A grid is placed by the issues service: when it cannot be asked, 503 and nothing stored.
    fake_issues.failure = "down"
    assert_problem(
        await client.post(url, json=card(photo_ids=[in_grid]), headers=auth("inspector", subject=INSPECTOR)),
        503,
        "issues_unavailable",
    )
    fake_issues.failure = None
    assert await count_rows(Scorecard) == 0
    filed = await client.post(
        url, json=card(photo_ids=[in_grid, in_grid_2]), headers=auth("inspector", subject=INSPECTOR)
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["photo_ids"] == [in_grid, in_grid_2]
    assert [(photo, body["region_code"]) for photo, body in fake_media.pinned] == [
        (in_grid, VILLAGE),
        (in_grid_2, VILLAGE),
    ]


async def test_a_change_that_changes_nothing_stores_nothing_and_moves_no_time(
    client: httpx.AsyncClient,
    auth: Auth,
    round_id: int,
    fake_media: FakeMedia,
    count_rows: CountRows,
    backend: str,
) -> None:
    photo = "01eb8b57cd595fced8e06d29c962728a"
    fake_media.add(photo, uploader=str(INSPECTOR), region_code=VILLAGE)
    url = f"/v1/rounds/{round_id}/scorecards"
    headers = auth("inspector", subject=INSPECTOR)
    filed = await client.post(url, json=card(photo_ids=[photo]), headers=headers)
    assert filed.status_code == 201, filed.text
    round_before = (await client.get(f"/v1/rounds/{round_id}", headers=headers)).json()
    fake_media.failure = "down"  # the photos are what is stored: media need not be asked again
    same = {k: v for k, v in card(photo_ids=[photo]).items() if k != "unit_code"}
    # The same points written otherwise (2.0 for 2) are the same content.
    same["items"] = [{**same["items"][0], "deduction": 2.0}, same["items"][1]]
    again = await client.put(f"{url}/{VILLAGE}", json=same, headers=auth("admin"))
    assert again.status_code == 200, again.text
    assert again.json() == filed.json()
    assert (await client.get(f"/v1/rounds/{round_id}", headers=headers)).json() == round_before
    assert await count_rows(ScorecardRevision) == 1
    # Photos listed twice are still refused, though the rest is the same.
    fake_media.failure = None
    twice = {**same, "photo_ids": [photo, photo]}
    assert_problem(await client.put(f"{url}/{VILLAGE}", json=twice, headers=headers), 422, "photos_refused")


async def test_a_change_to_a_missing_scorecard_is_404_without_asking_media(
    client: httpx.AsyncClient, auth: Auth, round_id: int, fake_media: FakeMedia, count_rows: CountRows
) -> None:
    fake_media.failure = "down"  # asked, it would answer 503
    change = {"items": [], "photo_ids": ["70ff83728fb2701cbc52fac8df762bf1"]}
    for unit in (NEIGHBOUR, FAR_VILLAGE):  # no scorecard; not in the round
        r = await client.put(
            f"/v1/rounds/{round_id}/scorecards/{unit}", json=change, headers=auth("inspector")
        )
        assert_problem(r, 404, "scorecard_not_found" if unit == NEIGHBOUR else "unit_not_found")
    assert await count_rows(Scorecard) == 0


async def test_media_down_is_503_and_nothing_is_stored(
    client: httpx.AsyncClient, auth: Auth, round_id: int, fake_media: FakeMedia, count_rows: CountRows
) -> None:
    fake_media.failure = "down"
    r = await client.post(
        f"/v1/rounds/{round_id}/scorecards",
        json=card(photo_ids=["70ff83728fb2701cbc52fac8df762bf1"]),
        headers=auth("inspector"),
    )
    assert_problem(r, 503, "media_unavailable")
    assert await count_rows(Scorecard) == 0
    # Without photos, media is not asked.
    assert (
        await client.post(f"/v1/rounds/{round_id}/scorecards", json=card(), headers=auth("inspector"))
    ).status_code == 201
