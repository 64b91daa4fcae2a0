"""A closed upload slot takes no more bytes (issue 7).

Local store: the slot's signed PUT link and POST form are refused once the slot is completed or refused
(409) or expired (410), though the link itself is still valid, and bytes that arrive while the slot is
being completed are not kept. S3: a presigned PUT cannot be refused by the service, so the sweeper removes
the bytes of completed and refused slots once more after their link has expired.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from services.kit.db import utcnow
from services.media.deps import MediaState
from services.media.photos import keys
from services.media.uploads.models import Upload
from services.media.uploads.service import sweep_closed
from tests.media.api import complete, open_slot, put_bytes
from tests.media.images import jpeg
from tests.support.builders import VILLAGE
from tests.support.problems import assert_problem
from tests.support.rows import stored

Auth = Callable[..., dict[str, str]]
LOCAL = pytest.mark.parametrize("store_kind", ["local"], indirect=True)


async def post_form(client: httpx.AsyncClient, post: dict[str, Any], data: bytes) -> httpx.Response:
    fields = {**post["fields"], "Content-Type": "image/jpeg"}
    return await client.post(post["url"], data=fields, files={"file": ("p.jpg", data, "image/jpeg")})


async def _completed_slot(client: httpx.AsyncClient, village: dict[str, str]) -> dict[str, Any]:
    slot = await open_slot(client, village)
    assert (await put_bytes(client, slot["put_url"], jpeg(320, 240, seed=81))).status_code in (200, 201)
    r = await complete(client, village, slot["id"])
    assert r.status_code == 201, r.text
    return slot


@LOCAL
async def test_a_completed_slot_refuses_its_put_link_and_its_form_and_keeps_nothing(
    client: httpx.AsyncClient, auth: Auth, stored_objects: Callable[[], list[str]]
) -> None:
    village = auth("village", VILLAGE)
    slot = await _completed_slot(client, village)
    incoming = keys.incoming_key(slot["id"])
    assert incoming not in stored_objects()

    again = await put_bytes(client, slot["put_url"], jpeg(320, 240, seed=82))
    body = assert_problem(again, 409, "upload_completed")
    assert body["upload_id"] == slot["id"]
    by_form = await post_form(client, slot["post"], jpeg(320, 240, seed=83))
    assert_problem(by_form, 409, "upload_completed")

    assert incoming not in stored_objects()


@LOCAL
async def test_a_refused_slot_refuses_its_link(
    client: httpx.AsyncClient, auth: Auth, stored_objects: Callable[[], list[str]]
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    assert (await put_bytes(client, slot["put_url"], b"not a picture at all" * 10)).status_code == 201
    assert (await complete(client, village, slot["id"])).status_code == 415

    again = await put_bytes(client, slot["put_url"], jpeg(320, 240, seed=84))

    assert_problem(again, 409, "upload_refused")
    assert keys.incoming_key(slot["id"]) not in stored_objects()


@LOCAL
async def test_an_expired_slot_refuses_a_link_still_valid_with_410(
    client: httpx.AsyncClient, auth: Auth, media_state: MediaState, stored_objects: Callable[[], list[str]]
) -> None:
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    async with media_state.database.transaction() as session:  # the slot's life ended; its link's has not
        await session.execute(
            update(Upload)
            .where(col(Upload.id) == slot["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    r = await put_bytes(client, slot["put_url"], jpeg(320, 240, seed=85))

    assert_problem(r, 410, "upload_expired")
    assert stored_objects() == []


@LOCAL
async def test_bytes_arriving_while_the_slot_is_completed_are_not_kept(
    client: httpx.AsyncClient, auth: Auth, media_state: MediaState, stored_objects: Callable[[], list[str]]
) -> None:
    """The slot closes between the check before the write and the one after it."""
    village = auth("village", VILLAGE)
    slot = await open_slot(client, village)
    store: Any = media_state.store
    guard = store.write_guard
    calls = 0

    async def closing_meanwhile(key: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the write: the slot was completed while the bytes streamed in
            async with media_state.database.transaction() as session:
                await session.execute(
                    update(Upload).where(col(Upload.id) == slot["id"]).values(status="completed")
                )
        await guard(key)

    store.write_guard = closing_meanwhile
    r = await put_bytes(client, slot["put_url"], jpeg(320, 240, seed=86))

    assert_problem(r, 409, "upload_completed")
    assert calls == 2
    assert stored_objects() == []


async def test_the_sweeper_removes_bytes_written_to_a_closed_slot_after_its_link_expired(
    client: httpx.AsyncClient,
    auth: Auth,
    media_state: MediaState,
    stored_objects: Callable[[], list[str]],
    store_kind: str,
) -> None:
    """On S3 the PUT after completion is the store's to take; the sweeper removes what it took."""
    village = auth("village", VILLAGE)
    slot = await _completed_slot(client, village)
    incoming = keys.incoming_key(slot["id"])
    if store_kind == "s3":
        late = await put_bytes(client, slot["put_url"], jpeg(320, 240, seed=87))
        assert late.status_code == 200, late.text
        assert incoming in stored_objects()
    else:
        await media_state.store.put_bytes(incoming, b"late bytes", "image/jpeg")  # as if the guard were off
    grace = timedelta(seconds=media_state.settings.sweep_grace_seconds)
    opened = await stored(media_state.database, Upload, col(Upload.id) == slot["id"])
    assert opened is not None
    expires_at = opened.expires_at

    async with media_state.database.transaction() as session:  # the link is still valid: kept
        assert await sweep_closed(session, media_state.intake, now=expires_at + grace) == 0
    assert incoming in stored_objects()

    later = expires_at + grace + timedelta(seconds=1)
    async with media_state.database.transaction() as session:
        assert await sweep_closed(session, media_state.intake, now=later) == 1
    assert incoming not in stored_objects()
    row = await stored(media_state.database, Upload, col(Upload.id) == slot["id"])
    assert row is not None and row.status == "completed" and row.swept_at is not None
    async with media_state.database.transaction() as session:  # once only
        assert await sweep_closed(session, media_state.intake, now=later + timedelta(hours=1)) == 0
