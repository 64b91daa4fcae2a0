"""An object store that hangs, or whose bucket has gone (issue 7).

A store whose process is stopped still accepts connections (the kernel does) and never answers: the upload
must answer 503 within the configured connect and read timeouts, not after two 20 s read timeouts. A bucket
that disappeared is created again on the next write, where the service may create buckets.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from minio import Minio
from minio.deleteobjects import DeleteObject
from sqlmodel import col

from services.media.photos import keys
from services.media.photos.models import Photo
from services.media.settings import MediaSettings
from tests.media.api import upload, uploaded
from tests.media.images import jpeg
from tests.media.s3_server import ACCESS_KEY, REGION, SECRET_KEY
from tests.support.builders import VILLAGE
from tests.support.problems import assert_problem

Auth = Callable[..., dict[str, str]]
S3_ONLY = pytest.mark.parametrize("store_kind", ["s3"], indirect=True)
CONNECT_S, READ_S = 1.0, 1.0


class SilentServer:
    """Accepts TCP connections on a loopback port and never reads or answers: a stopped process."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        for conn in self.accepted:
            conn.close()
        self.listener.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    wanted = getattr(request, "param", None)
    if wanted == "hung":
        server: SilentServer = request.getfixturevalue("silent_server")
        return {
            "s3_endpoint": f"127.0.0.1:{server.port}",
            "store_connect_timeout_seconds": CONNECT_S,
            "store_read_timeout_seconds": READ_S,
        }
    if wanted == "no_create":
        return {"s3_create_bucket": False}
    return {}


def _minio(settings: MediaSettings) -> Minio:
    return Minio(
        settings.s3_endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION
    )


def _remove_bucket(client: Minio, bucket: str) -> None:
    names = [DeleteObject(o.object_name or "") for o in client.list_objects(bucket, recursive=True)]
    assert list(client.remove_objects(bucket, names)) == []
    client.remove_bucket(bucket)
    assert not client.bucket_exists(bucket)


@S3_ONLY
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("overrides", ["hung"], indirect=True)
async def test_an_upload_to_a_hung_store_answers_503_within_the_timeouts(
    client: httpx.AsyncClient, auth: Auth, count_rows: Any, silent_server: SilentServer
) -> None:
    village = auth("village", VILLAGE)

    started = time.perf_counter()
    r = await upload(client, village, jpeg(320, 240, seed=91))
    took = time.perf_counter() - started

    assert_problem(r, 503, "store_unavailable")
    assert r.headers["retry-after"].isdigit()
    assert silent_server.accepted, "the store was reached and said nothing"
    # One read timeout (a timeout is not retried) and the connect timeout at most, with room for the test.
    assert took < CONNECT_S + READ_S + 1.5, f"503 after {took:.1f} s"
    assert await count_rows(Photo) == 0

    started = time.perf_counter()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert time.perf_counter() - started < CONNECT_S + READ_S + 1.5


@S3_ONLY
async def test_a_bucket_that_disappeared_is_created_again_on_the_next_write(
    client: httpx.AsyncClient, auth: Auth, settings: MediaSettings, count_rows: Any
) -> None:
    village = auth("village", VILLAGE)
    await uploaded(client, village, jpeg(320, 240, seed=92))
    real = _minio(settings)
    _remove_bucket(real, settings.s3_bucket)

    photo = await uploaded(client, village, jpeg(320, 240, seed=93))

    assert real.bucket_exists(settings.s3_bucket)
    stored = sorted(o.object_name or "" for o in real.list_objects(settings.s3_bucket, recursive=True))
    assert stored == sorted(keys.content_keys(photo["sha256"]))
    rules = real.get_bucket_lifecycle(settings.s3_bucket)  # the backstop on incoming/ comes back too
    assert rules is not None and [r.rule_filter.prefix for r in rules.rules] == ["incoming/"]
    assert await count_rows(Photo) == 2


@S3_ONLY
@pytest.mark.parametrize("overrides", ["no_create"], indirect=True)
async def test_a_bucket_that_disappeared_is_not_created_where_the_service_may_not(
    client: httpx.AsyncClient, auth: Auth, settings: MediaSettings, count_rows: Any
) -> None:
    real = _minio(settings)
    if not real.bucket_exists(settings.s3_bucket):
        real.make_bucket(settings.s3_bucket)
    village = auth("village", VILLAGE)
    await uploaded(client, village, jpeg(320, 240, seed=94))
    _remove_bucket(real, settings.s3_bucket)

    r = await upload(client, village, jpeg(320, 240, seed=95))

    assert_problem(r, 503, "store_unavailable")
    assert not real.bucket_exists(settings.s3_bucket)
    assert await count_rows(Photo, col(Photo.uploader).is_not(None)) == 1
