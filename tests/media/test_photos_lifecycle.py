"""A photo's life: pinned to an issue by the issues service, deleted by its uploader, redacted by staff."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import pytest

from services.kit.identity import Subject
from services.media.photos import keys
from services.media.photos.models import Photo
from tests.media.api import ATTACHER, picture, uploaded, variant
from tests.media.images import jpeg
from tests.support.builders import COUNTY, FAR_VILLAGE, OTHER_TOWN, REGION_PATHS, TOWN, VILLAGE
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]

local_store = pytest.mark.parametrize("store_kind", ["local"], indirect=True)
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
ISSUE = "370282-2026-000042"


@functools.cache
def _sample(seed: int) -> bytes:
    return jpeg(640, 480, seed=seed)


def pin(issue_id: str, region: str) -> dict[str, str]:
    return {"issue_id": issue_id, "region_code": region, "region_path": REGION_PATHS[region]}


async def attach(
    client: httpx.AsyncClient, headers: dict[str, str], photo_id: str, body: dict[str, str]
) -> httpx.Response:
    return await client.post(f"/v1/photos/{photo_id}/attach", headers=headers, json=body)


# ---- attach -------------------------------------------------------------------------------------------


@local_store
async def test_attach_pins_the_photo_to_the_issue_and_moves_it_to_the_issues_region(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    service = auth(**ATTACHER)
    photo = await uploaded(client, auth("village", VILLAGE), _sample(51), purpose="before")
    r = await attach(client, service, photo["id"], pin(ISSUE, FAR_VILLAGE))
    assert r.status_code == 200, r.text
    pinned = r.json()
    assert (pinned["issue_id"], pinned["region_code"]) == (ISSUE, FAR_VILLAGE)
    attached_at = datetime.fromisoformat(pinned["attached_at"])

    path = f"/v1/photos/{photo['id']}"
    for role, region in (("officer", OTHER_TOWN), ("village", FAR_VILLAGE), ("admin", COUNTY)):
        r = await client.get(path, headers=auth(role, region))
        assert r.status_code == 200, f"{role} {region}: {r.text}"
        assert r.json()["issue_id"] == ISSUE
    # The photo left the uploader's village with the issue.
    for role, region in (("village", VILLAGE), ("officer", TOWN)):
        assert (await client.get(path, headers=auth(role, region))).status_code == 404

    # Repeating the call for the same issue is harmless; another issue is a conflict.
    again = await attach(client, service, photo["id"], pin(ISSUE, FAR_VILLAGE))
    assert again.status_code == 200, again.text
    assert datetime.fromisoformat(again.json()["attached_at"]) == attached_at
    other = await attach(client, service, photo["id"], pin("370282-2026-000043", FAR_VILLAGE))
    assert_problem(other, 409, "photo_already_attached")
    r = await client.get(path, headers=auth("admin", COUNTY))
    assert (r.json()["issue_id"], r.json()["region_code"]) == (ISSUE, FAR_VILLAGE)


@local_store
async def test_only_a_service_token_may_attach(
    client: httpx.AsyncClient, auth: Auth, count_rows: Any
) -> None:
    village = auth("village", VILLAGE)
    photo = await uploaded(client, village, _sample(52))
    for headers in (village, auth("officer", TOWN), auth("admin", COUNTY)):
        r = await attach(client, headers, photo["id"], pin(ISSUE, VILLAGE))
        assert_problem(r, 403, "insufficient_scope")
    assert_problem(await attach(client, {}, photo["id"], pin(ISSUE, VILLAGE)), 401, "missing_token")
    service = auth(**ATTACHER)
    assert_problem(await attach(client, service, "0" * 32, pin(ISSUE, VILLAGE)), 404, "photo_not_found")
    bad_path = pin(ISSUE, VILLAGE) | {"region_path": "370282103201"}
    assert_problem(await attach(client, service, photo["id"], bad_path), 422, "validation_failed")
    assert await count_rows(Photo, Photo.issue_id.is_(None)) == 1  # type: ignore[union-attr]


# ---- delete -------------------------------------------------------------------------------------------


async def test_uploader_deletes_an_unattached_photo_and_its_stored_objects(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    village = auth("village", VILLAGE)
    photo = await uploaded(client, village, _sample(53))
    assert len(stored_objects()) == 4
    r = await client.delete(f"/v1/photos/{photo['id']}", headers=village)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert await count_rows(Photo) == 0
    assert stored_objects() == []
    assert_problem(await client.get(f"/v1/photos/{photo['id']}", headers=village), 404, "photo_not_found")
    assert_problem(await client.delete(f"/v1/photos/{photo['id']}", headers=village), 404, "photo_not_found")


async def test_deleting_keeps_the_objects_another_photo_of_the_same_bytes_uses(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    village, citizen = auth("village", VILLAGE), auth("citizen", VILLAGE)
    first = await uploaded(client, village, _sample(54))
    second = await uploaded(client, citizen, _sample(54))
    objects = stored_objects()
    assert objects == sorted(keys.content_keys(first["sha256"]))
    assert (await client.delete(f"/v1/photos/{first['id']}", headers=village)).status_code == 204
    assert await count_rows(Photo) == 1
    assert stored_objects() == objects
    _, thumb = await variant(client, citizen, second["id"], "thumb")
    assert thumb.status_code == 200
    assert (await client.delete(f"/v1/photos/{second['id']}", headers=citizen)).status_code == 204
    assert stored_objects() == []


@local_store
async def test_only_the_uploader_may_delete(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    photo = await uploaded(client, auth("village", VILLAGE), _sample(55))
    objects = stored_objects()
    for headers in (
        auth("village", VILLAGE, subject=Subject.user(1003)),
        auth("officer", TOWN),
        auth("admin", COUNTY),
    ):
        r = await client.delete(f"/v1/photos/{photo['id']}", headers=headers)
        assert_problem(r, 403, "not_uploader")
    r = await client.delete(f"/v1/photos/{photo['id']}", headers=auth("viewer", COUNTY))
    assert_problem(r, 403, "insufficient_scope")
    assert await count_rows(Photo) == 1
    assert stored_objects() == objects


async def test_pinned_photo_can_never_be_deleted(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    village = auth("village", VILLAGE)
    photo = await uploaded(client, village, _sample(56), purpose="after")
    r = await attach(client, auth(**ATTACHER), photo["id"], pin(ISSUE, VILLAGE))
    assert r.status_code == 200, r.text
    objects = stored_objects()
    assert_problem(await client.delete(f"/v1/photos/{photo['id']}", headers=village), 409, "photo_pinned")
    assert await count_rows(Photo) == 1
    assert stored_objects() == objects


# ---- redaction ----------------------------------------------------------------------------------------

BOX = {"x": 100, "y": 80, "width": 200, "height": 120}


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(picture(data).convert("RGB"), dtype=np.int16)


@sqlite_only
async def test_staff_redaction_changes_the_display_copy_and_never_the_original(
    client: httpx.AsyncClient,
    auth: Auth,
    stored_objects: Callable[[], list[str]],
) -> None:
    village, officer = auth("village", VILLAGE), auth("officer", TOWN)
    data = _sample(57)
    photo = await uploaded(client, village, data)
    _, before = await variant(client, officer, photo["id"], "display")
    objects = stored_objects()

    r = await client.post(f"/v1/photos/{photo['id']}/redactions", headers=officer, json={"boxes": [BOX]})
    assert r.status_code == 200, r.text
    assert r.json()["redacted"] is True
    assert stored_objects() == sorted(
        [*objects, keys.redacted_key(photo["id"]), keys.redacted_thumb_key(photo["id"])]
    )

    _, after = await variant(client, village, photo["id"], "display")
    assert after.status_code == 200
    old, new = _pixels(before.content), _pixels(after.content)
    assert new.shape == old.shape == (480, 640, 3)
    inside = (slice(BOX["y"], BOX["y"] + BOX["height"]), slice(BOX["x"], BOX["x"] + BOX["width"]))
    assert new[inside].mean() < 8  # blacked out
    assert old[inside].mean() > 40
    outside = np.ones(new.shape[:2], bool)
    outside[BOX["y"] - 8 : BOX["y"] + BOX["height"] + 8, BOX["x"] - 8 : BOX["x"] + BOX["width"] + 8] = False
    assert np.abs(new[outside] - old[outside]).mean() < 3  # the rest only re-encoded

    _, original = await variant(client, officer, photo["id"], "original")
    assert hashlib.sha256(original.content).hexdigest() == photo["sha256"] == hashlib.sha256(data).hexdigest()

    # Deleting the photo removes its redacted copy with the rest.
    assert (await client.delete(f"/v1/photos/{photo['id']}", headers=village)).status_code == 204
    assert stored_objects() == []


@sqlite_only
@local_store
async def test_a_second_redaction_adds_to_the_first_and_never_uncovers_it(
    client: httpx.AsyncClient, auth: Auth, stored_objects: Callable[[], list[str]]
) -> None:
    officer = auth("officer", TOWN)
    photo = await uploaded(client, auth("village", VILLAGE), _sample(60))
    path = f"/v1/photos/{photo['id']}/redactions"
    second = {"x": 400, "y": 300, "width": 120, "height": 100}
    assert (await client.post(path, headers=officer, json={"boxes": [BOX]})).status_code == 200
    objects = stored_objects()
    assert (await client.post(path, headers=officer, json={"boxes": [second]})).status_code == 200

    assert stored_objects() == objects  # the redacted copies are replaced, not multiplied
    _, display = await variant(client, officer, photo["id"], "display")
    shown = _pixels(display.content)
    for box in (BOX, second):
        inside = (
            slice(box["y"] + 2, box["y"] + box["height"] - 2),
            slice(box["x"] + 2, box["x"] + box["width"] - 2),
        )
        assert shown[inside].mean() < 8


@sqlite_only
@local_store
async def test_village_and_citizen_may_not_redact(
    client: httpx.AsyncClient, auth: Auth, stored_objects: Callable[[], list[str]]
) -> None:
    citizen = auth("citizen", VILLAGE)
    photo = await uploaded(client, citizen, _sample(58))
    objects = stored_objects()
    path = f"/v1/photos/{photo['id']}/redactions"
    for headers in (citizen, auth("village", VILLAGE)):
        assert_problem(
            await client.post(path, headers=headers, json={"boxes": [BOX]}),
            403,
            "redaction_not_allowed",
        )
    officer = auth("officer", TOWN)
    off_picture = {"boxes": [{"x": 5000, "y": 5000, "width": 10, "height": 10}]}
    assert_problem(await client.post(path, headers=officer, json=off_picture), 422, "bad_redaction_box")
    assert_problem(await client.post(path, headers=officer, json={"boxes": []}), 422, "validation_failed")
    assert stored_objects() == objects
    r = await client.get(f"/v1/photos/{photo['id']}", headers=citizen)
    assert r.json()["redacted"] is False


@sqlite_only
@local_store
async def test_thumbnail_of_a_redacted_photo_is_redacted_too(client: httpx.AsyncClient, auth: Auth) -> None:
    officer = auth("officer", TOWN)
    photo = await uploaded(client, auth("village", VILLAGE), _sample(59))
    r = await client.post(f"/v1/photos/{photo['id']}/redactions", headers=officer, json={"boxes": [BOX]})
    assert r.status_code == 200
    _, thumb = await variant(client, officer, photo["id"], "thumb")
    scale = 320 / 640
    y0, y1 = int(BOX["y"] * scale) + 2, int((BOX["y"] + BOX["height"]) * scale) - 2
    x0, x1 = int(BOX["x"] * scale) + 2, int((BOX["x"] + BOX["width"]) * scale) - 2
    assert _pixels(thumb.content)[y0:y1, x0:x1].mean() < 8
