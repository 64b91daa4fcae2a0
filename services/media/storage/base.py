"""The object store interface the media service codes against, its errors and its key rules."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from services.kit.errors import PayloadTooLarge, ServiceUnavailable

# Keys are relative paths made by the service ("originals/ab/cd/<sha256>"); the narrow alphabet keeps them
# safe as file paths and as URL paths without escaping.
_KEY = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")
MAX_KEY_LENGTH = 512
RETRY_AFTER_SECONDS = 5


class InvalidKey(ValueError):
    """A key with `..`, a leading `/` or `.`, an empty segment or a character outside [A-Za-z0-9/._-]."""


def check_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative object key, else raise `InvalidKey`."""
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidKey(f"invalid object key {key[:80]!r}")
    # A segment starting with "." excludes "..", "." and the local store's own .tmp/.meta folders.
    if any(segment.startswith(".") for segment in key.split("/")):
        raise InvalidKey(f"invalid object key {key[:80]!r}")
    return key


# Asked before (and after) bytes are written through one of the service's own signed links: raises a problem
# (409, 410 …) when the key may no longer be written, though the link is still valid. The app wires it in;
# the storage layer knows nothing of what the keys are for.
WriteGuard = Callable[[str], Awaitable[None]]


class StoreUnavailable(ServiceUnavailable):
    """The object store did not answer (or answered with a server error): retry later."""

    status, code, title = 503, "store_unavailable", "Object store unavailable"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        super().__init__(detail or "the object store is unavailable; retry later", **kwargs)


class ObjectTooLarge(PayloadTooLarge):
    """An object (or an upload to the local store) is larger than the limit it was read with."""

    def __init__(self, max_bytes: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Connection": "close"})
        super().__init__(f"the object exceeds {max_bytes} bytes", max_bytes=max_bytes, **kwargs)


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object."""

    key: str
    size: int
    content_type: str | None
    etag: str | None
    modified: datetime | None = None  # when the object was last written (listings give it)


@dataclass(frozen=True)
class PresignedPost:
    """A browser-style form upload: POST `fields` plus the file (last) as multipart form data to `url`.

    The client adds a `Content-Type` field starting with the signed prefix (e.g. `image/jpeg`).
    """

    url: str
    fields: dict[str, str]
    expires_at: datetime
    key: str
    max_bytes: int


class ObjectStore(Protocol):
    """Where photo bytes live: S3/MinIO, or a local folder for the embedded default."""

    async def ensure_ready(self) -> None:
        """Create the bucket or folder where allowed; raise `StoreUnavailable` if unreachable."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, replacing any object there."""
        ...

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at `path` under `key`, streaming it (the file is left in place)."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """The whole object; `KeyError` if there is none."""
        ...

    async def download_to(self, key: str, path: Path, max_bytes: int) -> int:
        """Stream the object into `path` and return its size; `ObjectTooLarge` (413) beyond `max_bytes`."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size, type and etag of an object, or None if there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; removing a missing one is not an error."""
        ...

    async def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        """Up to `limit` objects whose keys start with `prefix`, in key order after `start_after`, each with
        its size and `modified` time (content type and etag may be missing)."""
        ...

    async def healthy(self) -> bool:
        """Whether the store answers and its bucket or folder is there (never raises)."""
        ...

    def presigned_put(self, key: str, expires: timedelta, content_type: str | None = None) -> str:
        """A URL the client PUTs the bytes to directly."""
        ...

    def presigned_post(
        self, key: str, expires: timedelta, max_bytes: int, content_type_prefix: str = "image/"
    ) -> PresignedPost:
        """A form upload limited to exactly `key`, 1..`max_bytes` bytes and a content type prefix."""
        ...

    def download_url(
        self,
        key: str,
        expires: timedelta,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        """A short-lived link that serves the object, optionally with this content type and file name."""
        ...
