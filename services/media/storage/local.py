"""The local-folder object store (the embedded default) and the HMAC-signed links the service serves for it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import tempfile
import time
from collections.abc import AsyncIterable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import urlencode

import anyio.to_thread

from services.kit.errors import Forbidden
from services.media.storage.base import (
    ObjectInfo,
    ObjectTooLarge,
    PresignedPost,
    StoreUnavailable,
    WriteGuard,
    check_key,
)

T = TypeVar("T")

OBJECTS_PATH = "/v1/media/objects"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_CHUNK = 1024 * 1024


def sign_local(
    secret: bytes,
    method: str,
    key: str,
    exp: int,
    *,
    max_bytes: int | None = None,
    content_type: str | None = None,
    filename: str | None = None,
) -> str:
    """Hex HMAC-SHA256 over the method, key, expiry and the optional limits a link carries."""
    # A JSON array is an unambiguous encoding: no field can bleed into the next.
    message = json.dumps(
        [method.upper(), key, exp, max_bytes, content_type, filename],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_local_signature(
    secret: bytes,
    method: str,
    key: str,
    exp: str | int | None,
    sig: str | None,
    *,
    max_bytes: int | None = None,
    content_type: str | None = None,
    filename: str | None = None,
    now: float | None = None,
) -> int:
    """Check a local signed link and return its expiry; 403 `bad_signature` or `link_expired` otherwise."""
    try:
        expiry = int(exp) if exp is not None else None
    except ValueError:
        expiry = None
    # compare_digest refuses non-ASCII str with a TypeError; such a signature is simply wrong.
    if expiry is None or not sig or not sig.isascii():
        raise Forbidden("the link is not signed", code="bad_signature")
    expected = sign_local(
        secret, method, key, expiry, max_bytes=max_bytes, content_type=content_type, filename=filename
    )
    if not hmac.compare_digest(expected, sig.lower()):
        raise Forbidden("the link's signature does not match", code="bad_signature")
    # The signature first: an expiry only means something once it is known to be ours.
    if expiry < (time.time() if now is None else now):
        raise Forbidden("the link has expired", code="link_expired")
    return expiry


def _expiry(expires: timedelta) -> int:
    seconds = int(expires.total_seconds())
    if seconds < 1:
        raise ValueError("a link must live at least one second")
    return int(time.time()) + seconds


class _TempObject:
    """An object being written to a temp file in the store's folder, hashed as it goes; moved in atomically."""

    def __init__(self, tmp_dir: Path, max_bytes: int | None) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        self.path = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self.size = 0
        self.max_bytes = max_bytes
        self._md5 = hashlib.md5(usedforsecurity=False)

    def count(self, length: int) -> None:
        """Account for bytes about to be written; refuses past the limit before they touch the disk."""
        self.size += length
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise ObjectTooLarge(self.max_bytes)

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self._md5.update(data)

    def add(self, data: bytes) -> None:
        self.count(len(data))
        self.write(data)

    def copy_from(self, source: IO[bytes]) -> None:
        while chunk := source.read(_CHUNK):
            self.add(chunk)

    def finish(self) -> str:
        """Flush to disk and return the etag (MD5 hex, as S3 gives for a single-part upload)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return self._md5.hexdigest()

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class LocalStore:
    """Objects as files under `root`; links point at the media service itself, signed with `signing_secret`.

    Layout: `root/<key>` holds the bytes, `root/.meta/<key>` the content type and etag, `root/.tmp/` the
    uploads in progress (same file system, so `os.replace` is atomic).
    """

    def __init__(
        self,
        root: Path,
        public_base_url: str,
        signing_secret: bytes,
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        write_guard: WriteGuard | None = None,
    ) -> None:
        if not signing_secret:
            raise ValueError("the local store needs a signing secret")
        self.root = Path(root)
        self.public_base_url = public_base_url.rstrip("/")
        self.signing_secret = signing_secret
        self.max_upload_bytes = max_upload_bytes
        # Asked by the signed-link routes before and after a write (the app sets it: closed upload slots).
        self.write_guard = write_guard
        self._tmp = self.root / ".tmp"
        self._meta = self.root / ".meta"

    def path_for(self, key: str) -> Path:
        """The file that holds `key` (which is checked first, so it cannot leave `root`)."""
        return self.root / check_key(key)

    async def _run(self, call: Callable[[], T], *, prepared: bool = True) -> T:
        """`call` in a worker thread; OS errors, and a folder gone since start (unmounted), are a store down."""

        def guarded() -> T:
            if prepared and not self._tmp.is_dir():
                raise StoreUnavailable("the local object store's folder is missing: unmounted or removed?")
            return call()

        try:
            return await anyio.to_thread.run_sync(guarded)
        except OSError as exc:
            raise StoreUnavailable(f"the local object store failed: {exc.strerror or exc}") from exc

    # Writing

    async def ensure_ready(self) -> None:
        def prepare() -> None:
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._meta.mkdir(parents=True, exist_ok=True)

        await self._run(prepare, prepared=False)

    def _open(self, max_bytes: int | None) -> _TempObject:
        return _TempObject(self._tmp, max_bytes)

    def _install(self, key: str, upload: _TempObject, content_type: str | None) -> ObjectInfo:
        etag = upload.finish()
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        meta = self._meta / key
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta_tmp = self._tmp / f"{upload.path.name}.meta"
        meta_tmp.write_text(json.dumps({"content_type": content_type, "etag": etag}))
        os.replace(upload.path, target)
        os.replace(meta_tmp, meta)
        return ObjectInfo(key=key, size=upload.size, content_type=content_type, etag=etag)

    def _write_sync(
        self, key: str, fill: Callable[[_TempObject], None], content_type: str | None, max_bytes: int | None
    ) -> ObjectInfo:
        check_key(key)
        upload = self._open(max_bytes)
        try:
            fill(upload)
            return self._install(key, upload, content_type)
        except BaseException:
            upload.discard()
            raise

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._run(partial(self._write_sync, key, lambda up: up.add(data), content_type, None))

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        def fill(upload: _TempObject) -> None:
            with path.open("rb") as source:
                upload.copy_from(source)

        await self._run(partial(self._write_sync, key, fill, content_type, None))

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None, max_bytes: int
    ) -> ObjectInfo:
        """Store an async byte stream (a request body), refusing the moment it passes `max_bytes`."""
        check_key(key)
        upload = await self._run(partial(self._open, max_bytes))
        buffered: list[bytes] = []
        pending = 0
        try:
            async for chunk in chunks:
                upload.count(len(chunk))
                buffered.append(chunk)
                pending += len(chunk)
                # Batch small ASGI chunks so each thread hop writes about a megabyte.
                if pending >= _CHUNK:
                    await self._run(partial(upload.write, b"".join(buffered)))
                    buffered.clear()
                    pending = 0
            if buffered:
                await self._run(partial(upload.write, b"".join(buffered)))
            return await self._run(partial(self._install, key, upload, content_type))
        except BaseException:
            upload.discard()
            raise

    # Reading

    async def get_bytes(self, key: str) -> bytes:
        path = self.path_for(key)

        def read() -> bytes:
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise KeyError(key) from None

        return await self._run(read)

    async def download_to(self, key: str, path: Path, max_bytes: int) -> int:
        source_path = self.path_for(key)

        def copy() -> int:
            try:
                source = source_path.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise KeyError(key) from None
            written = 0
            done = False
            try:
                with source, path.open("wb") as sink:
                    if os.fstat(source.fileno()).st_size > max_bytes:
                        raise ObjectTooLarge(max_bytes)
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise ObjectTooLarge(max_bytes)
                        sink.write(chunk)
                done = True
                return written
            finally:
                if not done:
                    path.unlink(missing_ok=True)

        return await self._run(copy)

    def _stat_sync(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        try:
            meta = json.loads((self._meta / key).read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            meta = {}
        return ObjectInfo(key=key, size=size, content_type=meta.get("content_type"), etag=meta.get("etag"))

    async def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        return await self._run(partial(self._stat_sync, key))

    async def delete(self, key: str) -> None:
        path = self.path_for(key)

        def remove() -> None:
            for file in (path, self._meta / key):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    file.unlink()

        await self._run(remove)

    async def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        """Objects under `prefix` in key order (a walk of the folder for each page: the embedded store is
        small)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if folder:
            check_key(folder)

        def walk() -> list[ObjectInfo]:
            top = self.root / folder if folder else self.root
            found: list[tuple[str, Path]] = []
            for path in top.rglob("*") if top.is_dir() else ():
                key = path.relative_to(self.root).as_posix()
                if key.startswith(".") or not key.startswith(prefix) or (start_after and key <= start_after):
                    continue
                if path.is_file():
                    found.append((key, path))
            found.sort()
            page: list[ObjectInfo] = []
            for key, path in found[:limit]:
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # removed meanwhile
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                page.append(
                    ObjectInfo(key=key, size=stat.st_size, content_type=None, etag=None, modified=modified)
                )
            return page

        return await self._run(walk)

    async def healthy(self) -> bool:
        def check() -> bool:
            return self._tmp.is_dir() and self._meta.is_dir() and os.access(self._tmp, os.W_OK)

        try:
            return await self._run(check)
        except StoreUnavailable:
            return False

    # Links to the service's own /v1/media/objects routes

    def _link(self, key: str, query: dict[str, str | int]) -> str:
        return f"{self.public_base_url}{OBJECTS_PATH}/{key}?{urlencode(query)}"

    def presigned_put(self, key: str, expires: timedelta, content_type: str | None = None) -> str:
        """A PUT link; with `content_type` the upload must carry exactly that type."""
        check_key(key)
        exp = _expiry(expires)
        query: dict[str, str | int] = {"exp": exp}
        if content_type:
            query["ct"] = content_type
        query["sig"] = sign_local(self.signing_secret, "PUT", key, exp, content_type=content_type)
        return self._link(key, query)

    def presigned_post(
        self, key: str, expires: timedelta, max_bytes: int, content_type_prefix: str = "image/"
    ) -> PresignedPost:
        check_key(key)
        exp = _expiry(expires)
        expires_at = datetime.fromtimestamp(exp, UTC)
        # The same policy document S3 uses, so clients and tests read both stores alike; the
        # signature covers the explicit fields, which are what the route enforces.
        policy = {
            "expiration": expires_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [
                ["eq", "$key", key],
                ["starts-with", "$Content-Type", content_type_prefix],
                ["content-length-range", 1, max_bytes],
            ],
        }
        fields = {
            "key": key,
            "exp": str(exp),
            "max_bytes": str(max_bytes),
            "content_type_prefix": content_type_prefix,
            "policy": base64.b64encode(json.dumps(policy).encode()).decode(),
            "sig": sign_local(
                self.signing_secret, "POST", key, exp, max_bytes=max_bytes, content_type=content_type_prefix
            ),
        }
        return PresignedPost(
            url=f"{self.public_base_url}{OBJECTS_PATH}/{key}",
            fields=fields,
            expires_at=expires_at,
            key=key,
            max_bytes=max_bytes,
        )

    def download_url(
        self,
        key: str,
        expires: timedelta,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        check_key(key)
        exp = _expiry(expires)
        query: dict[str, str | int] = {"exp": exp}
        if content_type:
            query["ct"] = content_type
        if filename:
            query["fn"] = filename
        query["sig"] = sign_local(
            self.signing_secret, "GET", key, exp, content_type=content_type, filename=filename
        )
        return self._link(key, query)

    async def guard_write(self, key: str) -> None:
        """Raise the write guard's problem if `key` may no longer be written through a signed link."""
        if self.write_guard is not None:
            await self.write_guard(key)

    def verify(
        self,
        method: str,
        key: str,
        exp: str | None,
        sig: str | None,
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> int:
        """`verify_local_signature` with this store's secret."""
        return verify_local_signature(
            self.signing_secret,
            method,
            key,
            exp,
            sig,
            max_bytes=max_bytes,
            content_type=content_type,
            filename=filename,
        )
