"""Presigned uploads: hand out a slot in the store, then take the bytes in exactly as a multipart upload."""

from __future__ import annotations

import logging
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.kit.auth import Caller
from services.kit.db import Database, utcnow
from services.kit.errors import BadRequest, Conflict, NotFound, Problem
from services.media.photos.contents import DELETE_OBJECTS
from services.media.photos.keys import INCOMING_PREFIX, incoming_key
from services.media.photos.models import Photo
from services.media.photos.schemas import Claims, Purpose
from services.media.photos.service import Intake, Owner
from services.media.uploads.models import Upload
from services.media.uploads.schemas import UploadCreate

logger = logging.getLogger("huanzhi.media.uploads")


class UploadExpired(Problem):
    status, code, title = 410, "upload_expired", "Upload expired"


async def open_upload(session: AsyncSession, intake: Intake, caller: Caller, body: UploadCreate) -> Upload:
    upload_id = uuid.uuid4().hex
    upload = Upload(
        id=upload_id,
        object_key=incoming_key(upload_id),
        status="pending",
        purpose=body.purpose,
        uploader=str(caller.subject),
        uploader_role=caller.role,
        region_code=caller.region,
        region_path=caller.region_path,
        claimed_lat=body.latitude,
        claimed_lon=body.longitude,
        claimed_taken_at=body.taken_at,
        expires_at=utcnow() + timedelta(seconds=intake.settings.upload_url_seconds),
    )
    session.add(upload)
    await session.flush()
    return upload


async def own_upload(session: AsyncSession, caller: Caller, upload_id: str) -> Upload:
    upload = (
        await session.execute(
            select(Upload).where(col(Upload.id) == upload_id, col(Upload.uploader) == str(caller.subject))
        )
    ).scalar_one_or_none()
    if upload is None:
        raise NotFound(f"upload {upload_id} not found", code="upload_not_found")
    return upload


# Links live whole seconds: a slot with less than one left can be given no link and is as good as expired.
LAST_USABLE = timedelta(seconds=1)


def status_of(upload: Upload) -> str:
    """The slot's status as clients see it: a pending slot past its usable life is expired, swept or not."""
    if upload.status == "pending" and upload.expires_at - utcnow() < LAST_USABLE:
        return "expired"
    return upload.status


async def complete(session: AsyncSession, intake: Intake, caller: Caller, upload_id: str) -> Photo:
    """Validate and take in the uploaded bytes; a refused or missing object leaves no photo."""
    upload = await own_upload(session, caller, upload_id)
    if upload.status == "completed" and upload.photo_id:
        photo = (
            await session.execute(select(Photo).where(col(Photo.id) == upload.photo_id))
        ).scalar_one_or_none()
        if photo is not None:
            return photo  # completing twice answers the same photo
        raise Conflict("the photo of this upload was deleted", code="upload_photo_deleted")
    # Expired answers 410 whether or not the sweeper has been by yet.
    if status_of(upload) == "expired":
        raise UploadExpired("the upload slot has expired; ask for a new one")
    if upload.status != "pending":
        raise Conflict(f"this upload is {upload.status}", code=f"upload_{upload.status}")
    store, settings = intake.store, intake.settings
    folder = settings.data_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix="in-", delete=False) as f:
        path = Path(f.name)
    try:
        if await store.stat(upload.object_key) is None:
            raise BadRequest("nothing has been uploaded to this slot yet", code="upload_missing")
        try:
            await store.download_to(upload.object_key, path, settings.max_upload_bytes)
            photo = await intake.ingest(
                session,
                Owner(upload.uploader, upload.uploader_role, upload.region_code, upload.region_path),
                path,
                purpose=Purpose(upload.purpose),
                claims=Claims(
                    latitude=upload.claimed_lat,
                    longitude=upload.claimed_lon,
                    taken_at=upload.claimed_taken_at,
                ),
                client_content_type=None,
            )
        except Problem as refusal:
            if refusal.status < 500:
                # Nothing is kept on refusal: the route marks the slot, and removes its bytes, in a
                # transaction of its own (this one is rolled back by the refusal).
                refusal.extensions["upload_id"] = upload.id
            raise
        upload.status = "completed"
        upload.photo_id = photo.id
        await session.flush()
        # After the commit: should the commit fail, the slot is still pending and its bytes still there.
        await intake.outbox.enqueue(session, DELETE_OBJECTS, {"keys": [upload.object_key]})
        return photo
    finally:
        path.unlink(missing_ok=True)


async def refuse_closed_slot(database: Database, key: str) -> None:
    """The local store's write guard: a slot's link still valid may no longer write once the slot is closed
    (completed 409, refused 409, expired 410). Keys that are no slot's are left to the link's signature."""
    if not key.startswith(INCOMING_PREFIX):
        return
    async with database.sessionmaker() as session:
        upload = (
            await session.execute(select(Upload).where(col(Upload.object_key) == key))
        ).scalar_one_or_none()
    if upload is None:
        return
    shown = status_of(upload)
    if shown == "expired":
        raise UploadExpired("the upload slot has expired; ask for a new one", upload_id=upload.id)
    if shown != "pending":
        raise Conflict(
            f"this upload is {shown}: its link no longer takes bytes",
            code=f"upload_{shown}",
            upload_id=upload.id,
        )


async def sweep_expired(session: AsyncSession, intake: Intake, *, now: datetime | None = None) -> int:
    """Remove the objects of slots that expired without completion (past the grace); returns how many."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=intake.settings.sweep_grace_seconds)
    expired = (
        (
            await session.execute(
                select(Upload)
                .where(col(Upload.status) == "pending", col(Upload.expires_at) < cutoff)
                .limit(500)
            )
        )
        .scalars()
        .all()
    )
    for upload in expired:
        await intake.store.delete(upload.object_key)
        upload.status = "expired"
        upload.swept_at = now
    await session.flush()
    if expired:
        logger.info("swept %d expired uploads", len(expired))
    return len(expired)


async def sweep_closed(session: AsyncSession, intake: Intake, *, now: datetime | None = None) -> int:
    """Remove, once more, the objects of completed and refused slots whose links have expired (past the
    grace); returns how many. Their bytes were deleted when the slot closed, but a presigned S3 PUT or POST
    cannot be refused by the service: until the link expires, the client may write the key again."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=intake.settings.sweep_grace_seconds)
    closed = (
        (
            await session.execute(
                select(Upload)
                .where(
                    col(Upload.status).in_(("completed", "refused")),
                    col(Upload.swept_at).is_(None),
                    col(Upload.expires_at) < cutoff,
                )
                .limit(500)
            )
        )
        .scalars()
        .all()
    )
    for upload in closed:
        await intake.store.delete(upload.object_key)
        upload.swept_at = now
    await session.flush()
    if closed:
        logger.info("swept the objects of %d closed uploads", len(closed))
    return len(closed)


async def mark_refused(database: Database, intake: Intake, upload_id: str) -> None:
    """Record a refusal and remove the refused bytes, in a transaction of its own (the request's is rolled
    back by the refusal)."""
    async with database.transaction() as session:
        refused = await session.execute(
            update(Upload)
            .where(col(Upload.id) == upload_id, col(Upload.status) == "pending")
            .values(status="refused")
            .returning(col(Upload.object_key))
        )
        for object_key in refused.scalars():
            await intake.outbox.enqueue(session, DELETE_OBJECTS, {"keys": [object_key]})
