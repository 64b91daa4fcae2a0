"""Presigned uploads: open a slot, send the bytes straight to the store, complete; refusals, expiry, sweeping.

On the local store the slot's links point at the media service itself (sent through `client`); on S3
they point at moto's public endpoint (sent with a plain HTTP client). moto checks neither signatures nor
expiry nor POST policies, so the S3-only tests assert what we issue.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from services.kit.db import utcnow
from services.kit.identity import Subject
from services.media.app import build_store
from services.media.deps import MediaState
from services.media.photos import keys
from services.media.photos.models import Photo
from services.media.settings import MediaSettings
from services.media.storage import local as local_store
from services.media.uploads.models import Upload
from services.media.uploads.service import sweep_expired
from tests.media.api import (
    LOCAL_BASE,
    complete,
    flags,
    open_slot,
    put_bytes,
    spooled,
    unreachable_store,
    uploaded,
)
from tests.media.images import jpeg
from tests.media.s3_server import ACCESS_KEY, REGION, S3Server
from tests.support.builders import NEIGHBOUR, VILLAGE
from tests.support.problems import assert_problem
from tests.support.tokens import subject_for

Auth = Callable[..., dict[str, str]]
SMALL_LIMIT = 200_000


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """`small_limit`: photos (and presigned objects) of at most 200 kB; `sweeping`: the app's own sweeper
    runs every 50 ms with no grace."""
    wanted = getattr(request, "param", None)
    if wanted == "small_limit":
        return {"max_upload_bytes": SMALL_LIMIT}
    if wanted == "sweeping":
        return {"sweep_interval_seconds": 0.05, "sweep_grace_seconds": 0}
    return {}


@functools.cache
def _sample(seed: int = 21) -> bytes:
    return jpeg(640, 480, seed=seed)


async def post_form(client: httpx.AsyncClient, post: dict[str, Any], data: bytes) -> httpx.Response:
    """POST a slot's form fields, a Content-Type field and the file (last), as a browser form upload does."""
    fields = {**post["fields"], "Content-Type": "image/jpeg"}
    files = {"file": ("photo.jpg", data, "image/jpeg")}
    if post["url"].startswith(LOCAL_BASE):
        return await client.post(post["url"], data=fields, files=files)
    async with httpx.AsyncClient(timeout=10) as plain:
        return await plain.post(post["url"], data=fields, files=files)


