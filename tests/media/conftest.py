"""The media service under test: real migrated databases (SQLite, PostgreSQL) × object stores (a local
folder, S3 through moto). Tokens are signed with the session's test keys (`auth`, from the root conftest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from minio import Minio
from minio.deleteobjects import DeleteObject

from services.kit.state import typed_state
from services.media.deps import MediaState
from services.media.settings import MediaSettings
from services.media.storage import LocalStore
from tests.media.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, start_s3_server, unique_bucket
from tests.support.apps import MEDIA, Service


@pytest.fixture
def service() -> Service:
    return MEDIA


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


def s3_client(server: S3Server) -> Minio:
    return Minio(server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION)


@pytest.fixture(scope="session")
def media_bucket() -> str:
    """The bucket the media app under test uses on S3, emptied before each test."""
    return unique_bucket()


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def service_values(store_kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    values: dict[str, Any] = {"store": store_kind}
    if store_kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket: str = request.getfixturevalue("media_bucket")
        _empty(s3_client(server), bucket)
        values.update(
            s3_endpoint=server.endpoint,
            s3_public_endpoint=server.public_endpoint,
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            s3_bucket=bucket,
            s3_region=REGION,
        )
    return values


def _empty(client: Minio, bucket: str) -> None:
    if client.bucket_exists(bucket):
        names = [DeleteObject(o.object_name or "") for o in client.list_objects(bucket, recursive=True)]
        if names:
            errors = list(client.remove_objects(bucket, names))
            assert errors == [], errors


@pytest.fixture
def media_state(app: FastAPI) -> MediaState:
    """The running media app's parts: `.store`, `.intake`, `.database`, `.settings`."""
    return typed_state(app, MediaState)


@pytest.fixture
def stored_objects(media_state: MediaState, settings: MediaSettings) -> Callable[[], list[str]]:
    """Every object key now in the store (local folder or S3 bucket)."""

    def keys() -> list[str]:
        if isinstance(media_state.store, LocalStore):
            root = settings.objects_dir
            return sorted(
                str(p.relative_to(root))
                for p in root.rglob("*")
                if p.is_file() and not p.relative_to(root).parts[0].startswith(".")
            )
        client = Minio(
            settings.s3_endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION
        )
        return sorted(o.object_name or "" for o in client.list_objects(settings.s3_bucket, recursive=True))

    return keys
