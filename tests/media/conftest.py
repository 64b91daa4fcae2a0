"""Media app fixtures: real migrated databases (SQLite, PostgreSQL) × object stores (local folder, S3 via moto)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from minio import Minio
from sqlalchemy import func, select

from services.issues.auth.keys import KeyRing
from services.issues.auth.rules import ROLE_SCOPES, Role
from services.issues.auth.tokens import mint_access_token
from services.kit.jwt import JWKSCache
from services.media.app import create_app
from services.media.models import metadata as media_metadata
from services.media.settings import MediaSettings
from services.media.storage import LocalStore
from tests.conftest import REGION_PATHS
from tests.databases import Templates
from tests.media.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, start_s3_server, unique_bucket

ISSUER = "http://issues.test"
AUDIENCE = "huanzhi"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    return KeyRing.from_folder(tmp_path_factory.mktemp("keys"), generate_if_empty=True)


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def media_db_url(backend: str, templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    template = await asyncio.to_thread(templates.template, "media", backend)
    url, drop = await templates.copy("media", backend, template, tmp_path, metadata=media_metadata)
    yield url
    await drop()


@pytest.fixture
def media_overrides() -> dict[str, Any]:
    """Override in a test module to change the media app's settings."""
    return {}


@pytest.fixture
def media_settings(
    media_db_url: str,
    tmp_path: Path,
    store_kind: str,
    request: pytest.FixtureRequest,
    media_overrides: dict[str, Any],
) -> MediaSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": media_db_url,
        "data_dir": tmp_path / "data",
        "public_base_url": "http://media.test",
        "token_issuer": ISSUER,
        "token_audience": AUDIENCE,
        "log_json": False,
        "log_level": "WARNING",
        "store": store_kind,
        "sweep_interval_seconds": 3600,
    }
    if store_kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        values.update(
            s3_endpoint=server.endpoint,
            s3_public_endpoint=server.public_endpoint,
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            s3_bucket=unique_bucket(),
            s3_region=REGION,
        )
    values.update(media_overrides)
    return MediaSettings(**values)


@pytest.fixture
async def media_app(media_settings: MediaSettings, keyring: KeyRing) -> AsyncIterator[FastAPI]:
    async def fetch() -> dict[str, Any]:
        jwks: dict[str, Any] = keyring.jwks()
        return jwks

    app = create_app(media_settings, jwks_cache=lambda _app: JWKSCache(fetch, min_refresh_interval=0))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def media_client(media_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=media_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://media.test") as client:
        yield client


@pytest.fixture
def media_auth(keyring: KeyRing) -> Callable[..., dict[str, str]]:
    """`media_auth("village", "370282103201", subject="user:7")` → Authorization headers."""

    def headers(
        role: str, region: str = "370282", *, subject: str | None = None, scopes: list[str] | None = None
    ) -> dict[str, str]:
        token = mint_access_token(
            keyring,
            issuer=ISSUER,
            audience=AUDIENCE,
            lifetime_seconds=600,
            subject=subject or f"user:{role}-{region}",
            role=role,
            region=region,
            region_path="/" if region == "*" else REGION_PATHS[region],
            scopes=ROLE_SCOPES[Role(role)] if scopes is None else scopes,
        ).access_token
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def media_rows(media_app: FastAPI) -> Callable[..., Any]:
    """`await media_rows(Photo)`: rows now in the media database."""

    async def count(model: Any, *where: Any) -> int:
        async with media_app.state.database.sessionmaker() as session:
            return int(
                (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
            )

    return count


@pytest.fixture
def stored_objects(media_app: FastAPI, media_settings: MediaSettings) -> Callable[[], list[str]]:
    """Every object key now in the store (local folder or S3 bucket)."""

    def keys() -> list[str]:
        store = media_app.state.store
        if isinstance(store, LocalStore):
            root = media_settings.objects_dir
            return sorted(
                str(p.relative_to(root))
                for p in root.rglob("*")
                if p.is_file() and not p.relative_to(root).parts[0].startswith(".")
            )
        client = Minio(
            media_settings.s3_endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            secure=False,
            region=REGION,
        )
        return sorted(
            o.object_name or "" for o in client.list_objects(media_settings.s3_bucket, recursive=True)
        )

    return keys
