"""Photo endpoints: multipart upload, metadata, batch, signed content links, attach, redact, delete, similar."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlmodel import col

from services.kit.auth import Caller, require_scope
from services.kit.errors import BadRequest, PayloadTooLarge, problem_docs
from services.kit.fields import Moment, not_nullable
from services.kit.identity import Scope
from services.media.deps import IntakeDep, SessionDep, SettingsDep, StoreDep
from services.media.photos import keys
from services.media.photos.models import Photo
from services.media.photos.schemas import (
    AttachRequest,
    Claims,
    PhotoBatch,
    PhotoPublic,
    Purpose,
    RedactRequest,
    SimilarList,
    SimilarPhoto,
    Variant,
    photo_public,
)
from services.media.photos.service import Owner, get_visible, similar, visible_to

router = APIRouter(tags=["photos"])

PhotosReaderDep = Annotated[Caller, Depends(require_scope(Scope.photos_read))]
PhotosWriterDep = Annotated[Caller, Depends(require_scope(Scope.photos_write))]
PhotosAttacherDep = Annotated[Caller, Depends(require_scope(Scope.photos_attach))]


def spool_to_disk(upload: UploadFile, folder: Path, limit: int) -> Path:
    """Copy an uploaded part to a named file (the image code reads from paths), enforcing the size limit."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, delete=False, prefix="up-") as out:
        target = Path(out.name)
        copied = 0
        upload.file.seek(0)
        while chunk := upload.file.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                out.close()
                target.unlink(missing_ok=True)
                raise PayloadTooLarge(f"the photo exceeds {limit} bytes", code="photo_too_large")
            out.write(chunk)
    return target


@router.post(
    "/v1/photos",
    status_code=status.HTTP_201_CREATED,
    response_model=PhotoPublic,
    summary="Upload a photo (multipart, as wx.uploadFile sends it)",
    description="The image goes in the `file` field; `purpose`, `latitude`, `longitude` (WGS-84, as "
    "`wx.getLocation({type: 'wgs84'})` gives) and `taken_at` may stand beside it. The type is read from the "
    "bytes (JPEG, PNG, WebP, HEIC/HEIF); anything else (415 `not_an_image`, `unsupported_image_type`), a "
    "truncated or corrupt image (422 `image_corrupt`), one over the size (413) or pixel limit (422 "
    "`image_too_many_pixels`), or one that would take more memory to decode than the service allows (422 "
    "`image_too_costly`, e.g. a WebP of 40 MP) is refused and nothing is kept. A latitude without a longitude "
    "or the reverse: 400 `incomplete_position`. Checks (missing EXIF, position far from the claim, odd capture "
    "time, reuse of an earlier picture in the same county) come back as `flags`, never as refusals.",
    responses=problem_docs(403, 415, 503),
)
async def upload_photo(
    response: Response,
    session: SessionDep,
    caller: PhotosWriterDep,
    intake: IntakeDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The image bytes.")],
    purpose: Annotated[Purpose, Form()] = Purpose.other,
    # A form has no null: a field is left out or holds a value, and the document says so (not_nullable).
    latitude: Annotated[float | None, Form(ge=-90, le=90, json_schema_extra=not_nullable)] = None,
    longitude: Annotated[float | None, Form(ge=-180, le=180, json_schema_extra=not_nullable)] = None,
    taken_at: Annotated[
        Moment | None, Form(description="Claimed capture time, RFC 3339.", json_schema_extra=not_nullable)
    ] = None,
) -> PhotoPublic:
    if (latitude is None) != (longitude is None):
        raise BadRequest("give both latitude and longitude, or neither", code="incomplete_position")
    path = await asyncio.to_thread(spool_to_disk, file, settings.data_dir / "tmp", settings.max_upload_bytes)
    try:
        photo = await intake.ingest(
            session,
            Owner.of(caller),
            path,
            purpose=purpose,
            claims=Claims(latitude=latitude, longitude=longitude, taken_at=taken_at),
            client_content_type=file.content_type,
        )
    finally:
        path.unlink(missing_ok=True)
    response.headers["Location"] = f"/v1/photos/{photo.id}"
    return photo_public(photo, caller)


