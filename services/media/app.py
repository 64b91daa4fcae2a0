"""The media service: evidence photos in an object store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import cv2
from fastapi import FastAPI

from services.kit.app import build_app
from services.kit.auth import caller_router
from services.kit.jwt import JWKSCache
from services.kit.observability import ReadinessCheck
from services.kit.peers import Peer
from services.media.db import idempotency_keys
from services.media.objects_routes import router as objects_router
from services.media.photos import keys
from services.media.photos.routes import router as photos_router
from services.media.photos.service import Intake
from services.media.settings import MediaSettings
from services.media.storage import LocalStore, ObjectStore, S3Store
from services.media.uploads.routes import router as uploads_router
from services.media.uploads.service import sweep_expired

logger = logging.getLogger("huanzhi.media")

TAGS = [
    {"name": "photos", "description": "Evidence photos: upload, facts and flags, signed downloads, reuse."},
    {"name": "uploads", "description": "Presigned uploads straight to the object store."},
    {"name": "objects", "description": "Signed links of the local object store (embedded default only)."},
]


def build_store(settings: MediaSettings) -> ObjectStore:
    if settings.store == "s3":
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
    store: ObjectStore | None = None,
    jwks_cache: Callable[[FastAPI], JWKSCache] | None = None,
) -> FastAPI:
    """`store` and `jwks_cache` replace the configured ones (tests)."""
    settings = settings or MediaSettings()

    @asynccontextmanager
    async def extra(app: FastAPI) -> AsyncIterator[None]:
        # One picture per worker thread already: OpenCV's own thread pool would only add overhead
        # (~6 ms of CPU per fingerprint measured here) under concurrent uploads.
        cv2.setNumThreads(1)
        app.state.store = store or build_store(settings)
        app.state.intake = Intake(app.state.store, settings)
        app.state.readiness_extra = {"object_store": _store_check(app.state.store)}
        try:
            await app.state.store.ensure_ready()
        except Exception:
            logger.warning("object store not ready at start", exc_info=True)
        sweeper = asyncio.create_task(_sweep_forever(app, settings.sweep_interval_seconds))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    def peers(app: FastAPI) -> dict[str, Peer]:
        # The issuer is a readiness dependency: without its keys no token can be verified.
        return {"issues": Peer("issues", settings.issues_url, app.state.http, token=None)}

    upload_limit = settings.max_upload_bytes + 256 * 1024  # the photo plus multipart framing and fields
    return build_app(
        settings,
        title="Huanzhi media (照片存证)",
        description="Evidence photos: upload, object store, variants, EXIF facts, reuse detection, "
        "signed downloads. Tokens come from the issues service.",
        version="0.1.0",
        routers=[
            caller_router("/v1/media/caller", ["caller"]),
            photos_router,
            uploads_router,
            objects_router,
        ],
        extra_lifespan=extra,
        peers=peers,
        idempotency=idempotency_keys,
        jwks_cache=jwks_cache,
        body_limits={"/v1/photos": upload_limit, "/v1/media/objects/": upload_limit},
        openapi_tags=TAGS,
    )


def _store_check(store: ObjectStore) -> ReadinessCheck:
    async def check() -> None:
        if not await store.healthy():
            raise ConnectionError("object store unreachable")

    return check


async def _sweep_forever(app: FastAPI, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            async with app.state.database.sessionmaker() as session, session.begin():
                await sweep_expired(session, app.state.intake)
        except Exception:
            logger.warning("sweeping expired uploads failed", exc_info=True)
