"""The media service: evidence photos in an object store."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI

from services.kit.app import ApiInfo, build_app, issuer_verifier, metrics_registry
from services.kit.auth import caller_router
from services.kit.db import Database, utcnow
from services.kit.jwt import TokenVerifier
from services.kit.outbox import Outbox
from services.media.db import idempotency_keys, outbox_rows
from services.media.deps import MediaState
from services.media.leftovers import (
    CLOSED_UPLOADS,
    EXPIRED_UPLOADS,
    ORPHAN_CONTENTS,
    SPOOL_FILES,
    SweptCollector,
    spool_cutoff,
    sweep_spool,
)
from services.media.photos import contents, keys
from services.media.photos.routes import router as photos_router
from services.media.photos.service import Intake
from services.media.settings import MediaSettings
from services.media.storage import LocalStore, ObjectStore
from services.media.storage.routes import router as objects_router
from services.media.uploads.routes import router as uploads_router
from services.media.uploads.service import refuse_closed_slot, sweep_closed, sweep_expired

logger = logging.getLogger("huanzhi.media")

TAGS = [
    {"name": "photos", "description": "Evidence photos: upload, facts and flags, signed downloads, reuse."},
    {"name": "uploads", "description": "Presigned uploads straight to the object store."},
    {"name": "objects", "description": "Signed links of the local object store (embedded default only)."},
]


def _load_picture_work() -> None:
    try:
        importlib.import_module("services.media.imaging.pipeline")  # OpenCV, NumPy, Pillow, HEIF, reuse
    except Exception:
        # Said now, not at shutdown: the first upload will raise the same, answered as a 500 of its own.
        logger.exception("the picture libraries could not be loaded")


def build_store(settings: MediaSettings) -> ObjectStore:
    if settings.store == "s3":
        from services.media.storage.s3 import S3Store  # the MinIO client only where it is used

        return S3Store(
            endpoint=settings.s3_endpoint,
            public_endpoint=settings.s3_public_endpoint or settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            secure=settings.s3_secure,
            public_secure=settings.s3_secure
            if settings.s3_public_secure is None
            else settings.s3_public_secure,
            create_bucket=settings.s3_create_bucket,
            connect_timeout=settings.store_connect_timeout_seconds,
            read_timeout=settings.store_read_timeout_seconds,
            temporary_prefix=keys.INCOMING_PREFIX,
        )
    return LocalStore(
        settings.objects_dir,
        settings.public_base_url,
        settings.link_signing_secret.get_secret_value().encode(),
        max_upload_bytes=settings.max_upload_bytes,
    )


def create_app(
    settings: MediaSettings | None = None,
    *,
    store: ObjectStore | None = None,
    verifier: TokenVerifier | None = None,
) -> FastAPI:
    """`store` and `verifier` replace the configured ones (tests)."""
    settings = settings or MediaSettings()

    @asynccontextmanager
    async def open_state(database: Database, http: httpx.AsyncClient) -> AsyncIterator[MediaState]:
        object_store = store or build_store(settings)
        if isinstance(object_store, LocalStore):
            # A slot's signed link stops writing once the slot is closed, though the link is still valid.
            object_store.write_guard = partial(refuse_closed_slot, database)
        outbox = Outbox(
            database,
            outbox_rows,
            {
                contents.RELEASE: lambda p: _release(database, object_store, p),
                contents.DELETE_OBJECTS: lambda p: contents.delete_objects(object_store, list(p["keys"])),
            },
        )
        state = MediaState(
            settings=settings,
            database=database,
            http=http,
            verifier=verifier or issuer_verifier(settings, http),
            store=object_store,
            outbox=outbox,
            intake=Intake(object_store, settings, outbox),
        )
        try:
            await object_store.ensure_ready()
        except Exception:
            logger.warning("object store not ready at start", exc_info=True)
        await _sweep_spool(state)  # what a crash left there: only its own files older than the grace
        sweeper = asyncio.create_task(_sweep_forever(state))
        # The picture libraries load in a worker thread while the service already answers: start-up does
        # not wait for them, and an upload that comes first waits only for what is left of the import.
        warming = asyncio.get_running_loop().run_in_executor(None, _load_picture_work)
        try:
            yield state
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await warming

    upload_limit = settings.max_upload_bytes + 256 * 1024  # the photo plus multipart framing and fields
    app = build_app(
        settings,
        api=ApiInfo(
            title="Huanzhi media (照片存证)",
            description="Evidence photos: upload, object store, variants, EXIF facts, reuse detection, "
            "signed downloads. Tokens come from the issues service.",
            tags=TAGS,
        ),
        routers=[
            caller_router("/v1/media/caller", ["caller"]),
            photos_router,
            uploads_router,
            objects_router,
        ],
        open_state=open_state,
        idempotency=idempotency_keys,
        body_limits={"/v1/photos": upload_limit, "/v1/media/objects/": upload_limit},
    )
    _export_sweep_counts(app)
    return app


def _export_sweep_counts(app: FastAPI) -> None:
    """`media_swept_total` beside the kit's metrics, read from the running state at each scrape."""
    metrics_registry(app).register(SweptCollector(lambda: _running_counts(app)))


def _running_counts(app: FastAPI) -> Counter[str] | None:
    state = getattr(app.state, "service", None)
    return state.swept if isinstance(state, MediaState) else None


async def _release(database: Database, store: ObjectStore, payload: dict[str, Any]) -> None:
    await contents.release(database, store, str(payload["sha256"]))


async def _sweep_forever(state: MediaState) -> None:
    """Expired and closed upload slots, effects still due in the outbox (a store that was down, a crash),
    spooled files and, less often, content objects no photo shows (what a crash left)."""
    settings = state.settings
    orphans_due = time.monotonic() + settings.orphan_sweep_interval_seconds
    while True:
        await asyncio.sleep(settings.sweep_interval_seconds)
        try:
            async with state.database.transaction() as session:
                state.swept[EXPIRED_UPLOADS] += await sweep_expired(session, state.intake)
                state.swept[CLOSED_UPLOADS] += await sweep_closed(session, state.intake)
            await state.outbox.run_due()
            await _sweep_spool(state)
        except Exception:
            logger.warning("sweeping failed", exc_info=True)
        if time.monotonic() >= orphans_due:
            orphans_due = time.monotonic() + settings.orphan_sweep_interval_seconds
            try:
                await sweep_orphan_contents(state)
            except Exception:
                logger.warning("sweeping unreferenced content objects failed", exc_info=True)


async def _sweep_spool(state: MediaState) -> None:
    cutoff = spool_cutoff(state.settings.spool_grace_seconds)
    removed = await asyncio.to_thread(sweep_spool, state.settings.spool_dir, cutoff)
    if removed:
        logger.info("removed %d spooled files left by an earlier process", removed)
    state.swept[SPOOL_FILES] += removed


async def sweep_orphan_contents(state: MediaState, *, now: datetime | None = None) -> int:
    """Content objects older than the grace that no photo shows and no row names; returns how many contents."""
    older_than = (now or utcnow()) - timedelta(seconds=state.settings.orphan_grace_seconds)
    removed = await contents.sweep_orphans(state.database, state.store, older_than)
    if removed:
        logger.info("removed the objects of %d contents no photo shows", removed)
    state.swept[ORPHAN_CONTENTS] += removed
    return removed