@router.get("/v1/photos", response_model=PhotoBatch, summary="Several photos by id (for the other services)")
async def batch(
    session: SessionDep,
    caller: PhotosReaderDep,
    ids: Annotated[
        str,
        Query(
            description="Comma-separated photo ids, at most 100.",
            min_length=1,
            max_length=3400,
            pattern=r"^[^\x00]*$",  # PostgreSQL refuses NUL in text: 422, not a failed query
        ),
    ],
) -> PhotoBatch:
    wanted = list(dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()))
    if len(wanted) > 100:
        raise BadRequest("at most 100 ids at once", code="too_many_ids")
    rows = (
        await session.execute(select(Photo).where(col(Photo.id).in_(wanted), visible_to(caller)))
    ).scalars()
    found = {p.id: p for p in rows}
    return PhotoBatch(
        items=[photo_public(found[i], caller) for i in wanted if i in found],
        missing=[i for i in wanted if i not in found],
    )


@router.get(
    "/v1/photos/{photo_id}", response_model=PhotoPublic, summary="A photo's metadata, facts and flags"
)
async def read_photo(photo_id: str, session: SessionDep, caller: PhotosReaderDep) -> PhotoPublic:
    return photo_public(await get_visible(session, caller, photo_id), caller)


@router.get(
    "/v1/photos/{photo_id}/content",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    summary="Download a variant through a short-lived signed link",
    description="Answers 307 with `Location` set to a signed URL valid for a few minutes. `original` (the "
    "unaltered upload) needs the `photos:original` scope (staff); `display` is the redacted copy once staff "
    "have redacted it.",
    response_class=RedirectResponse,
    responses={
        307: {
            "description": "Redirect to the signed URL; no body.",
            "headers": {
                "Location": {
                    "description": "The signed URL of the variant, valid for a few minutes.",
                    "required": True,
                    "schema": {"type": "string", "format": "uri"},
                }
            },
        },
        **problem_docs(403),
    },
)
async def content(
    photo_id: str,
    session: SessionDep,
    caller: PhotosReaderDep,
    settings: SettingsDep,
    store: StoreDep,
    variant: Variant = Variant.display,
) -> RedirectResponse:
    photo = await get_visible(session, caller, photo_id)
    if variant is Variant.original:
        await require_scope(Scope.photos_original)(caller)
        key, content_type = keys.original_key(photo.sha256), photo.mime
    elif variant is Variant.thumb:
        thumb = keys.redacted_thumb_key(photo.id) if photo.redacted_key else keys.thumb_key(photo.sha256)
        key, content_type = thumb, "image/jpeg"
    else:
        key, content_type = photo.redacted_key or keys.display_key(photo.sha256), "image/jpeg"
    url = store.download_url(key, timedelta(seconds=settings.download_url_seconds), content_type=content_type)
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})


@router.post(
    "/v1/photos/{photo_id}/attach",
    response_model=PhotoPublic,
    summary="Pin a photo to an issue (service token; called by the issues service)",
    description="The photo moves to the issue's region and can never be deleted afterwards. Repeating the "
    "call for the same issue is harmless; another issue answers 409.",
    responses=problem_docs(403, 409),
)
async def attach(
    photo_id: str, body: AttachRequest, session: SessionDep, caller: PhotosAttacherDep, intake: IntakeDep
) -> PhotoPublic:
    photo = await intake.attach(session, photo_id, body.issue_id, body.region_code, body.region_path)
    return photo_public(photo, caller)


@router.post(
    "/v1/photos/{photo_id}/redactions",
    response_model=PhotoPublic,
    summary="Redact rectangles of the display copy (faces, number plates); the original stays as it was",
    responses=problem_docs(403),
)
async def redact_photo(
    photo_id: str, body: RedactRequest, session: SessionDep, caller: PhotosWriterDep, intake: IntakeDep
) -> PhotoPublic:
    boxes = [(b.x, b.y, b.width, b.height) for b in body.boxes]
    return photo_public(await intake.redact(session, caller, photo_id, boxes), caller)


@router.delete(
    "/v1/photos/{photo_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an unattached photo (its uploader only)",
    responses=problem_docs(403, 409),
)
async def delete_photo(
    photo_id: str, session: SessionDep, caller: PhotosWriterDep, intake: IntakeDep
) -> Response:
    await intake.delete(session, caller, photo_id)
    return Response(status_code=204)


@router.get(
    "/v1/photos/{photo_id}/similar",
    response_model=SimilarList,
    summary="Confirmed reuse matches of a photo, strongest first",
)
async def similar_photos(photo_id: str, session: SessionDep, caller: PhotosReaderDep) -> SimilarList:
    rows = await similar(session, caller, photo_id)
    return SimilarList(
        items=[
            SimilarPhoto(
                photo_id=other,
                score=m.score,
                distance=m.distance,
                inliers=m.inliers,
                mirrored=m.mirrored,
                exact=m.exact,
                created_at=m.created_at,
            )
            for m, other in rows
        ]
    )
