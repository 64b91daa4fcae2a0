"""What a crash leaves is swept (issue 7).

`kill -9` of the media service while it takes in a photo leaves the spooled request body in `DATA/tmp/`
and, later in the request, content objects (originals/, thumbs/, display/, features/) with no row. The
sweeper removes spooled files older than `SPOOL_GRACE_SECONDS` (at start and with the slots) and content
objects older than `ORPHAN_GRACE_SECONDS` that no `contents` row names and no photo shows; it keeps
everything a photo shows, and counts what it removed in `media_swept_total`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from sqlmodel import col

from services.kit.db import utcnow
from services.media.app import sweep_orphan_contents
from services.media.deps import MediaState
from services.media.photos import keys
from services.media.photos.models import Content
from services.media.settings import MediaSettings
from tests.media.api import uploaded
from tests.media.images import jpeg
from tests.support.builders import VILLAGE

Auth = Callable[..., dict[str, str]]
HOUR = 3600


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if getattr(request, "param", None) == "sweeping":  # the app's own sweeper every 50 ms, no orphan grace
        return {
            "sweep_interval_seconds": 0.05,
            "orphan_sweep_interval_seconds": 0.05,
            "orphan_grace_seconds": 0,
            "spool_grace_seconds": 2,
        }
    return {}


def _spool(settings: MediaSettings, name: str, age_seconds: float) -> Path:
    folder = settings.spool_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"\xff\xd8\xff" + os.urandom(1000))
    written = time.time() - age_seconds
    os.utime(path, (written, written))
    return path


@pytest.fixture
def crashed_spool(settings: MediaSettings) -> tuple[Path, Path]:
    """Spooled bodies in the data folder before the app starts: one of a crash hours ago, one just now."""
    return _spool(settings, "up-crashed", 2 * HOUR), _spool(settings, "up-recent", 10)


async def _orphan(media_state: MediaState, seed: bytes) -> str:
    """The objects an upload stores before its commit, for bytes no row or photo knows of."""
    sha = hashlib.sha256(seed).hexdigest()
    for key in keys.content_keys(sha):
        await media_state.store.put_bytes(key, b"left by a crash", "application/octet-stream")
    return sha


async def test_spooled_files_older_than_the_grace_are_removed_at_start(
    crashed_spool: tuple[Path, Path], media_state: MediaState
) -> None:
    crashed, recent = crashed_spool
    assert not crashed.exists()
    assert recent.exists()  # a request of another process may still be reading it
    assert media_state.swept["spool_files"] == 1


async def test_unreferenced_content_objects_are_removed_after_the_grace_and_shown_ones_kept(
    client: httpx.AsyncClient,
    auth: Auth,
    media_state: MediaState,
    stored_objects: Callable[[], list[str]],
) -> None:
    shown = await uploaded(client, auth("village", VILLAGE), jpeg(320, 240, seed=101))
    rowless = await uploaded(client, auth("village", VILLAGE), jpeg(320, 240, seed=102))
    async with media_state.database.transaction() as session:  # shown by a photo, but its row is gone
        await session.execute(delete(Content).where(col(Content.sha256) == rowless["sha256"]))
    orphan = await _orphan(media_state, b"crash")
    kept = sorted(keys.content_keys(shown["sha256"]) + keys.content_keys(rowless["sha256"]))
    assert stored_objects() == sorted(kept + keys.content_keys(orphan))

    assert await sweep_orphan_contents(media_state) == 0  # within the grace: an upload may be under way
    assert stored_objects() == sorted(kept + keys.content_keys(orphan))

    later = utcnow() + timedelta(seconds=media_state.settings.orphan_grace_seconds + 60)
    assert await sweep_orphan_contents(media_state, now=later) == 1

    assert stored_objects() == kept
    async with media_state.database.sessionmaker() as session:
        rows = set((await session.execute(Content.__table__.select())).scalars())
    assert rows == {shown["sha256"], rowless["sha256"]}  # the shown content has its row back
    assert media_state.swept["orphan_contents"] == 1
    # The photos still serve their bytes.
    for photo in (shown, rowless):
        r = await client.get(f"/v1/photos/{photo['id']}/content", headers=auth("village", VILLAGE))
        assert r.status_code == 307


@pytest.mark.parametrize("overrides", ["sweeping"], indirect=True)
async def test_the_apps_own_sweeper_removes_leftovers_and_counts_them(
    client: httpx.AsyncClient,
    auth: Auth,
    media_state: MediaState,
    settings: MediaSettings,
    stored_objects: Callable[[], list[str]],
) -> None:
    shown = await uploaded(client, auth("village", VILLAGE), jpeg(320, 240, seed=103))
    orphan = await _orphan(media_state, b"another crash")
    spooled = _spool(settings, "in-crashed", 5)

    for _ in range(200):  # up to 10 s; the sweeper comes by every 50 ms
        counted = media_state.swept["orphan_contents"] and media_state.swept["spool_files"]
        if counted and not spooled.exists() and len(stored_objects()) == 4:  # counted once a pass is done
            break
        await asyncio.sleep(0.05)

    assert not spooled.exists()
    assert stored_objects() == sorted(keys.content_keys(shown["sha256"]))
    assert not set(keys.content_keys(orphan)) & set(stored_objects())
    exposed = (await client.get("/metrics")).text
    assert 'media_swept_total{kind="orphan_contents",service="media"} 1.0' in exposed
    assert 'media_swept_total{kind="spool_files",service="media"} 1.0' in exposed


async def test_stores_list_objects_in_pages_with_their_times(media_state: MediaState) -> None:
    store = media_state.store
    for name in ("a", "b", "c", "d"):
        await store.put_bytes(f"thumbs/zz/{name}.jpg", b"x", "image/jpeg")
    await store.put_bytes("display/zz/a.jpg", b"x", "image/jpeg")

    first = await store.list_objects("thumbs/", limit=3)
    rest = await store.list_objects("thumbs/", start_after=first[-1].key, limit=3)

    assert [o.key for o in first] == ["thumbs/zz/a.jpg", "thumbs/zz/b.jpg", "thumbs/zz/c.jpg"]
    assert [o.key for o in rest] == ["thumbs/zz/d.jpg"]
    for info in first + rest:
        assert info.size == 1
        assert info.modified is not None
        assert abs((utcnow() - info.modified).total_seconds()) < 60
    assert await store.list_objects("originals/") == []
