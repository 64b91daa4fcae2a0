"""The bad-input catalogue: every refusal names its reason and keeps nothing; odd but real photos are flagged.

Runs on both stores and both databases: a refusal must leave no row, no object and no spooled file on any.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from minio import Minio

from services.media.imaging.facts import CHINA_TIME
from services.media.photos.models import Photo
from services.media.settings import MediaSettings
from tests.media.api import (
    complete,
    flags,
    open_slot,
    put_bytes,
    spooled,
    unreachable_store,
    upload,
    uploaded,
)
from tests.media.images import (
    encode,
    exif_block,
    jpeg,
    photo_like,
    png_bomb,
    scan_start,
    with_app1,
    with_declared_size,
)
from tests.media.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.support.builders import TOWN, VILLAGE
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]
PHOTO_LIMIT = 200_000


@pytest.fixture
def overrides(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """`small_limit`: a 200 kB photo limit; `store_down`: neither store can be reached or written."""
    wanted = getattr(request, "param", None)
    if wanted == "small_limit":
        return {"max_upload_bytes": PHOTO_LIMIT}
    if wanted == "store_down":
        return unreachable_store(tmp_path)
    return {}


@functools.cache
def _sample() -> bytes:
    return jpeg(640, 480, seed=11)


def _corrupt() -> bytes:
    data = _sample()
    start = scan_start(data)
    garbage = np.random.default_rng(5).integers(0, 256, len(data) - start - 2, dtype=np.uint8).tobytes()
    return data[:start] + garbage + b"\xff\xd9"


REFUSALS = [
    pytest.param(
        lambda: "今天村口的垃圾清理了\n".encode() * 50, "IMG_0002.jpg", 415, "not_an_image", id="text-as-jpg"
    ),
    pytest.param(lambda: b"", "empty.jpg", 415, "not_an_image", id="zero-bytes"),
    pytest.param(
        lambda: _sample()[: len(_sample()) // 2], "cut.jpg", 422, "image_corrupt", id="truncated-jpeg"
    ),
    pytest.param(_corrupt, "noise.jpg", 422, "image_corrupt", id="corrupt-jpeg"),
    pytest.param(
        lambda: encode(photo_like(64, 48), "GIF"), "anim.gif", 415, "unsupported_image_type", id="gif"
    ),
    pytest.param(png_bomb, "bomb.png", 422, "image_too_many_pixels", id="png-bomb-30000x30000"),
    pytest.param(
        lambda: with_declared_size(jpeg(64, 48), 60_000, 60_000),
        "huge.jpg",
        422,
        "image_too_many_pixels",
        id="jpeg-header-claiming-60000x60000",
    ),
]


@pytest.mark.parametrize("way", ["multipart", "presigned"])
@pytest.mark.parametrize(("build", "filename", "status", "code"), REFUSALS)
async def test_bad_image_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    settings: MediaSettings,
    build: Callable[[], bytes],
    filename: str,
    status: int,
    code: str,
    way: str,
) -> None:
    village = auth("village", VILLAGE)
    objects = stored_objects()
    if way == "multipart":
        r = await upload(client, village, build(), filename=filename)
    else:  # the bytes go straight to the store; completing the slot refuses them and removes them
        slot = await open_slot(client, village)
        await put_bytes(client, slot["put_url"], build())
        r = await complete(client, village, slot["id"])
        assert r.json()["upload_id"] == slot["id"]
    assert_problem(r, status, code)
    assert await count_rows(Photo) == 0
    assert stored_objects() == objects
    assert spooled(settings.data_dir) == []


async def test_unsupported_type_is_named_in_the_refusal(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await upload(client, auth("village", VILLAGE), encode(photo_like(64, 48), "GIF"))
    body = assert_problem(r, 415, "unsupported_image_type")
    assert body["detected_type"] == "image/gif"
    assert "image/jpeg" in body["accepted_types"]


# (name, files, form fields, status, code); files None: a good photo in the `file` field.
INVALID_REQUESTS: list[tuple[str, dict[str, Any] | None, dict[str, str], int, str]] = [
    ("missing file field", {}, {"purpose": "after"}, 422, "validation_failed"),
    ("latitude 91", None, {"latitude": "91", "longitude": "120.45"}, 422, "validation_failed"),
    ("latitude not a number", None, {"latitude": "北纬36", "longitude": "120.45"}, 422, "validation_failed"),
    ("latitude without longitude", None, {"latitude": "36.39"}, 400, "incomplete_position"),
    ("unknown purpose", None, {"purpose": "selfie"}, 422, "validation_failed"),
    ("capture time not RFC 3339", None, {"taken_at": "yesterday"}, 422, "validation_failed"),
]


async def test_invalid_forms_are_refused_and_nothing_is_kept(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    settings: MediaSettings,
) -> None:
    # One app for the whole list: these are refused before any image work, so a case costs one request.
    for name, files, fields, status, code in INVALID_REQUESTS:
        r = await client.post(
            "/v1/photos",
            headers=auth("village", VILLAGE),
            files={"file": ("a.jpg", _sample(), "image/jpeg")} if files is None else files,
            data=fields,
        )
        assert (r.status_code, r.json().get("code")) == (status, code), f"{name}: {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json"), name
        if status == 422:
            assert r.json()["errors"], name
    assert await count_rows(Photo) == 0
    assert stored_objects() == []
    assert spooled(settings.data_dir) == []


async def test_upload_needs_a_token_with_photos_write(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    r = await upload(client, {}, _sample())
    assert_problem(r, 401, "missing_token")
    assert r.headers["www-authenticate"].startswith("Bearer")
    for role, region in (("viewer", "370282"), ("service", "*")):
        r = await upload(client, auth(role, region), _sample())
        assert_problem(r, 403, "insufficient_scope")
    assert await count_rows(Photo) == 0
    assert stored_objects() == []


# ---- size limit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", ["small_limit"], indirect=True)
async def test_photo_over_the_size_limit_is_refused_413(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    settings: MediaSettings,
) -> None:
    # 300 kB: under the body limit (photo + form framing), over the photo limit checked while spooling.
    big = _sample() + bytes(300_000 - len(_sample()))
    r = await upload(client, auth("village", VILLAGE), big)
    assert_problem(r, 413, "photo_too_large")
    assert await count_rows(Photo) == 0
    assert stored_objects() == []
    assert spooled(settings.data_dir) == []
    # A photo just under the limit is taken.
    assert len(_sample()) < PHOTO_LIMIT
    assert (await upload(client, auth("village", VILLAGE), _sample())).status_code == 201


@pytest.mark.parametrize("overrides", ["small_limit"], indirect=True)
async def test_declared_body_over_the_limit_is_refused_before_reading_it(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    r = await upload(client, auth("village", VILLAGE), bytes(600_000))
    assert_problem(r, 413, "payload_too_large")
    assert r.headers["connection"] == "close"
    assert await count_rows(Photo) == 0
    assert stored_objects() == []


@pytest.mark.parametrize("overrides", ["small_limit"], indirect=True)
async def test_streamed_body_without_length_is_cut_off_at_the_limit(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    settings: MediaSettings,
) -> None:
    boundary = "huanzhi-test-boundary"
    chunk, chunks = 64 * 1024, 32  # 2 MiB offered; the limit is the photo limit plus 256 KiB of framing
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        for _ in range(chunks):
            sent += 1
            yield b"\xff" * chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = auth("village", VILLAGE) | {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    r = await client.post("/v1/photos", headers=headers, content=body())
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload_too_large")
    assert sent * chunk <= PHOTO_LIMIT + 256 * 1024 + chunk  # stopped while streaming, not after all of it
    assert sent < chunks
    assert await count_rows(Photo) == 0
    assert stored_objects() == []
    assert spooled(settings.data_dir) == []


# ---- store down -------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", ["store_down"], indirect=True)
async def test_store_down_answers_503_with_retry_after_and_keeps_no_row(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    settings: MediaSettings,
    store_kind: str,
    request: pytest.FixtureRequest,
) -> None:
    r = await upload(client, auth("village", VILLAGE), _sample())
    assert_problem(r, 503, "store_unavailable")
    assert int(r.headers["retry-after"]) > 0
    assert await count_rows(Photo) == 0
    assert spooled(settings.data_dir) == []
    if store_kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        real = Minio(
            server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION
        )
        assert not real.bucket_exists(settings.s3_bucket)  # nothing reached the store
    else:
        assert not settings.objects_dir.exists()

    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["retry-after"]
    assert ready.json()["checks"]["object_store"].startswith("failed")


async def test_readyz_reports_a_working_store(client: httpx.AsyncClient) -> None:
    # The issues peer is not running in these tests, so only the store's own check is looked at.
    ready = await client.get("/readyz")
    checks = ready.json()["checks"]
    assert (checks["object_store"], checks["database"]) == ("ok", "ok")


# ---- accepted, flagged ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
async def test_malformed_exif_is_accepted_and_flagged(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    garbage = np.random.default_rng(8).integers(0, 256, 300, dtype=np.uint8).tobytes()
    data = with_app1(jpeg(640, 480, seed=12), b"Exif\x00\x00" + garbage)
    body = await uploaded(client, auth("village", VILLAGE), data)
    assert body["facts"]["has_exif"] is True
    assert set(flags(body)) == {"exif_malformed"}
    assert await count_rows(Photo) == 1
    assert len(stored_objects()) == 4


async def test_exif_position_in_the_ocean_is_accepted_and_flagged_with_the_distance(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    data = jpeg(640, 480, seed=13, exif=exif_block(gps=(20.0, 125.0)))  # the Philippine Sea
    body = await uploaded(client, auth("village", VILLAGE), data, latitude="36.39", longitude="120.45")
    far = flags(body)["gps_far_from_claim"]
    assert 1_850_000 < far["figures"]["distance_m"] < 1_900_000  # ≈ 1,876 km from 即墨
    assert (far["figures"]["exif_lat"], far["figures"]["claimed_lat"]) == (pytest.approx(20.0), 36.39)
    assert (body["facts"]["latitude"], body["facts"]["longitude"]) == (
        pytest.approx(20.0),
        pytest.approx(125.0),
    )
    assert await count_rows(Photo) == 1
    assert len(stored_objects()) == 4


# Flag checks below do not touch the store: one combination is enough.
one_combination = [
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.parametrize("store_kind", ["local"], indirect=True),
]


@one_combination[0]
@one_combination[1]
async def test_photo_without_exif_is_flagged_exif_missing(client: httpx.AsyncClient, auth: Auth) -> None:
    body = await uploaded(client, auth("citizen", VILLAGE), _sample())
    assert body["facts"] == {
        "has_exif": False,
        "taken_at": None,
        "latitude": None,
        "longitude": None,
        "camera_make": None,
        "camera_model": None,
        "orientation": None,
    }
    assert set(flags(body)) == {"exif_missing"}


@one_combination[0]
@one_combination[1]
@pytest.mark.parametrize(
    ("offset", "code", "figure", "hours"),
    [
        (timedelta(days=2), "taken_in_future", "hours_ahead", 48),
        (-timedelta(days=10), "taken_long_before_upload", "age_hours", 240),
    ],
)
async def test_capture_time_far_from_the_upload_is_flagged_in_hours(
    client: httpx.AsyncClient,
    auth: Auth,
    offset: timedelta,
    code: str,
    figure: str,
    hours: float,
) -> None:
    taken = (datetime.now(CHINA_TIME) + offset).replace(microsecond=0)
    data = jpeg(640, 480, seed=14, exif=exif_block(taken_at=taken))
    body = await uploaded(client, auth("village", VILLAGE), data)
    assert set(flags(body)) == {code}
    assert flags(body)[code]["figures"][figure] == pytest.approx(hours, abs=0.1)
    assert datetime.fromisoformat(body["facts"]["taken_at"]) == taken


@one_combination[0]
@one_combination[1]
async def test_capture_time_far_from_the_claimed_time_is_flagged(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    taken = datetime.now(CHINA_TIME).replace(microsecond=0) - timedelta(hours=1)
    data = jpeg(640, 480, seed=15, exif=exif_block(taken_at=taken))
    claimed = (taken + timedelta(hours=5)).isoformat()
    body = await uploaded(client, auth("village", VILLAGE), data, taken_at=claimed)
    assert set(flags(body)) == {"claimed_time_mismatch"}
    assert flags(body)["claimed_time_mismatch"]["figures"]["hours_apart"] == pytest.approx(5)
    assert datetime.fromisoformat(body["claims"]["taken_at"]) == taken + timedelta(hours=5)


async def test_json_routes_under_photos_keep_the_1_mib_json_limit(
    client: httpx.AsyncClient, auth: Auth, stored_objects: Callable[[], list[str]]
) -> None:
    """Only the upload itself may be 20 MB; a 2 MB redaction request is refused before it is read."""
    photo = await uploaded(client, auth("village", VILLAGE), _sample())
    objects = stored_objects()
    box = {"x": 1, "y": 1, "width": 1, "height": 1}
    huge = json.dumps({"boxes": [box] * 40_000}).encode()
    assert len(huge) > 1_048_576 * 1.5
    officer = auth("officer", TOWN)
    r = await client.post(
        f"/v1/photos/{photo['id']}/redactions",
        headers={**officer, "content-type": "application/json"},
        content=huge,
    )
    assert_problem(r, 413, "payload_too_large")
    assert stored_objects() == objects
    assert (await client.get(f"/v1/photos/{photo['id']}", headers=officer)).json()["redacted"] is False
