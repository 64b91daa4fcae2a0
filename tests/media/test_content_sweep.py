"""Stored bytes leave only after the commit, and never while an upload of the same bytes relies on them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import delete
from sqlmodel import col

from services.kit.auth import Caller
from services.kit.db import Database
from services.kit.identity import Role, Subject
from services.media.deps import MediaState
from services.media.photos import contents, keys
from services.media.photos.models import Content, Photo
from services.media.photos.schemas import Claims, Purpose
from services.media.photos.service import Owner
from tests.media.api import VILLAGE, uploaded
from tests.media.images import jpeg
from tests.support.builders import region_path


async def test_a_delete_that_is_rolled_back_keeps_the_photo_and_its_bytes(
    client: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    media_state: MediaState,
    stored_objects: Callable[[], list[str]],
    count_rows: Callable[..., Any],
) -> None:
    village = auth("village", VILLAGE, subject=Subject.user(7))
    photo = await uploaded(client, village, jpeg(seed=61))
    caller = _caller_of(photo)

    async def delete_then_fail() -> None:
        async with media_state.database.transaction() as session:
            await media_state.intake.delete(session, caller, photo["id"])
            raise RuntimeError("the commit never happens")

    with pytest.raises(RuntimeError, match="never happens"):
        await delete_then_fail()
    assert await count_rows(Photo) == 1
    assert stored_objects() == sorted(keys.content_keys(photo["sha256"]))
    assert await media_state.outbox.pending() == 0


async def test_a_delete_while_the_store_is_down_removes_the_bytes_once_it_is_back(
    client: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    media_state: MediaState,
    stored_objects: Callable[[], list[str]],
    count_rows: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    village = auth("village", VILLAGE, subject=Subject.user(7))
    photo = await uploaded(client, village, jpeg(seed=62))

    async def store_down(key: str) -> None:
        raise ConnectionError("store unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(media_state.store, "delete", store_down)
        assert (await client.delete(f"/v1/photos/{photo['id']}", headers=village)).status_code == 204
    assert await count_rows(Photo) == 0
    assert stored_objects() == sorted(keys.content_keys(photo["sha256"]))  # nothing lost, nothing gone yet
    assert await media_state.outbox.pending() == 1
    async with media_state.database.transaction() as session:  # the retry is due
        await session.execute(
            media_state.outbox.table.update().values(due_at=media_state.outbox.table.c.created_at)
        )
    assert await media_state.outbox.run_due() == 1
    assert stored_objects() == [] and await count_rows(Content) == 0


async def test_releasing_bytes_an_upload_has_claimed_waits_for_it_and_keeps_them(
    backend: str,
    client: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    media_state: MediaState,
    stored_objects: Callable[[], list[str]],
    tmp_path: Path,
) -> None:
    """The race the review named: a photo's last delete and a new upload of the same bytes at one time."""
    if backend != "postgres":
        pytest.skip("the interleaving is observed through PostgreSQL's lock table")
    village = auth("village", VILLAGE, subject=Subject.user(7))
    data = jpeg(seed=63)
    photo = await uploaded(client, village, data)
    sha = photo["sha256"]
    database = media_state.database
    async with database.transaction() as session:  # the photo's row is gone; its release is not yet run
        await session.execute(delete(Photo).where(col(Photo.id) == photo["id"]))

    path = tmp_path / "same.jpg"
    path.write_bytes(data)
    owner = Owner(str(Subject.user(8)), "village", VILLAGE, photo_region_path(photo))
    async with database.transaction() as upload:
        # A second upload of the same bytes: it claims the content, finds the bytes stored, and relies on them.
        await media_state.intake.ingest(
            upload, owner, path, purpose=Purpose.after, claims=Claims(), client_content_type="image/jpeg"
        )
        release = asyncio.create_task(contents.release(database, media_state.store, sha))
        await _until_waiting_for_a_lock(database)
        assert not release.done()  # the release cannot look before the upload has committed
    assert await release is False
    assert stored_objects() == sorted(keys.content_keys(sha))


def _caller_of(photo: dict[str, Any]) -> Caller:
    """The uploader as the service sees it, for calling the photo service directly."""
    return Caller(Subject.user(7), Role.village, VILLAGE, region_path(VILLAGE), frozenset())


def photo_region_path(photo: dict[str, Any]) -> str:
    return region_path(photo["region_code"])


async def _until_waiting_for_a_lock(database: Database, seconds: float = 10.0) -> None:
    """Poll PostgreSQL until some backend of this database waits for a lock (no fixed sleep)."""
    url = database.engine.url
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database, timeout=5
    )
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                url.database,
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("no backend ever waited for the content's lock")
    finally:
        await conn.close()
