"""Presigned uploads: ask for a slot, send the bytes straight to the object store, then complete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from services.kit.auth import Caller, require_scope
from services.kit.db import utcnow
from services.kit.errors import Problem, problem_docs
from services.kit.identity import Scope
from services.media.deps import IntakeDep, SessionDep, StateDep
from services.media.photos.schemas import PhotoPublic, photo_public
from services.media.photos.service import Intake
from services.media.uploads import service
from services.media.uploads.models import Upload
from services.media.uploads.schemas import PostForm, UploadCreate, UploadPublic

router = APIRouter(tags=["uploads"])
PhotosWriterDep = Annotated[Caller, Depends(require_scope(Scope.photos_write))]


def _public(upload: Upload, intake: Intake) -> UploadPublic:
    store, settings = intake.store, intake.settings
    put_url, post = None, None
    shown = service.status_of(upload)
    if shown == "pending":
        left = max(service.LAST_USABLE, upload.expires_at - utcnow())  # the clock moved on since
        put_url = store.presigned_put(upload.object_key, left)
        policy = store.presigned_post(upload.object_key, left, settings.max_upload_bytes)
        post = PostForm(url=policy.url, fields=policy.fields)
    return UploadPublic(
        id=upload.id,
        status=shown,
        put_url=put_url,
        post=post,
        max_bytes=settings.max_upload_bytes,
        expires_at=upload.expires_at,
        photo_id=upload.photo_id,
    )


@router.post(
    "/v1/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadPublic,
    summary="Open a presigned upload slot",
    description="Answers a short-lived URL to PUT the bytes to (or a POST form policy) straight into the "
    "object store; then call `POST /v1/uploads/{id}/complete`. Slots never completed expire and their "
    "objects are removed.",
    responses=problem_docs(403),
)
async def open_upload(
    body: UploadCreate, session: SessionDep, caller: PhotosWriterDep, intake: IntakeDep
) -> UploadPublic:
    return _public(await service.open_upload(session, intake, caller, body), intake)


@router.get(
    "/v1/uploads/{upload_id}", response_model=UploadPublic, summary="An upload slot (its opener only)"
)
async def read_upload(
    upload_id: str, session: SessionDep, caller: PhotosWriterDep, intake: IntakeDep
) -> UploadPublic:
    return _public(await service.own_upload(session, caller, upload_id), intake)


@router.post(
    "/v1/uploads/{upload_id}/complete",
    status_code=status.HTTP_201_CREATED,
    response_model=PhotoPublic,
    summary="Validate and take in the uploaded bytes as a photo",
    description="Exactly the checks and processing of `POST /v1/photos` (and its refusals: 415 `not_an_image`, "
    "`unsupported_image_type`; 422 `image_corrupt`, `image_too_many_pixels`, `image_too_costly`). On refusal "
    "the uploaded object is removed and no photo is kept. Completing twice answers the same photo. Nothing "
    "uploaded to the slot yet: 400 `upload_missing` (the slot stays open).",
    responses=problem_docs(409, 410, 415, 503),
)
async def complete(
    upload_id: str,
    response: Response,
    session: SessionDep,
    caller: PhotosWriterDep,
    state: StateDep,
) -> PhotoPublic:
    intake = state.intake
    try:
        photo = await service.complete(session, intake, caller, upload_id)
    except Problem as refusal:
        if refusal.extensions.get("upload_id") == upload_id:
            await service.mark_refused(state.database, intake, upload_id)
        raise
    response.headers["Location"] = f"/v1/photos/{photo.id}"
    return photo_public(photo, caller)
