"""Reading photos: metadata, batches and signed content links, all filtered by the caller's region.

Scope is a database question (both databases, local store); content links are a store question (both
stores, SQLite).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.kit.identity import Subject
from services.media.photos import keys
from services.media.photos.models import Photo
from services.media.settings import MediaSettings
from services.media.storage import sign_local
from tests.media.api import ATTACHER, follow, picture, uploaded, variant
from tests.media.images import encode, exif_block, jpeg, photo_like
from tests.media.s3_server import S3Server
from tests.support.builders import COUNTY, FAR_VILLAGE, NEIGHBOUR, OTHER_TOWN, TOWN, VILLAGE
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]

local_store = pytest.mark.parametrize("store_kind", ["local"], indirect=True)
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@functools.cache
def _sample(seed: int) -> bytes:
    return jpeg(640, 480, seed=seed)


@local_store
async def test_uploader_reads_the_photo_as_it_was_answered(client: httpx.AsyncClient, auth: Auth) -> None:
    village = auth("village", VILLAGE)
    body = await uploaded(client, village, _sample(31), purpose="before")
    r = await client.get(f"/v1/photos/{body['id']}", headers=village)
    assert r.status_code == 200, r.text
    assert r.json() == body
    assert_problem(await client.get(f"/v1/photos/{body['id']}"), 401, "missing_token")
    assert_problem(await client.get("/v1/photos/" + "0" * 32, headers=village), 404, "photo_not_found")


@local_store
async def test_another_village_gets_404_on_every_photo_route(
    client: httpx.AsyncClient,
    auth: Auth,
    count_rows: Any,
    stored_objects: Callable[[], list[str]],
) -> None:
    photo = await uploaded(client, auth("village", VILLAGE), _sample(32))
    objects = stored_objects()
    base = f"/v1/photos/{photo['id']}"
    box = {"boxes": [{"x": 0, "y": 0, "width": 10, "height": 10}]}
    for headers in (auth("village", NEIGHBOUR), auth("officer", OTHER_TOWN)):
        for method, path, extra in (
            ("GET", base, {}),
            ("GET", f"{base}/content?variant=thumb", {}),
            ("GET", f"{base}/content?variant=display", {}),
            ("GET", f"{base}/content?variant=original", {}),
            ("GET", f"{base}/similar", {}),
            ("DELETE", base, {}),
            ("POST", f"{base}/redactions", {"json": box}),
        ):
            r = await client.request(method, path, headers=headers, **extra)
            assert (r.status_code, r.json()["code"]) == (404, "photo_not_found"), f"{method} {path}: {r.text}"
        batch = await client.get("/v1/photos", params={"ids": photo["id"]}, headers=headers)
        assert batch.json() == {"items": [], "missing": [photo["id"]]}
    assert await count_rows(Photo) == 1
    assert stored_objects() == objects


@local_store
async def test_town_and_county_staff_see_their_villages_photos_and_no_others(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    photo = await uploaded(client, auth("village", VILLAGE), _sample(33))
    path = f"/v1/photos/{photo['id']}"
    for role, region in (("officer", TOWN), ("admin", COUNTY), ("inspector", COUNTY), ("viewer", COUNTY)):
        r = await client.get(path, headers=auth(role, region))
        assert r.status_code == 200, f"{role} {region}: {r.text}"
    for role, region in (("officer", OTHER_TOWN), ("village", FAR_VILLAGE), ("grid", "370282104201-W01")):
        r = await client.get(path, headers=auth(role, region))
        assert r.status_code == 404, f"{role} {region}: {r.text}"


@local_store
async def test_citizen_sees_only_its_own_uploads(client: httpx.AsyncClient, auth: Auth) -> None:
    me = auth("citizen", VILLAGE, subject=Subject.user(1001))
    neighbour = auth("citizen", VILLAGE, subject=Subject.user(1002))
    mine = await uploaded(client, me, _sample(34))
    cadres = await uploaded(client, auth("village", VILLAGE), _sample(35))

    assert (await client.get(f"/v1/photos/{mine['id']}", headers=me)).status_code == 200
    assert_problem(await client.get(f"/v1/photos/{mine['id']}", headers=neighbour), 404, "photo_not_found")
    assert_problem(await client.get(f"/v1/photos/{cadres['id']}", headers=me), 404, "photo_not_found")
    batch = await client.get("/v1/photos", params={"ids": f"{mine['id']},{cadres['id']}"}, headers=me)
    assert [p["id"] for p in batch.json()["items"]] == [mine["id"]]
    assert batch.json()["missing"] == [cadres["id"]]
    # The village's cadre sees what its citizens sent.
    r = await client.get(f"/v1/photos/{mine['id']}", headers=auth("village", VILLAGE))
    assert r.status_code == 200


@local_store
async def test_batch_answers_visible_photos_in_order_and_lists_the_rest_as_missing(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    village = auth("village", VILLAGE)
    a = await uploaded(client, village, _sample(36))
    b = await uploaded(client, village, _sample(37))
    c = await uploaded(client, auth("village", NEIGHBOUR), _sample(38))
    unknown = "0" * 32
    ids = f"{b['id']}, {a['id']},{c['id']},{unknown},{b['id']}"
    r = await client.get("/v1/photos", params={"ids": ids}, headers=village)
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["items"]] == [b["id"], a["id"]]
    assert r.json()["items"][1] == a
    assert r.json()["missing"] == [c["id"], unknown]
    # The issues service (a service token for the whole tree) sees all three.
    service = auth(**ATTACHER)
    r = await client.get("/v1/photos", params={"ids": ids}, headers=service)
    assert [p["id"] for p in r.json()["items"]] == [b["id"], a["id"], c["id"]]
    too_many = ",".join(f"{i:032x}" for i in range(101))
    assert_problem(
        await client.get("/v1/photos", params={"ids": too_many}, headers=village), 400, "too_many_ids"
    )
    assert_problem(await client.get("/v1/photos", headers=village), 422, "validation_failed")


# ---- content links ------------------------------------------------------------------------------------


def _no_exif(data: bytes) -> bool:
    img = picture(data)
    return not img.getexif() and "exif" not in img.info and b"Exif\x00\x00" not in data


@sqlite_only
async def test_thumb_and_display_links_serve_upright_jpegs_without_metadata(
    client: httpx.AsyncClient,
    auth: Auth,
    settings: MediaSettings,
    store_kind: str,
    request: pytest.FixtureRequest,
) -> None:
    # Stored 1800x1350 with orientation 6 (turn 90° clockwise to view): upright it is 1350x1800.
    exif = exif_block(orientation=6, gps=(36.39, 120.45), make="Xiaomi", model="14")
    data = encode(photo_like(1800, 1350, seed=39), "JPEG", exif=exif)
    village = auth("village", VILLAGE)
    photo = await uploaded(client, village, data)
    assert (photo["width"], photo["height"], photo["facts"]["orientation"]) == (1800, 1350, 6)
    expected = {"thumb": (240, 320), "display": (1200, 1600)}
    for name, size in expected.items():
        url, got = await variant(client, village, photo["id"], name)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "image/jpeg"
        img = picture(got.content)
        assert (img.format, img.size) == ("JPEG", size)
        assert _no_exif(got.content)
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if store_kind == "local":
            assert (parts.netloc, parts.path.split("/")[1:4]) == ("media.test", ["v1", "media", "objects"])
            assert abs(int(query["exp"]) - (time.time() + settings.download_url_seconds)) < 5
        else:
            server: S3Server = request.getfixturevalue("s3_server")
            assert parts.netloc == server.public_endpoint
            assert parts.path.startswith(f"/{settings.s3_bucket}/")
            assert int(query["X-Amz-Expires"]) == settings.download_url_seconds
            assert query["response-content-type"] == "image/jpeg"
    # The default variant is the display copy.
    r = await client.get(f"/v1/photos/{photo['id']}/content", headers=village)
    assert r.status_code == 307
    assert picture((await follow(client, r.headers["location"])).content).size == (1200, 1600)


@sqlite_only
async def test_original_needs_photos_original_and_is_the_exact_upload(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    data = jpeg(640, 480, seed=40, exif=exif_block(gps=(36.39, 120.45), make="HUAWEI"))
    grid = auth("grid", "370282103201-W01")
    citizen = auth("citizen", VILLAGE)
    by_grid = await uploaded(client, grid, data)
    by_citizen = await uploaded(client, citizen, _sample(41))
    for headers, photo in ((grid, by_grid), (citizen, by_citizen), (auth("village", VILLAGE), by_grid)):
        r = await client.get(f"/v1/photos/{photo['id']}/content?variant=original", headers=headers)
        assert_problem(r, 403, "insufficient_scope")
    officer = auth("officer", TOWN)
    listed = (await client.get(f"/v1/photos/{by_grid['id']}", headers=officer)).json()
    assert listed["urls"]["original"] == f"/v1/photos/{by_grid['id']}/content?variant=original"
    for headers in (officer, auth("viewer", COUNTY)):
        _, got = await variant(client, headers, by_grid["id"], "original")
        assert got.status_code == 200
        assert got.content == data
        assert hashlib.sha256(got.content).hexdigest() == by_grid["sha256"]


@sqlite_only
@local_store
async def test_tampered_or_expired_local_link_is_refused(
    client: httpx.AsyncClient, auth: Auth, settings: MediaSettings
) -> None:
    village = auth("village", VILLAGE)
    photo = await uploaded(client, village, _sample(42))
    url, got = await variant(client, village, photo["id"], "thumb")
    assert got.status_code == 200
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    forged = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert_problem(await client.get(url.replace(sig, forged)), 403, "bad_signature")
    # The thumbnail's signature does not open the original next to it.
    original = url.replace(keys.thumb_key(photo["sha256"]), keys.original_key(photo["sha256"]))
    assert_problem(await client.get(original), 403, "bad_signature")
    # A later expiry needs a new signature.
    exp = parse_qs(urlsplit(url).query)["exp"][0]
    assert_problem(
        await client.get(url.replace(f"exp={exp}", f"exp={int(exp) + 3600}")), 403, "bad_signature"
    )
    # A link signed with our secret but past its expiry.
    key = keys.thumb_key(photo["sha256"])
    past = int(time.time()) - 10
    secret = settings.link_signing_secret.get_secret_value().encode()
    stale = f"http://media.test/v1/media/objects/{key}?exp={past}&ct=image%2Fjpeg&sig=" + sign_local(
        secret, "GET", key, past, content_type="image/jpeg"
    )
    assert_problem(await client.get(stale), 403, "link_expired")
