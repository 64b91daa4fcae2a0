"""Multipart upload through the media API, on both stores and both databases."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.media.deps import MediaState
from services.media.photos import keys
from services.media.photos.models import Photo
from tests.media.api import flags, upload, uploaded
from tests.media.images import encode, exif_block, heic_writable, jpeg, photo_like
from tests.support.builders import VILLAGE
from tests.support.tokens import subject_for

Auth = Callable[..., dict[str, str]]


async def test_multipart_upload_answers_the_photo_and_stores_it_with_its_variants(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    data = jpeg(640, 480, seed=3, exif=exif_block(gps=(36.39, 120.45), make="HUAWEI", model="P60"))
    r = await upload(
        client,
        auth("village", VILLAGE),
        data,
        filename="IMG_0001.jpg",
        purpose="before",
        latitude="36.3901",
        longitude="120.4502",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    sha = hashlib.sha256(data).hexdigest()
    assert r.headers["location"] == f"/v1/photos/{body['id']}"
    assert len(body["id"]) == 32
    assert body["sha256"] == sha
    assert (body["mime"], body["width"], body["height"], body["size_bytes"]) == (
        "image/jpeg",
        640,
        480,
        len(data),
    )
    assert (body["purpose"], body["region_code"], body["issue_id"]) == ("before", VILLAGE, None)
    assert body["uploader"] == str(subject_for("village", VILLAGE))
    facts = body["facts"]
    assert (facts["has_exif"], facts["camera_make"], facts["camera_model"]) == (True, "HUAWEI", "P60")
    assert facts["latitude"] == pytest.approx(36.39, abs=1e-4)
    assert facts["longitude"] == pytest.approx(120.45, abs=1e-4)
    assert body["claims"] == {"latitude": 36.3901, "longitude": 120.4502, "taken_at": None}
    # EXIF within 500 m of the claim, no capture time: nothing to flag.
    assert body["flags"] == []
    base = f"/v1/photos/{body['id']}/content?variant="
    # A village cadre may not fetch originals, so no link is offered.
    assert body["urls"] == {"thumb": base + "thumb", "display": base + "display", "original": None}
    assert await count_rows(Photo) == 1
    assert stored_objects() == sorted(keys.content_keys(sha))


async def test_same_bytes_twice_make_two_photos_over_one_stored_copy_and_flag_the_second(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    data = jpeg(640, 480, seed=4)
    first = await uploaded(client, auth("village", VILLAGE), data, purpose="after")
    objects = stored_objects()
    # The town's officer may see the village's photo, so the flag names it.
    second = await uploaded(client, auth("officer", "370282103"), data, purpose="after")

    assert second["id"] != first["id"]
    assert second["sha256"] == first["sha256"]
    assert await count_rows(Photo) == 2
    assert stored_objects() == objects  # content-addressed: nothing new stored
    assert len(objects) == 4
    assert "reused" not in flags(first)
    reused = flags(second)["reused"]
    assert reused["figures"]["other_photo_id"] == first["id"]
    assert reused["figures"]["exact"] is True
    assert reused["figures"]["score"] == 1.0


HEIC = pytest.param(
    "HEIF", "image/heic", marks=pytest.mark.skipif(not heic_writable(), reason="no HEVC encoder here")
)


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("WEBP", "image/webp"), HEIC])
async def test_png_webp_and_heic_are_accepted_with_their_type(
    client: httpx.AsyncClient,
    media_state: MediaState,
    auth: Auth,
    count_rows: Any,
    fmt: str,
    mime: str,
) -> None:
    data = encode(photo_like(320, 240, seed=5), fmt)
    body = await uploaded(client, auth("village", VILLAGE), data)
    assert (body["mime"], body["width"], body["height"]) == (mime, 320, 240)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert await count_rows(Photo, Photo.mime == mime) == 1
    original = await media_state.store.stat(keys.original_key(body["sha256"]))
    assert (original.size, original.content_type) == (len(data), mime)
    thumb = await media_state.store.stat(keys.thumb_key(body["sha256"]))
    assert thumb.content_type == "image/jpeg"


async def test_type_comes_from_the_bytes_not_the_file_name_or_content_type(
    client: httpx.AsyncClient,
    media_state: MediaState,
    auth: Auth,
    count_rows: Any,
) -> None:
    data = encode(photo_like(320, 240, seed=6), "PNG")
    r = await upload(client, auth("village", VILLAGE), data, filename="x.jpg", content_type="image/jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["mime"] == "image/png"
    assert await count_rows(Photo, Photo.mime == "image/png", Photo.client_content_type == "image/jpeg") == 1
    original = await media_state.store.stat(keys.original_key(r.json()["sha256"]))
    assert original.content_type == "image/png"


async def test_resent_upload_with_the_same_idempotency_key_answers_the_first_photo(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    # A dropped connection on a rural network: the same request is sent again byte for byte.
    headers = auth("village", VILLAGE) | {
        "Idempotency-Key": "wx-upload-7f3a",
        "Content-Type": "multipart/form-data; boundary=huanzhi-fixed-boundary",
    }
    files = {"file": ("IMG_0007.jpg", jpeg(640, 480, seed=7), "image/jpeg")}
    first = await client.post("/v1/photos", headers=headers, files=files, data={"purpose": "after"})
    assert first.status_code == 201, first.text
    again = await client.post("/v1/photos", headers=headers, files=files, data={"purpose": "after"})
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert await count_rows(Photo) == 1
    assert len(stored_objects()) == 4


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
async def test_retried_upload_with_a_new_multipart_boundary_is_still_replayed(
    client: httpx.AsyncClient, auth: Auth, count_rows: Any
) -> None:
    # wx.uploadFile (like every HTTP client) picks a fresh boundary for each request, retries included.
    headers = auth("village", VILLAGE) | {"Idempotency-Key": "wx-upload-7f3b"}
    files = {"file": ("IMG_0008.jpg", jpeg(640, 480, seed=8), "image/jpeg")}
    first = await client.post("/v1/photos", headers=headers, files=files)
    assert first.status_code == 201, first.text
    again = await client.post("/v1/photos", headers=headers, files=files)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert await count_rows(Photo) == 1
