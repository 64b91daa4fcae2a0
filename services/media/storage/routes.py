"""Signed links for the local object store: the media service serves and receives the bytes itself.

Public routes: the HMAC signature in the link is the authorization, so there is no bearer token. With the
S3 store these routes answer 404 (signed URLs then point at the object store).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from services.kit.errors import BadRequest, Forbidden, NotFound, Problem, problem_docs
from services.media.deps import StoreDep
from services.media.storage import InvalidKey, LocalStore, ObjectInfo, ObjectTooLarge, check_key
from services.media.storage.local import OBJECTS_PATH

# Room for the form fields and part headers around the file in a POST upload.
FORM_OVERHEAD_BYTES = 64 * 1024
_CHUNK = 1024 * 1024

router = APIRouter(prefix=OBJECTS_PATH, tags=["objects"])


class StoredObject(BaseModel):
    """An object written through a signed upload link."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "key": "uploads/4f/0c/4f0c2b9e6d8a4f1e9b7a3c2d1e0f9a8b",
                "size": 2483117,
                "content_type": "image/jpeg",
                "etag": "9b2cf535f27731c974343645a3985328",
            }
        }
    )

    key: str
    size: int
    content_type: str | None
    etag: str | None

    @classmethod
    def of(cls, info: ObjectInfo) -> StoredObject:
        return cls(key=info.key, size=info.size, content_type=info.content_type, etag=info.etag)


ExpQuery = Annotated[
    str | None, Query(description="Expiry of the link, Unix seconds.", examples=["1767225600"])
]
SigQuery = Annotated[str | None, Query(description="Hex HMAC-SHA256 signature of the link.")]
TypeQuery = Annotated[
    str | None, Query(description="Content type the link was signed for.", examples=["image/jpeg"])
]
NameQuery = Annotated[
    str | None, Query(description="File name to serve the object under.", examples=["整改后.jpg"])
]

_BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["key", "exp", "max_bytes", "sig", "file"],
                    "properties": {
                        "key": {"type": "string"},
                        "exp": {"type": "string"},
                        "max_bytes": {"type": "string"},
                        "content_type_prefix": {"type": "string"},
                        "policy": {"type": "string"},
                        "sig": {"type": "string"},
                        "Content-Type": {"type": "string", "example": "image/jpeg"},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


async def _local_store(store: StoreDep) -> LocalStore:
    if not isinstance(store, LocalStore):
        raise NotFound("objects are not served by this service", code="not_found")
    return store


LocalStoreDep = Annotated[LocalStore, Depends(_local_store)]


def _checked_key(key: str) -> str:
    try:
        return check_key(key)
    except InvalidKey:
        raise NotFound("no such object", code="object_not_found") from None


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


async def _capped(stream: AsyncIterator[bytes], cap: int) -> AsyncGenerator[bytes, None]:
    """Pass a request body through, stopping with 413 as soon as it passes `cap` bytes."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > cap:
            raise ObjectTooLarge(cap)
        yield chunk


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


@router.get(
    "/{key:path}",
    summary="Download an object through a signed link (local store)",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The object's bytes",
            "content": {"image/jpeg": {}, "application/octet-stream": {}},
        },
        **problem_docs(403, 503),
    },
)
async def get_object(
    key: str,
    store: LocalStoreDep,
    exp: ExpQuery = None,
    sig: SigQuery = None,
    ct: TypeQuery = None,
    fn: NameQuery = None,
) -> FileResponse:
    key = _checked_key(key)
    expiry = store.verify("GET", key, exp, sig, content_type=ct, filename=fn)
    info = await store.stat(key)
    if info is None:
        raise NotFound("no such object", code="object_not_found")
    max_age = max(0, expiry - int(time.time()))
    return FileResponse(
        store.path_for(key),
        media_type=ct or info.content_type or "application/octet-stream",
        filename=fn,
        content_disposition_type="inline",
        headers={"Cache-Control": f"private, max-age={max_age}", "X-Content-Type-Options": "nosniff"},
    )


@router.put(
    "/{key:path}",
    summary="Upload an object's bytes through a signed PUT link (local store)",
    status_code=201,
    response_model=StoredObject,
    responses=problem_docs(403, 409, 410, 503),
    openapi_extra=_BINARY_BODY,
)
async def put_object(
    key: str,
    request: Request,
    store: LocalStoreDep,
    exp: ExpQuery = None,
    sig: SigQuery = None,
    ct: TypeQuery = None,
) -> StoredObject:
    key = _checked_key(key)
    store.verify("PUT", key, exp, sig, content_type=ct)
    sent_type = request.headers.get("content-type")
    if ct and _media_type(sent_type) != _media_type(ct):
        raise Forbidden(f"the link is signed for Content-Type {ct}", code="bad_signature")
    declared = _declared_length(request)
    if declared is not None and declared > store.max_upload_bytes:
        raise ObjectTooLarge(store.max_upload_bytes)
    await store.guard_write(key)
    info = await store.write_stream(
        key, request.stream(), ct or sent_type or "application/octet-stream", store.max_upload_bytes
    )
    await _still_writable(store, key)
    return StoredObject.of(info)


@router.post(
    "/{key:path}",
    summary="Upload an object as a form with presigned fields (local store)",
    status_code=201,
    response_model=StoredObject,
    responses=problem_docs(403, 409, 410, 503),
    openapi_extra=_FORM_BODY,
)
async def post_object(key: str, request: Request, store: LocalStoreDep) -> StoredObject:
    key = _checked_key(key)
    if _media_type(request.headers.get("content-type")) != "multipart/form-data":
        raise BadRequest("send the fields and the file as multipart/form-data", code="malformed_form")
    # The exact limit is in the signed fields; while streaming, the store's ceiling bounds the body.
    cap = store.max_upload_bytes + FORM_OVERHEAD_BYTES
    declared = _declared_length(request)
    if declared is not None and declared > cap:
        raise ObjectTooLarge(store.max_upload_bytes)
    parser = MultiPartParser(request.headers, _capped(request.stream(), cap), max_files=1, max_fields=32)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(exc.message, code="malformed_form") from None
    try:
        fields = {name.lower(): value for name, value in form.multi_items() if isinstance(value, str)}
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise BadRequest("the form has no file", code="malformed_form")
        upload = files[0]
        try:
            max_bytes = int(fields.get("max_bytes", ""))
        except ValueError:
            raise Forbidden("the form is not signed", code="bad_signature") from None
        prefix = fields.get("content_type_prefix", "")
        store.verify(
            "POST", key, fields.get("exp"), fields.get("sig"), max_bytes=max_bytes, content_type=prefix
        )
        if fields.get("key") != key:
            raise Forbidden("the form's key differs from the signed one", code="policy_condition_failed")
        content_type = fields.get("content-type") or upload.content_type or ""
        if not content_type.lower().startswith(prefix.lower()):
            raise Forbidden(f"Content-Type must start with {prefix}", code="policy_condition_failed")
        if not upload.size:
            raise BadRequest("the file is empty", code="empty_object")
        if upload.size > max_bytes:
            raise ObjectTooLarge(max_bytes)
        await store.guard_write(key)
        info = await store.write_stream(key, _chunks(upload), content_type, max_bytes)
    finally:
        await form.close()
    await _still_writable(store, key)
    return StoredObject.of(info)


async def _still_writable(store: LocalStore, key: str) -> None:
    """After a write: a key closed while the bytes were arriving (a slot completed meanwhile) loses them."""
    try:
        await store.guard_write(key)
    except Problem:
        await store.delete(key)
        raise