async def test_presigned_put_then_complete_takes_the_photo_in_like_multipart(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    settings: MediaSettings,
) -> None:
    village = auth("village", VILLAGE)
    data = _sample()
    opened_at = datetime.now(UTC)
    slot = await open_slot(client, village, purpose="after", latitude=36.39, longitude=120.45)
    assert slot["status"] == "pending"
    assert slot["photo_id"] is None
    assert slot["max_bytes"] == settings.max_upload_bytes
    expires_at = datetime.fromisoformat(slot["expires_at"])
    expected = opened_at + timedelta(seconds=settings.upload_url_seconds)
    assert abs((expires_at - expected).total_seconds()) < 5
    assert (
        slot["put_url"] and slot["post"]["url"] and slot["post"]["fields"]["key"] == f"incoming/{slot['id']}"
    )

    sent = await put_bytes(client, slot["put_url"], data)
    assert sent.status_code in (200, 201), sent.text
    assert stored_objects() == [f"incoming/{slot['id']}"]

    r = await complete(client, village, slot["id"])
    assert r.status_code == 201, r.text
    photo = r.json()
    assert r.headers["location"] == f"/v1/photos/{photo['id']}"
    sha = hashlib.sha256(data).hexdigest()
    assert (photo["sha256"], photo["mime"], photo["size_bytes"]) == (sha, "image/jpeg", len(data))
    assert (photo["width"], photo["height"], photo["purpose"]) == (640, 480, "after")
    assert (photo["claims"]["latitude"], photo["claims"]["longitude"]) == (36.39, 120.45)
    assert (photo["uploader"], photo["region_code"]) == (str(subject_for("village", VILLAGE)), VILLAGE)
    assert set(flags(photo)) == {"exif_missing"}
    # The incoming object is gone; the content is stored by its hash, as a multipart upload stores it.
    assert stored_objects() == sorted(keys.content_keys(sha))
    assert await count_rows(Photo) == 1
    assert (
        await count_rows(Upload, col(Upload.status) == "completed", col(Upload.photo_id) == photo["id"]) == 1
    )
    assert spooled(settings.data_dir) == []

    # Same shape as a multipart upload's answer (of other bytes, so no reuse flag differs in kind).
    multipart = await uploaded(client, village, _sample(22))
    assert set(multipart) == set(photo)
    assert set(multipart["facts"]) == set(photo["facts"])
    assert set(multipart["urls"]) == set(photo["urls"])

    # Completing again answers the same photo and stores nothing more.
    again = await complete(client, village, slot["id"])
    assert again.status_code == 201, again.text
    assert again.json()["id"] == photo["id"]
    assert await count_rows(Photo) == 2
    seen = await client.get(f"/v1/uploads/{slot['id']}", headers=village)
    assert seen.status_code == 200
    assert (seen.json()["status"], seen.json()["photo_id"], seen.json()["put_url"]) == (
        "completed",
        photo["id"],
        None,
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_presigned_post_form_then_complete_takes_the_photo_in(
    client: httpx.AsyncClient, auth: Auth, stored_objects: Callable[[], list[str]]
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village, purpose="before")
    sent = await post_form(client, slot["post"], _sample())
    assert sent.status_code in (200, 201, 204), sent.text
    assert stored_objects() == [f"incoming/{slot['id']}"]
    r = await complete(client, village, slot["id"])
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(_sample()).hexdigest()
    assert f"incoming/{slot['id']}" not in stored_objects()


async def test_completing_before_the_bytes_arrive_is_refused_upload_missing(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    settings: MediaSettings,
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    assert_problem(await complete(client, village, slot["id"]), 400, "upload_missing")
    assert await count_rows(Photo) == 0
    assert await count_rows(Upload, col(Upload.status) == "pending") == 1
    assert stored_objects() == []
    assert spooled(settings.data_dir) == []


async def test_someone_elses_upload_is_not_found(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    slot = await open_slot(client, auth("village", VILLAGE))
    await put_bytes(client, slot["put_url"], _sample())
    # Even a cadre of the same village, or the town officer above it, may not complete another's slot.
    for other in (
        auth("village", VILLAGE, subject=Subject.user(1004)),
        auth("officer", "370282103"),
        auth("village", NEIGHBOUR),  # another village, and another town: outside the region
        auth("officer", "370282104"),
    ):
        assert_problem(await complete(client, other, slot["id"]), 404, "upload_not_found")
        r = await client.get(f"/v1/uploads/{slot['id']}", headers=other)
        assert_problem(r, 404, "upload_not_found")
    assert_problem(await complete(client, auth("village", NEIGHBOUR), "f" * 32), 404, "upload_not_found")
    assert await count_rows(Photo) == 0
    assert stored_objects() == [f"incoming/{slot['id']}"]


async def test_refused_image_through_a_slot_leaves_no_photo_and_no_object(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    settings: MediaSettings,
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    await put_bytes(client, slot["put_url"], "这不是照片\n".encode() * 40)
    assert stored_objects() == [f"incoming/{slot['id']}"]
    body = assert_problem(await complete(client, village, slot["id"]), 415, "not_an_image")
    assert body["upload_id"] == slot["id"]
    assert await count_rows(Photo) == 0
    assert stored_objects() == []
    assert spooled(settings.data_dir) == []
    state = await client.get(f"/v1/uploads/{slot['id']}", headers=village)
    assert state.json()["status"] == "refused"
    assert state.json()["put_url"] is None
    assert_problem(await complete(client, village, slot["id"]), 409, "upload_refused")


@pytest.mark.parametrize("overrides", ["small_limit"], indirect=True)
async def test_object_over_the_size_limit_never_becomes_a_photo(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
    store_kind: str,
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    big = _sample() + bytes(300_000 - len(_sample()))
    sent = await put_bytes(client, slot["put_url"], big)
    if store_kind == "local":
        # The service receives the bytes itself and stops at the limit.
        assert_problem(sent, 413, "payload_too_large")
        assert_problem(await complete(client, village, slot["id"]), 400, "upload_missing")
    else:
        # S3 cannot bind a size to a presigned PUT: completion refuses while reading the object back.
        assert sent.status_code == 200
        assert_problem(await complete(client, village, slot["id"]), 413, "payload_too_large")
    assert await count_rows(Photo) == 0
    assert stored_objects() == []


async def expire(media_state: MediaState, upload_id: str, ago: float | None = None) -> None:
    """Let the slot's expiry lie `ago` seconds back (default: past the sweeper's grace)."""
    grace = media_state.settings.sweep_grace_seconds
    async with media_state.database.transaction() as session:
        await session.execute(
            update(Upload)
            .where(col(Upload.id) == upload_id)
            .values(expires_at=utcnow() - timedelta(seconds=grace + 5 if ago is None else ago))
        )


async def test_expired_slot_is_refused_410_and_swept_with_its_object(
    client: httpx.AsyncClient,
    media_state: MediaState,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    village = auth("village", VILLAGE)
    stale = await open_slot(client, village)
    fresh = await open_slot(client, village)
    never_sent = await open_slot(client, village)
    just_expired = await open_slot(client, village)
    for slot in (stale, fresh, just_expired):
        await put_bytes(client, slot["put_url"], _sample())
    await expire(media_state, stale["id"])
    await expire(media_state, never_sent["id"])
    await expire(media_state, just_expired["id"], ago=5)  # its last bytes may still be arriving

    for slot in (stale, just_expired):
        assert_problem(await complete(client, village, slot["id"]), 410, "upload_expired")
        seen = (await client.get(f"/v1/uploads/{slot['id']}", headers=village)).json()
        assert (seen["status"], seen["put_url"], seen["post"]) == ("expired", None, None)
    assert await count_rows(Photo) == 0

    async with media_state.database.transaction() as session:
        assert await sweep_expired(session, media_state.intake) == 2
    assert stored_objects() == sorted([f"incoming/{fresh['id']}", f"incoming/{just_expired['id']}"])
    async with media_state.database.sessionmaker() as session:
        statuses = {
            i: s for i, s in (await session.execute(select(col(Upload.id), col(Upload.status)))).all()
        }
    assert statuses == {
        stale["id"]: "expired",
        fresh["id"]: "pending",
        never_sent["id"]: "expired",
        just_expired["id"]: "pending",  # swept once the grace has passed
    }
    # Swept or not, an expired slot answers the same.
    assert_problem(await complete(client, village, stale["id"]), 410, "upload_expired")
    seen = (await client.get(f"/v1/uploads/{stale['id']}", headers=village)).json()
    assert (seen["status"], seen["put_url"], seen["post"]) == ("expired", None, None)
    # Sweeping again finds nothing; the fresh slot still completes.
    async with media_state.database.transaction() as session:
        assert await sweep_expired(session, media_state.intake) == 0
    assert (await complete(client, village, fresh["id"])).status_code == 201


async def test_opening_a_slot_checks_the_claims_and_the_token(
    client: httpx.AsyncClient, auth: Auth, count_rows: Any
) -> None:
    village = auth("village", VILLAGE)
    for body in ({"latitude": 36.39}, {"latitude": 95, "longitude": 120.45}, {"purpose": "selfie"}):
        r = await client.post("/v1/uploads", headers=village, json=body)
        assert_problem(r, 422, "validation_failed")
    assert_problem(await client.post("/v1/uploads", json={}), 401, "missing_token")
    r = await client.post("/v1/uploads", headers=auth("viewer", "370282"), json={})
    assert_problem(r, 403, "insufficient_scope")
    assert await count_rows(Upload) == 0


# ---- what we issue for S3 -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["s3"], indirect=True)
async def test_s3_slot_urls_are_signed_for_the_public_endpoint_key_and_expiry(
    client: httpx.AsyncClient,
    auth: Auth,
    settings: MediaSettings,
    s3_server: S3Server,
) -> None:
    slot = await open_slot(client, auth("village", VILLAGE))
    key = f"incoming/{slot['id']}"
    bucket = settings.s3_bucket
    seconds = settings.upload_url_seconds

    put = urlsplit(slot["put_url"])
    query = {k: v[0] for k, v in parse_qs(put.query).items()}
    assert (put.scheme, put.netloc, put.path) == ("http", s3_server.public_endpoint, f"/{bucket}/{key}")
    assert s3_server.public_endpoint != settings.s3_endpoint  # signed for the public name
    assert seconds - 5 <= int(query["X-Amz-Expires"]) <= seconds
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/s3/aws4_request")
    assert query["X-Amz-SignedHeaders"] == "host"
    assert len(query["X-Amz-Signature"]) == 64

    post = slot["post"]
    assert post["url"] == f"http://{s3_server.public_endpoint}/{bucket}"
    fields = post["fields"]
    assert fields["key"] == key
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["x-amz-credential"].startswith(f"{ACCESS_KEY}/")
    assert len(fields["x-amz-signature"]) == 64
    policy = json.loads(base64.b64decode(fields["policy"]))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert abs((expiration - datetime.fromisoformat(slot["expires_at"])).total_seconds()) < 5
    conditions = policy["conditions"]
    assert ["eq", "$key", key] in conditions
    assert ["eq", "$bucket", bucket] in conditions
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    assert ["content-length-range", 1, settings.max_upload_bytes] in conditions


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
async def test_local_slot_links_are_signed_and_refuse_tampering(
    client: httpx.AsyncClient, auth: Auth, stored_objects: Callable[[], list[str]]
) -> None:
    slot = await open_slot(client, auth("village", VILLAGE))
    put = urlsplit(slot["put_url"])
    assert (put.scheme, put.netloc, put.path) == (
        "http",
        "media.test",
        f"/v1/media/objects/incoming/{slot['id']}",
    )
    policy = json.loads(base64.b64decode(slot["post"]["fields"]["policy"]))
    assert ["eq", "$key", f"incoming/{slot['id']}"] in policy["conditions"]
    # The signature covers the key: the same link cannot write anywhere else.
    elsewhere = slot["put_url"].replace(f"incoming/{slot['id']}", "originals/ab/cd/" + "ab" * 32)
    assert_problem(await put_bytes(client, elsewhere, _sample()), 403, "bad_signature")
    assert stored_objects() == []


async def test_store_down_at_completion_answers_503_keeps_no_photo_and_the_slot_for_a_retry(
    media_state: MediaState,
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    settings: MediaSettings,
    tmp_path: Path,
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    await put_bytes(client, slot["put_url"], _sample(23))
    down = build_store(settings.model_copy(update=unreachable_store(tmp_path)))
    intake = media_state.intake
    working, intake.store = intake.store, down
    try:
        r = await complete(client, village, slot["id"])
    finally:
        intake.store = working

    assert_problem(r, 503, "store_unavailable")
    assert int(r.headers["retry-after"]) > 0
    assert await count_rows(Photo) == 0
    assert spooled(settings.data_dir) == []
    state = await client.get(f"/v1/uploads/{slot['id']}", headers=village)
    assert state.json()["status"] == "pending"  # not refused: the client may simply try again

    retried = await complete(client, village, slot["id"])
    assert retried.status_code == 201, retried.text
    assert await count_rows(Photo) == 1


@pytest.mark.parametrize("overrides", ["sweeping"], indirect=True)
async def test_the_running_service_sweeps_expired_slots_by_itself(
    client: httpx.AsyncClient,
    media_state: MediaState,
    auth: Auth,
    stored_objects: Callable[[], list[str]],
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    await put_bytes(client, slot["put_url"], _sample())
    assert stored_objects() == [f"incoming/{slot['id']}"]
    await expire(media_state, slot["id"], ago=1)
    for _ in range(100):  # up to 5 s; the sweeper comes by every 50 ms
        if not stored_objects():
            break
        await asyncio.sleep(0.05)
    assert stored_objects() == []
    seen = (await client.get(f"/v1/uploads/{slot['id']}", headers=village)).json()
    assert seen["status"] == "expired"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
async def test_local_slot_links_are_refused_once_expired(
    client: httpx.AsyncClient,
    auth: Auth,
    stored_objects: Callable[[], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slot = await open_slot(client, auth("village", VILLAGE))
    lifetime = (datetime.fromisoformat(slot["expires_at"]) - datetime.now(UTC)).total_seconds()
    later = time.time() + lifetime + 60
    monkeypatch.setattr(local_store, "time", SimpleNamespace(time=lambda: later))

    assert_problem(await put_bytes(client, slot["put_url"], _sample()), 403, "link_expired")
    assert_problem(await post_form(client, slot["post"], _sample()), 403, "link_expired")
    assert stored_objects() == []


async def test_a_slot_in_its_last_second_reads_as_expired_without_links(
    client: httpx.AsyncClient, media_state: MediaState, auth: Auth
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    await expire(media_state, slot["id"], ago=-0.5)  # half a second left: no link can be signed for that

    r = await client.get(f"/v1/uploads/{slot['id']}", headers=village)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["put_url"], r.json()["post"]) == ("expired", None, None)
    # ...and completing it is refused like any expired slot: what the slot says is what completion does.
    assert_problem(await complete(client, village, slot["id"]), 410, "upload_expired")
