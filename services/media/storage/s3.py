"""The S3/MinIO object store, through the synchronous `minio` client run in worker threads."""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import anyio.to_thread
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.datatypes import PostPolicy
from minio.error import MinioException, S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from urllib3.util import Retry, Timeout

from services.media.storage.base import (
    ObjectInfo,
    ObjectTooLarge,
    PresignedPost,
    StoreUnavailable,
    check_key,
)

logger = logging.getLogger("huanzhi.media.storage")
T = TypeVar("T")

_MISSING = {"NoSuchKey", "NoSuchObject"}
_CHUNK = 256 * 1024


class _RetryNoTimeouts(Retry):
    """One retry of a dropped connection (a pooled keep-alive connection the store closed, a store that
    restarted), but none of a read that timed out: a store that hangs must answer 503 after one timeout."""

    def _is_read_error(self, err: Exception) -> bool:
        return isinstance(err, urllib3.exceptions.ProtocolError)  # a timeout counts as "other": none allowed


def _split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Accept `host:port` or `http(s)://host:port`; a scheme overrides `secure`."""
    if "://" not in endpoint:
        return endpoint.strip("/"), secure
    parts = urlsplit(endpoint)
    if parts.path not in ("", "/"):
        raise ValueError(f"an S3 endpoint cannot have a path: {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


def _content_disposition(filename: str) -> str:
    """`inline` with an ASCII fallback and the RFC 5987 UTF-8 name, so Chinese file names survive."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3Store:
    """Objects in one S3 bucket: a client for the endpoint the service reaches, one for the public endpoint.

    Signed URLs are made with the public client (its `region` is fixed, so presigning makes no request).
    Endpoints are `host:port` (TLS per `secure` / `public_secure`) or URLs whose scheme decides.
    """

    def __init__(
        self,
        endpoint: str,
        public_endpoint: str | None,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
        secure: bool = False,
        create_bucket: bool = True,
        *,
        public_secure: bool | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        retries: int = 1,
        part_size: int = 0,
        temporary_prefix: str | None = None,
        temporary_days: int = 1,
    ) -> None:
        host, host_secure = _split_endpoint(endpoint, secure)
        public_host, public_secure = _split_endpoint(
            public_endpoint or endpoint, secure if public_secure is None else public_secure
        )
        # Short timeouts, one retry of a refused or dropped connection and none of a timeout: a store that is
        # down or hung must give a quick 503 (after about connect_timeout + read_timeout), never a hang.
        # The read timeout bounds each wait for the store (a response, or room to send more of a body).
        self._http = urllib3.PoolManager(
            timeout=Timeout(connect=connect_timeout, read=read_timeout),
            retries=_RetryNoTimeouts(
                total=retries, connect=retries, read=retries, redirect=0, status=0, other=0
            ),
            maxsize=32,
        )
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=host_secure,
            region=region,
            http_client=self._http,
        )
        self._public = Minio(
            public_host,
            access_key=access_key,
            secret_key=secret_key,
            secure=public_secure,
            region=region,
            http_client=self._http,
        )
        self.bucket = bucket
        self.region = region
        self.create_bucket = create_bucket
        self.public_bucket_url = f"{'https' if public_secure else 'http'}://{public_host}/{bucket}"
        self._part_size = part_size
        self.temporary_prefix = temporary_prefix
        self.temporary_days = temporary_days

    async def _run(self, call: Callable[[], T]) -> T:
        """Run a blocking minio call in a worker thread; network and server failures become 503."""
        try:
            return await anyio.to_thread.run_sync(call)
        except S3Error as exc:
            logger.warning("object store refused a request: %s %s", exc.code, exc.message)
            raise StoreUnavailable(f"the object store answered {exc.code}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            logger.warning("object store unreachable: %s", exc.__class__.__name__)
            raise StoreUnavailable() from exc

    async def ensure_ready(self) -> None:
        await self._run(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        if not self._client.bucket_exists(self.bucket):
            if not self.create_bucket:
                raise StoreUnavailable(f"bucket {self.bucket} does not exist and may not be created here")
            try:
                self._client.make_bucket(self.bucket, location=self.region)
            except S3Error as exc:
                # Another replica created it between our check and our request.
                if exc.code != "BucketAlreadyOwnedByYou":
                    raise
        if self.temporary_prefix and self.create_bucket:
            self._expire_temporary_objects()

    def _expire_temporary_objects(self) -> None:
        """A lifecycle rule removing objects under `temporary_prefix` after `temporary_days`: the store's
        own backstop behind the sweeper, for bytes that arrive after their slot was swept.

        Set only on a bucket without a lifecycle configuration: minio-py cannot read every rule back
        faithfully (bucket-wide filters, size conditions), so a configuration someone else wrote is left
        alone, with a warning naming the rule to add. Never fatal: the sweeper still does the work.
        """
        rule_id = "huanzhi-expire-temporary"
        try:
            current = self._client.get_bucket_lifecycle(self.bucket)  # None when there is none
        except (S3Error, ValueError) as exc:
            logger.warning("could not read the lifecycle configuration of %s: %s", self.bucket, exc)
            return
        if current is not None:
            if not any(r.rule_id == rule_id for r in current.rules):
                logger.warning(
                    "bucket %s has a lifecycle configuration of its own: add a rule expiring %s after %d day(s)",
                    self.bucket,
                    self.temporary_prefix,
                    self.temporary_days,
                )
            return
        rule = Rule(
            ENABLED,
            rule_filter=Filter(prefix=self.temporary_prefix),
            rule_id=rule_id,
            expiration=Expiration(days=self.temporary_days),
        )
        try:
            self._client.set_bucket_lifecycle(self.bucket, LifecycleConfig([rule]))
        except S3Error as exc:
            # Not ours to configure (a managed bucket): the sweeper still removes what it knows of.
            logger.warning("could not set the lifecycle rule on %s: %s", self.bucket, exc.code)

    def _write(self, call: Callable[[], object]) -> None:
        """A write; where the bucket has gone (deleted by hand, a store set up afresh) and this store may
        create it, the bucket is created again and the write repeated once."""
        try:
            call()
        except S3Error as exc:
            if exc.code != "NoSuchBucket" or not self.create_bucket:
                raise
            logger.warning("bucket %s is missing: creating it again", self.bucket)
            self._ensure_bucket()
            call()

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)

        def put() -> object:  # a fresh stream for each attempt
            return self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )

        await self._run(partial(self._write, put))

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        check_key(key)
        put = partial(
            self._client.fput_object,
            self.bucket,
            key,
            str(path),
            content_type=content_type,
            part_size=self._part_size,
        )
        await self._run(partial(self._write, put))

    async def get_bytes(self, key: str) -> bytes:
        check_key(key)
        return await self._run(partial(self._get_bytes, key))

    def _get_bytes(self, key: str) -> bytes:
        try:
            response = self._client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise KeyError(key) from None
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    async def download_to(self, key: str, path: Path, max_bytes: int) -> int:
        check_key(key)
        return await self._run(partial(self._download_to, key, path, max_bytes))

    def _download_to(self, key: str, path: Path, max_bytes: int) -> int:
        try:
            response = self._client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise KeyError(key) from None
            raise
        written = 0
        done = False
        try:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise ObjectTooLarge(max_bytes)
            with path.open("wb") as sink:
                for chunk in response.stream(_CHUNK, decode_content=False):
                    written += len(chunk)
                    # Checked while streaming too: Content-Length may be absent.
                    if written > max_bytes:
                        raise ObjectTooLarge(max_bytes)
                    sink.write(chunk)
            done = True
            return written
        finally:
            response.close()
            response.release_conn()
            if not done:
                path.unlink(missing_ok=True)

    async def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        return await self._run(partial(self._stat, key))

    def _stat(self, key: str) -> ObjectInfo | None:
        try:
            found = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        return ObjectInfo(key=key, size=found.size or 0, content_type=found.content_type, etag=found.etag)

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._run(partial(self._client.remove_object, self.bucket, key))

    async def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        if limit < 1:
            raise ValueError("limit must be at least 1")

        def page() -> list[ObjectInfo]:
            listed = self._client.list_objects(
                self.bucket, prefix=prefix, recursive=True, start_after=start_after
            )
            return [
                ObjectInfo(
                    key=o.object_name or "",
                    size=o.size or 0,
                    content_type=None,
                    etag=o.etag,
                    modified=o.last_modified,
                )
                for o in itertools.islice(listed, limit)
            ]

        return await self._run(page)

    async def healthy(self) -> bool:
        try:
            return await self._run(partial(self._client.bucket_exists, self.bucket))
        except StoreUnavailable:
            return False

    def presigned_put(self, key: str, expires: timedelta, content_type: str | None = None) -> str:
        """A presigned PUT (only `host` is signed: S3 cannot bind the type here; use `presigned_post` for that)."""
        check_key(key)
        return self._public.presigned_put_object(self.bucket, key, expires)

    def presigned_post(
        self, key: str, expires: timedelta, max_bytes: int, content_type_prefix: str = "image/"
    ) -> PresignedPost:
        check_key(key)
        expires_at = (datetime.now(UTC) + expires).replace(microsecond=0)
        policy = PostPolicy(self.bucket, expires_at)
        policy.add_equals_condition("key", key)
        policy.add_starts_with_condition("Content-Type", content_type_prefix)
        policy.add_content_length_range_condition(1, max_bytes)
        fields = {"key": key, **self._public.presigned_post_policy(policy)}
        return PresignedPost(
            url=self.public_bucket_url,
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
        overrides: dict[str, str | list[str] | tuple[str]] = {
            "response-cache-control": f"private, max-age={int(expires.total_seconds())}"
        }
        if content_type:
            overrides["response-content-type"] = content_type
        if filename:
            overrides["response-content-disposition"] = _content_disposition(filename)
        return self._public.presigned_get_object(self.bucket, key, expires, response_headers=overrides)
