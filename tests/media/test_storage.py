"""The object store layer: both stores through one interface, the S3 one over the real protocol (moto).

moto does not check presigned signatures, expiry or POST policies, so for S3 the tests read back what we
issue (expiry, key, bucket, host, conditions); the local store's signed links are checked for real through
its routes on a tiny app.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from services.kit.errors import Problem, install_problem_handlers
from services.media.deps import StoreDep
from services.media.storage import (
    InvalidKey,
    LocalStore,
    ObjectStore,
    ObjectTooLarge,
    StoreUnavailable,
    sign_local,
    verify_local_signature,
)
from services.media.storage.routes import router as objects_router
from services.media.storage.s3 import S3Store
from tests.media.s3_server import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    start_s3_server,
    unique_bucket,
)
from tests.support.ports import closed_port

LOCAL_BASE = "http://media.test"
SECRET = b"test-link-secret"
LOCAL_MAX = 64 * 1024
KEY = "originals/ab/cd/abcdef0123456789"
JPEG_ISH = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # ~10 KiB; the store does not look inside

Send = Callable[..., Awaitable[httpx.Response]]


def make_s3_store(server: S3Server, bucket: str | None = None, **kwargs: Any) -> S3Store:
    return S3Store(
        server.endpoint,
        server.public_endpoint,
        ACCESS_KEY,
        SECRET_KEY,
        bucket or unique_bucket(),
        region=REGION,
        **kwargs,
    )


def make_local_store(root: Path) -> LocalStore:
    return LocalStore(root, LOCAL_BASE, SECRET, max_upload_bytes=LOCAL_MAX)


@pytest.fixture(params=["s3", "local"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    made: ObjectStore
    if request.param == "s3":
        made = make_s3_store(request.getfixturevalue("s3_server"))
    else:
        made = make_local_store(tmp_path / "objects")
    await made.ensure_ready()
    return made


@pytest.fixture
async def local_store(tmp_path: Path) -> LocalStore:
    made = make_local_store(tmp_path / "objects")
    await made.ensure_ready()
    return made


def objects_app(store: ObjectStore) -> FastAPI:
    """The signed-link routes alone, over `store` (in the service the store comes from its state)."""
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(objects_router)
    app.dependency_overrides[get_args(StoreDep)[1].dependency] = lambda: store
    return app


@pytest.fixture
async def send(store: ObjectStore) -> AsyncIterator[Send]:
    """Sends a request to a link: local links go to the routes in-process, S3 links to moto over TCP."""
    local = httpx.AsyncClient(transport=httpx.ASGITransport(app=objects_app(store)), base_url=LOCAL_BASE)
    remote = httpx.AsyncClient(timeout=5)

    async def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        client = local if url.startswith(LOCAL_BASE) else remote
        return await client.request(method, url, **kwargs)

    yield request
    await local.aclose()
    await remote.aclose()


@pytest.fixture
async def local_client(local_store: LocalStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=objects_app(local_store))
    async with httpx.AsyncClient(transport=transport, base_url=LOCAL_BASE) as client:
        yield client


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = query_of(url)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urlencode(query)).geturl()


def decoded_policy(fields: dict[str, str]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


def leftover_temp_files(store: LocalStore) -> list[Path]:
    return list((store.root / ".tmp").iterdir())


# Round trips through the interface, on both stores


async def test_put_bytes_then_get_stat_and_delete(store: ObjectStore) -> None:
    await store.put_bytes(KEY, JPEG_ISH, "image/jpeg")

    assert await store.get_bytes(KEY) == JPEG_ISH
    info = await store.stat(KEY)
    assert info is not None
    assert (info.key, info.size, info.content_type) == (KEY, len(JPEG_ISH), "image/jpeg")
    assert info.etag  # MD5 hex on both stores for a single-part object
    assert len(info.etag) == 32

    await store.delete(KEY)
    assert await store.stat(KEY) is None
    with pytest.raises(KeyError):
        await store.get_bytes(KEY)


async def test_put_bytes_replaces_an_existing_object(store: ObjectStore) -> None:
    await store.put_bytes(KEY, b"first", "text/plain")
    await store.put_bytes(KEY, b"second version", "image/png")

    assert await store.get_bytes(KEY) == b"second version"
    info = await store.stat(KEY)
    assert info is not None
    assert (info.size, info.content_type) == (len(b"second version"), "image/png")


async def test_put_file_then_download_to_gives_the_same_bytes(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(JPEG_ISH)
    await store.put_file(KEY, source, "image/jpeg")

    target = tmp_path / "copy.bin"
    written = await store.download_to(KEY, target, max_bytes=len(JPEG_ISH))

    assert written == len(JPEG_ISH)
    assert target.read_bytes() == JPEG_ISH
    assert source.exists()  # the caller's temp file is left for the caller
    info = await store.stat(KEY)
    assert info is not None
    assert info.content_type == "image/jpeg"


async def test_download_to_refuses_an_object_over_max_bytes_and_leaves_no_file(
    store: ObjectStore, tmp_path: Path
) -> None:
    await store.put_bytes(KEY, JPEG_ISH, "image/jpeg")
    target = tmp_path / "copy.bin"

    with pytest.raises(ObjectTooLarge) as refused:
        await store.download_to(KEY, target, max_bytes=len(JPEG_ISH) - 1)

    assert refused.value.status == 413
    assert refused.value.instance_code == "payload_too_large"
    assert not target.exists()
    assert await store.get_bytes(KEY) == JPEG_ISH  # the stored object is untouched


async def test_a_missing_key_is_none_or_key_error_and_delete_is_idempotent(
    store: ObjectStore, tmp_path: Path
) -> None:
    missing = "originals/00/00/missing"

    assert await store.stat(missing) is None
    with pytest.raises(KeyError):
        await store.get_bytes(missing)
    with pytest.raises(KeyError):
        await store.download_to(missing, tmp_path / "x", max_bytes=10)
    assert not (tmp_path / "x").exists()
    await store.delete(missing)
    await store.delete(missing)


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "a/../../b",
        "/abs/path",
        "a//b",
        "a/./b",
        ".tmp/x",
        "a b",
        "photo?.jpg",
        "照片",
        "a\\b",
        "",
    ],
)
async def test_unsafe_keys_are_refused_before_any_io(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put_bytes(key, b"x", "image/jpeg")
    with pytest.raises(InvalidKey):
        await store.get_bytes(key)
    with pytest.raises(InvalidKey):
        store.download_url(key, timedelta(minutes=5))
    with pytest.raises(InvalidKey):
        store.presigned_put(key, timedelta(minutes=5))


# Presigned uploads and downloads, on both stores


async def test_presigned_put_stores_the_bytes_sent_to_the_link(store: ObjectStore, send: Send) -> None:
    url = store.presigned_put(KEY, timedelta(minutes=10))

    response = await send("PUT", url, content=JPEG_ISH, headers={"Content-Type": "image/jpeg"})

    assert response.status_code in (200, 201), response.text
    assert await store.get_bytes(KEY) == JPEG_ISH


async def test_presigned_post_policy_names_bucket_key_size_range_type_and_expiry(store: ObjectStore) -> None:
    before = datetime.now(UTC)
    post = store.presigned_post(KEY, timedelta(minutes=15), max_bytes=5_000_000, content_type_prefix="image/")

    policy = decoded_policy(post.fields)
    conditions = policy["conditions"]
    assert post.key == KEY
    assert post.max_bytes == 5_000_000
    assert post.fields["key"] == KEY
    assert ["eq", "$key", KEY] in conditions
    assert ["content-length-range", 1, 5_000_000] in conditions
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert expiration == post.expires_at
    assert timedelta(minutes=15) - timedelta(seconds=2) <= expiration - before <= timedelta(minutes=15)
    if isinstance(store, S3Store):
        assert ["eq", "$bucket", store.bucket] in conditions
        assert post.url == f"http://{urlsplit(post.url).netloc}/{store.bucket}"


async def test_presigned_post_form_upload_stores_the_file(store: ObjectStore, send: Send) -> None:
    post = store.presigned_post(KEY, timedelta(minutes=5), max_bytes=LOCAL_MAX)

    response = await send(
        "POST",
        post.url,
        data={**post.fields, "Content-Type": "image/jpeg"},
        files={"file": ("photo.jpg", JPEG_ISH, "image/jpeg")},
    )

    assert response.status_code in (200, 201, 204), response.text
    assert await store.get_bytes(KEY) == JPEG_ISH
    info = await store.stat(KEY)
    assert info is not None
    assert info.content_type == "image/jpeg"


async def test_download_url_serves_the_object_with_the_signed_type_and_name(
    store: ObjectStore, send: Send
) -> None:
    await store.put_bytes(KEY, JPEG_ISH, "application/octet-stream")
    url = store.download_url(KEY, timedelta(minutes=5), content_type="image/jpeg", filename="整改后.jpg")

    response = await send("GET", url)

    assert response.status_code == 200
    assert response.content == JPEG_ISH
    assert response.headers["content-type"] == "image/jpeg"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("inline")
    assert "filename*=utf-8''%e6%95%b4%e6%94%b9%e5%90%8e.jpg" in disposition.lower()
    assert response.headers["cache-control"].startswith("private, max-age=")
    assert 0 < int(response.headers["cache-control"].rsplit("=", 1)[1]) <= 300


# What we issue for S3 (moto does not check it)


async def test_s3_presigned_put_is_signed_for_the_public_endpoint_with_the_expiry(
    s3_server: S3Server,
) -> None:
    store = make_s3_store(s3_server)

    url = store.presigned_put(KEY, timedelta(minutes=10))

    parts = urlsplit(url)
    query = query_of(url)
    assert parts.scheme == "http"
    assert parts.netloc == s3_server.public_endpoint != s3_server.endpoint
    assert parts.path == f"/{store.bucket}/{KEY}"
    assert query["X-Amz-Expires"] == "600"
    assert query["X-Amz-SignedHeaders"] == "host"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    access_key, _day, region, service, terminator = query["X-Amz-Credential"].split("/")
    assert (access_key, region, service, terminator) == (ACCESS_KEY, REGION, "s3", "aws4_request")
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 5
    assert len(query["X-Amz-Signature"]) == 64


async def test_s3_download_url_asks_for_the_type_name_and_private_caching(s3_server: S3Server) -> None:
    store = make_s3_store(s3_server)

    url = store.download_url(KEY, timedelta(minutes=5), content_type="image/webp", filename="a.webp")

    query = query_of(url)
    assert urlsplit(url).netloc == s3_server.public_endpoint
    assert query["X-Amz-Expires"] == "300"
    assert query["response-content-type"] == "image/webp"
    assert query["response-content-disposition"].startswith('inline; filename="a.webp"')
    assert query["response-cache-control"] == "private, max-age=300"


async def test_s3_presigned_post_is_signed_by_the_store_credentials(s3_server: S3Server) -> None:
    store = make_s3_store(s3_server)

    post = store.presigned_post(KEY, timedelta(minutes=5), max_bytes=1000)

    conditions = decoded_policy(post.fields)["conditions"]
    assert urlsplit(post.url).netloc == s3_server.public_endpoint
    assert post.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert post.fields["x-amz-credential"].startswith(f"{ACCESS_KEY}/")
    assert ["eq", "$x-amz-credential", post.fields["x-amz-credential"]] in conditions
    assert len(post.fields["x-amz-signature"]) == 64


def test_s3_endpoints_given_as_urls_choose_tls_by_their_scheme() -> None:
    store = S3Store("http://minio:9000", "https://img.example.cn", "k", "s", "huanzhi-media")

    url = store.presigned_put(KEY, timedelta(minutes=1))

    assert url.startswith(f"https://img.example.cn/huanzhi-media/{KEY}?")
    assert store.public_bucket_url == "https://img.example.cn/huanzhi-media"


# Readiness, and a store that is down


async def test_s3_ensure_ready_creates_the_bucket(s3_server: S3Server) -> None:
    store = make_s3_store(s3_server)
    assert await store.healthy() is False  # no bucket yet

    await store.ensure_ready()
    await store.ensure_ready()  # a second start finds it there

    assert await store.healthy() is True
    await store.put_bytes(KEY, b"x", "image/jpeg")
    assert await store.get_bytes(KEY) == b"x"


async def test_s3_ensure_ready_expires_temporary_objects_on_a_bucket_without_lifecycle_rules(
    s3_server: S3Server,
) -> None:
    store = make_s3_store(s3_server, temporary_prefix="incoming/", temporary_days=1)
    await store.ensure_ready()
    await store.ensure_ready()  # a restart finds its rule there and changes nothing

    real = Minio(
        s3_server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION
    )
    (ours,) = real.get_bucket_lifecycle(store.bucket).rules
    assert ours.rule_id == "huanzhi-expire-temporary"
    assert ours.rule_filter.prefix == "incoming/"
    assert ours.expiration.days == 1
    assert ours.status == ENABLED


async def test_s3_ensure_ready_leaves_a_lifecycle_configuration_of_someone_else_alone(
    s3_server: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = unique_bucket()
    real = Minio(
        s3_server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION
    )
    real.make_bucket(bucket)
    theirs = Rule(
        ENABLED, rule_filter=Filter(prefix="logs/"), rule_id="theirs", expiration=Expiration(days=30)
    )
    real.set_bucket_lifecycle(bucket, LifecycleConfig([theirs]))
    store = make_s3_store(s3_server, bucket, temporary_prefix="incoming/")

    await store.ensure_ready()

    assert [r.rule_id for r in real.get_bucket_lifecycle(bucket).rules] == ["theirs"]
    assert "add a rule expiring incoming/" in caplog.text
    assert await store.healthy() is True


async def test_s3_ensure_ready_without_permission_to_create_refuses_a_missing_bucket(
    s3_server: S3Server,
) -> None:
    store = make_s3_store(s3_server, create_bucket=False)

    with pytest.raises(StoreUnavailable):
        await store.ensure_ready()
    assert await store.healthy() is False


async def assert_unavailable_quickly(store: ObjectStore, tmp_path: Path) -> None:
    operations: list[Callable[[], Awaitable[object]]] = [
        store.ensure_ready,
        lambda: store.put_bytes(KEY, b"x", "image/jpeg"),
        lambda: store.get_bytes(KEY),
        lambda: store.stat(KEY),
        lambda: store.delete(KEY),
        lambda: store.download_to(KEY, tmp_path / "x", max_bytes=10),
    ]
    for operation in operations:
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable) as refused:
            await operation()
        assert time.perf_counter() - started < 3
        assert refused.value.status == 503
        assert refused.value.instance_code == "store_unavailable"
        assert refused.value.headers["Retry-After"].isdigit()
    started = time.perf_counter()
    assert await store.healthy() is False
    assert time.perf_counter() - started < 3


async def test_s3_store_on_a_closed_port_is_unavailable_quickly(tmp_path: Path) -> None:
    port = closed_port()
    store = S3Store(f"127.0.0.1:{port}", None, ACCESS_KEY, SECRET_KEY, "huanzhi-media")

    await assert_unavailable_quickly(store, tmp_path)


async def test_s3_store_whose_server_stopped_is_unavailable_quickly(tmp_path: Path) -> None:
    server = start_s3_server()
    try:
        store = make_s3_store(server)
        await store.ensure_ready()
        await store.put_bytes(KEY, b"x", "image/jpeg")  # the pool now holds a live connection
        server.stop()

        await assert_unavailable_quickly(store, tmp_path)
    finally:
        server.stop()


async def test_local_ensure_ready_creates_the_folder(tmp_path: Path) -> None:
    store = make_local_store(tmp_path / "new" / "objects")
    assert await store.healthy() is False

    await store.ensure_ready()

    assert await store.healthy() is True
    assert (tmp_path / "new" / "objects").is_dir()


async def test_local_store_on_an_unusable_folder_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    store = make_local_store(blocker / "objects")

    with pytest.raises(StoreUnavailable):
        await store.ensure_ready()
    with pytest.raises(StoreUnavailable):
        await store.put_bytes(KEY, b"x", "image/jpeg")
    assert await store.healthy() is False


async def test_local_store_writes_atomically_and_leaves_no_temp_files(local_store: LocalStore) -> None:
    await local_store.put_bytes(KEY, JPEG_ISH, "image/jpeg")

    assert local_store.path_for(KEY).read_bytes() == JPEG_ISH
    assert local_store.path_for(KEY) == local_store.root / KEY
    assert leftover_temp_files(local_store) == []


def test_store_unavailable_is_a_503_problem_with_retry_after() -> None:
    problem = StoreUnavailable()

    assert isinstance(problem, Problem)
    assert (problem.status, problem.instance_code) == (503, "store_unavailable")
    assert problem.headers == {"Retry-After": "5"}


# The local store's signed links, through its routes


def test_local_signature_verifies_and_rejects_changes() -> None:
    exp = int(time.time()) + 60
    sig = sign_local(SECRET, "GET", KEY, exp, content_type="image/jpeg")

    assert verify_local_signature(SECRET, "GET", KEY, str(exp), sig, content_type="image/jpeg") == exp
    changed: list[dict[str, Any]] = [
        {"method": "PUT"},
        {"key": KEY + "x"},
        {"exp": str(exp + 1)},
        {"sig": sig[:-1] + ("0" if sig[-1] != "0" else "1")},
        {"content_type": "image/png"},
        {"content_type": None},
        {"secret": b"another secret"},
        {"exp": "soon"},
        {"sig": None},
        {"sig": "é" * 64},
    ]
    for change in changed:
        args: dict[str, Any] = {
            "secret": SECRET,
            "method": "GET",
            "key": KEY,
            "exp": str(exp),
            "sig": sig,
            "content_type": "image/jpeg",
        } | change
        with pytest.raises(Problem) as refused:
            verify_local_signature(
                args["secret"],
                args["method"],
                args["key"],
                args["exp"],
                args["sig"],
                content_type=args["content_type"],
            )
        assert (refused.value.status, refused.value.instance_code) == (403, "bad_signature"), change


async def test_local_download_link_refuses_a_changed_key_expiry_signature_or_type(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    other = "originals/ab/cd/other"
    await local_store.put_bytes(KEY, JPEG_ISH, "image/jpeg")
    await local_store.put_bytes(other, b"other", "image/jpeg")
    url = local_store.download_url(KEY, timedelta(minutes=5), content_type="image/jpeg")
    query = query_of(url)
    tampered = [
        url.replace(KEY, other),
        with_query(url, exp=str(int(query["exp"]) + 3600)),
        with_query(url, sig="0" * 64),
        with_query(url, sig=None),
        with_query(url, ct="text/html"),
        with_query(url, fn="evil.html"),
    ]

    assert (await local_client.get(url)).status_code == 200
    for link in tampered:
        response = await local_client.get(link)
        assert response.status_code == 403, link
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "bad_signature"
        assert response.content != JPEG_ISH


async def test_local_expired_link_is_refused(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    await local_store.put_bytes(KEY, JPEG_ISH, "image/jpeg")
    exp = int(time.time()) - 1
    sig = sign_local(SECRET, "GET", KEY, exp)

    response = await local_client.get(f"/v1/media/objects/{KEY}", params={"exp": exp, "sig": sig})

    assert response.status_code == 403
    assert response.json()["code"] == "link_expired"


async def test_local_download_of_a_missing_object_is_404(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    response = await local_client.get(local_store.download_url("originals/00/missing", timedelta(minutes=1)))

    assert response.status_code == 404
    assert response.json()["code"] == "object_not_found"


async def test_local_routes_hide_unsafe_keys(local_client: httpx.AsyncClient) -> None:
    for path in ["/v1/media/objects/.meta/x", "/v1/media/objects/a%20b", "/v1/media/objects/a/%2E%2E/b"]:
        response = await local_client.get(path, params={"exp": "1", "sig": "0"})
        assert response.status_code == 404, path


async def test_local_routes_answer_404_when_the_store_is_s3(s3_server: S3Server) -> None:
    transport = httpx.ASGITransport(app=objects_app(make_s3_store(s3_server)))
    async with httpx.AsyncClient(transport=transport, base_url=LOCAL_BASE) as client:
        response = await client.put(f"/v1/media/objects/{KEY}", content=b"x", params={"exp": "1", "sig": "0"})

    assert response.status_code == 404


async def test_local_put_link_refuses_a_changed_key_or_content_type(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    url = local_store.presigned_put(KEY, timedelta(minutes=5), content_type="image/jpeg")

    moved = await local_client.put(url.replace(KEY, "originals/ab/cd/else"), content=JPEG_ISH)
    retyped = await local_client.put(url, content=JPEG_ISH, headers={"Content-Type": "text/html"})
    unsigned = await local_client.put(with_query(url, ct=None), content=JPEG_ISH)

    for response in (moved, retyped, unsigned):
        assert response.status_code == 403
        assert response.json()["code"] == "bad_signature"
    assert await local_store.stat(KEY) is None
    assert await local_store.stat("originals/ab/cd/else") is None

    accepted = await local_client.put(url, content=JPEG_ISH, headers={"Content-Type": "image/jpeg"})
    assert accepted.status_code == 201
    assert accepted.json() == {
        "key": KEY,
        "size": len(JPEG_ISH),
        "content_type": "image/jpeg",
        "etag": accepted.json()["etag"],
    }
    assert await local_store.get_bytes(KEY) == JPEG_ISH


async def test_local_put_over_the_limit_with_its_length_declared_is_413_and_stores_nothing(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    url = local_store.presigned_put(KEY, timedelta(minutes=5))

    response = await local_client.put(url, content=b"x" * (LOCAL_MAX + 1))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert await local_store.stat(KEY) is None
    assert leftover_temp_files(local_store) == []


async def test_local_put_streamed_over_the_limit_stops_reading_at_the_limit(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    url = local_store.presigned_put(KEY, timedelta(minutes=5))
    chunk = b"y" * 8192
    pulled = 0

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        nonlocal pulled
        for _ in range(100):  # 800 KiB against a 64 KiB limit
            pulled += 1
            yield chunk

    response = await local_client.put(url, content=body())

    assert response.status_code == 413
    assert pulled <= LOCAL_MAX // len(chunk) + 2
    assert await local_store.stat(KEY) is None
    assert leftover_temp_files(local_store) == []


async def test_local_put_at_exactly_the_limit_is_stored(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    url = local_store.presigned_put(KEY, timedelta(minutes=5))

    response = await local_client.put(url, content=b"z" * LOCAL_MAX)

    assert response.status_code == 201
    info = await local_store.stat(KEY)
    assert info is not None
    assert info.size == LOCAL_MAX


async def test_local_post_refuses_changed_limits_types_keys_and_sizes(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    post = local_store.presigned_post(KEY, timedelta(minutes=5), max_bytes=1000)
    fields = {**post.fields, "Content-Type": "image/jpeg"}
    small = ("photo.jpg", b"\xff\xd8" + b"a" * 500, "image/jpeg")
    attempts: list[tuple[dict[str, str], tuple[str, bytes, str], int, str]] = [
        ({**fields, "max_bytes": "100000"}, small, 403, "bad_signature"),
        ({**fields, "content_type_prefix": ""}, small, 403, "bad_signature"),
        ({**fields, "exp": str(int(fields["exp"]) + 60)}, small, 403, "bad_signature"),
        ({**fields, "key": "originals/ab/cd/else"}, small, 403, "policy_condition_failed"),
        ({**fields, "Content-Type": "text/html"}, small, 403, "policy_condition_failed"),
        (fields, ("photo.jpg", b"a" * 1001, "image/jpeg"), 413, "payload_too_large"),
        (fields, ("photo.jpg", b"", "image/jpeg"), 400, "empty_object"),
    ]

    for data, file, status, code in attempts:
        response = await local_client.post(post.url, data=data, files={"file": file})
        assert (response.status_code, response.json()["code"]) == (status, code), data
    assert await local_store.stat(KEY) is None
    assert await local_store.stat("originals/ab/cd/else") is None
    assert leftover_temp_files(local_store) == []

    accepted = await local_client.post(post.url, data=fields, files={"file": small})
    assert accepted.status_code == 201
    assert await local_store.get_bytes(KEY) == small[1]


async def test_local_post_body_over_the_store_ceiling_is_413_and_stores_nothing(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    post = local_store.presigned_post(KEY, timedelta(minutes=5), max_bytes=LOCAL_MAX)

    response = await local_client.post(
        post.url,
        data={**post.fields, "Content-Type": "image/jpeg"},
        files={"file": ("big.jpg", b"b" * (LOCAL_MAX * 3), "image/jpeg")},
    )

    assert response.status_code == 413
    assert await local_store.stat(KEY) is None
    assert leftover_temp_files(local_store) == []


async def test_local_post_streamed_over_the_store_ceiling_stops_reading(
    local_store: LocalStore, local_client: httpx.AsyncClient
) -> None:
    post = local_store.presigned_post(KEY, timedelta(minutes=5), max_bytes=LOCAL_MAX)
    form = httpx.Request(
        "POST",
        post.url,
        data={**post.fields, "Content-Type": "image/jpeg"},
        files={"file": ("big.jpg", b"b" * (LOCAL_MAX * 10), "image/jpeg")},
    )
    encoded = form.read()
    chunk = 8192
    pulled = 0

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: only the stream tells the size
        nonlocal pulled
        for start in range(0, len(encoded), chunk):
            pulled += 1
            yield encoded[start : start + chunk]

    response = await local_client.post(
        post.url, content=body(), headers={"Content-Type": form.headers["Content-Type"]}
    )

    assert response.status_code == 413
    assert pulled * chunk <= LOCAL_MAX * 2 + 2 * chunk  # stopped near the ceiling, not after 640 KiB
    assert await local_store.stat(KEY) is None
    assert leftover_temp_files(local_store) == []
