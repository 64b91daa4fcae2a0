"""Reuse detection through the API: a picture used again in the same county is flagged and listed as similar.

The detector itself is tested in depth on its own; here a few representative kinds of reuse go through
the whole upload path. Photo-like scenes come from tests/media/photos.py. Reuse does not depend on the
object store, so these run on the local one, but the lookup is SQL of its own on PostgreSQL: both databases.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select, update
from sqlmodel import col

from services.media.deps import MediaState
from services.media.photos.models import Photo, PhotoHash
from services.media.photos.service import MAX_REUSE_FLAGS
from tests.media import photos
from tests.media.api import flags, uploaded
from tests.media.test_reuse_smooth import sky
from tests.support.builders import COUNTY, FAR_VILLAGE, REGION_PATHS, VILLAGE

Auth = Callable[..., dict[str, str]]

pytestmark = pytest.mark.parametrize("store_kind", ["local"], indirect=True)

SIZE = (1280, 960)
SCENE = 101
COUNTY_SCOPE = REGION_PATHS[COUNTY]


def _bytes(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


@functools.cache
def _original(seed: int = SCENE) -> Image.Image:
    return photos.camera(seed, SIZE)


@functools.cache
def _original_bytes(seed: int = SCENE) -> bytes:
    return _bytes(_original(seed))


async def _similar(client: httpx.AsyncClient, headers: dict[str, str], photo_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/photos/{photo_id}/similar", headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.parametrize(
    "kind", ["wechat", "mirror", "screenshot", "crop_left_15", "rotate_3_crop", "brighter_15", "resize_50"]
)
async def test_reused_picture_from_another_user_in_the_county_is_flagged_and_listed(
    client: httpx.AsyncClient, auth: Auth, kind: str
) -> None:
    first = await uploaded(client, auth("village", VILLAGE), _original_bytes(), purpose="after")
    reused_img = photos.REUSE_KINDS[kind](_original())
    data = _bytes(reused_img, "PNG" if kind == "screenshot" else "JPEG")
    other_town = auth("village", FAR_VILLAGE)
    second = await uploaded(client, other_town, data, purpose="after")

    assert "reused" not in flags(first)
    flag = flags(second).get("reused")
    assert flag is not None, f"{kind} not flagged: {second['flags']}"
    figures = flag["figures"]
    # The first photo lies outside the other town's region: the flag says a match exists, not which.
    assert figures["elsewhere"] is True and "other_photo_id" not in figures
    assert first["id"] not in flag["detail"]
    assert figures["exact"] is False
    assert figures["mirrored"] is (kind == "mirror")
    assert 0 < figures["score"] <= 1

    # County staff see the match from both sides, with the same figures as the flag.
    inspector = auth("inspector", COUNTY)
    listed = await _similar(client, inspector, second["id"])
    assert [(m["photo_id"], m["score"], m["mirrored"], m["exact"]) for m in listed] == [
        (first["id"], figures["score"], figures["mirrored"], False)
    ]
    assert listed[0]["inliers"] == figures["inliers"]
    assert [m["photo_id"] for m in await _similar(client, inspector, first["id"])] == [second["id"]]
    # The uploader in the other town is told of the match but cannot browse the first photo.
    assert await _similar(client, other_town, second["id"]) == []


async def test_byte_identical_reuse_is_listed_as_exact(client: httpx.AsyncClient, auth: Auth) -> None:
    first = await uploaded(client, auth("village", VILLAGE), _original_bytes())
    second = await uploaded(client, auth("village", FAR_VILLAGE), _original_bytes())
    listed = await _similar(client, auth("admin", COUNTY), second["id"])
    assert [(m["photo_id"], m["exact"], m["score"]) for m in listed] == [(first["id"], True, 1.0)]


async def test_different_scenes_are_not_flagged_even_when_alike(
    client: httpx.AsyncClient, auth: Auth, count_rows: Any
) -> None:
    village = auth("village", VILLAGE)
    first = await uploaded(client, village, _original_bytes(), purpose="before")
    honest = {
        "another scene": photos.camera(SCENE + 1, SIZE),
        "same kind of place": photos.jpeg(photos.scene(SCENE + 2, SIZE, style=photos.style_of(SCENE)), 92),
        "same place photographed again": photos.jpeg(photos.reshot(SCENE, SIZE), 92),
        "same printed sign": photos.with_sign(photos.camera(SCENE + 3, SIZE), 7, place_seed=1),
    }
    for name, img in honest.items():
        body = await uploaded(client, auth("village", FAR_VILLAGE), _bytes(img), purpose="after")
        assert "reused" not in flags(body), f"{name} accused: {body['flags']}"
        assert await _similar(client, auth("admin", COUNTY), body["id"]) == []
    assert await _similar(client, auth("admin", COUNTY), first["id"]) == []
    assert await count_rows(Photo) == 1 + len(honest)


async def test_reuse_is_looked_for_in_the_county_archive_only(
    client: httpx.AsyncClient, media_state: MediaState, auth: Auth
) -> None:
    first = await uploaded(client, auth("village", VILLAGE), _original_bytes())
    async with media_state.database.sessionmaker() as session:
        scopes = (await session.execute(select(col(Photo.reuse_scope)))).scalars().all()
        hash_scopes = set((await session.execute(select(col(PhotoHash.reuse_scope)))).scalars().all())
    assert list(scopes) == [COUNTY_SCOPE] and hash_scopes == {COUNTY_SCOPE}

    # The demo tree has one county: move the first photo's archive to a neighbouring county (城阳区).
    neighbour = "/37/3702/370214/"
    async with media_state.database.transaction() as session:
        await session.execute(update(Photo).where(col(Photo.id) == first["id"]).values(reuse_scope=neighbour))
        await session.execute(
            update(PhotoHash).where(col(PhotoHash.photo_id) == first["id"]).values(reuse_scope=neighbour)
        )
    # Neither a WeChat copy nor the very same bytes point at the photo of the other county (the second
    # upload does match the first, which is in this county).
    for data in (_bytes(photos.REUSE_KINDS["wechat"](_original())), _original_bytes()):
        body = await uploaded(client, auth("village", FAR_VILLAGE), data)
        named = [f["figures"]["other_photo_id"] for f in body["flags"] if f["code"] == "reused"]
        assert first["id"] not in named, body["flags"]


async def test_the_earliest_photo_and_photos_on_an_issue_come_first_however_many_match(
    client: httpx.AsyncClient, media_state: MediaState, auth: Auth
) -> None:
    village = auth("village", VILLAGE)
    first = await uploaded(client, village, _original_bytes())
    copies = [
        await uploaded(client, village, _bytes(photos.jpeg(_original(), quality)))
        for quality in (95, 88, 80, 72, 65)
    ]
    # One copy is already evidence on an issue (the issues service attached it).
    async with media_state.database.transaction() as session:
        await session.execute(
            update(Photo).where(col(Photo.id) == copies[3]["id"]).values(issue_id="issue-1")
        )
    last = await uploaded(client, village, _bytes(photos.REUSE_KINDS["wechat"](_original())))

    reused = [f["figures"] for f in last["flags"] if f["code"] == "reused"]
    assert len(reused) == MAX_REUSE_FLAGS  # six photos match; the answer names five ...
    assert reused[0]["other_photo_id"] == first["id"] and reused[0]["earliest"] is True  # ... the first first
    assert reused[1]["other_photo_id"] == copies[3]["id"] and reused[1]["attached"] is True
    assert not any(f["earliest"] for f in reused[1:]) and not any(f["attached"] for f in reused[2:])
    assert {f["group_size"] for f in reused} == {6}
    # Every match is kept for /similar, not only those the answer names.
    listed = await _similar(client, auth("inspector", COUNTY), last["id"])
    assert {m["photo_id"] for m in listed} == {first["id"], *(c["id"] for c in copies)}


async def test_a_smooth_picture_reused_is_flagged_and_another_of_its_kind_is_not(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    village = auth("village", VILLAGE)
    first = await uploaded(client, village, _bytes(sky(1)), purpose="after")
    copy = await uploaded(
        client, auth("village", FAR_VILLAGE), _bytes(photos.wechat(sky(1))), purpose="after"
    )
    flag = flags(copy).get("reused")
    assert flag is not None, copy["flags"]
    assert flag["figures"]["elsewhere"] is True and flag["figures"]["earliest"] is True
    assert flag["figures"]["inliers"] == 0  # confirmed without corners
    other_sky = await uploaded(client, village, _bytes(sky(2)), purpose="after")
    assert "reused" not in flags(other_sky), other_sky["flags"]
    assert [m["photo_id"] for m in await _similar(client, auth("admin", COUNTY), copy["id"])] == [first["id"]]
