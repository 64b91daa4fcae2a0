"""The lifecycle's tests: the issues app with a real media app wired in-process as its peer.

The media app runs its own migrated database and local store; it trusts the issues app's keys, and the
issues app reaches it through an httpx client on the ASGI transport, with the service token it signs
itself — the same HTTP calls as between the running services, without the processes.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from services.issues.app import _self_minted
from services.issues.deps import IssuesState
from services.kit.jwt import JWKSCache, TokenVerifier
from services.kit.peers import Peer
from services.kit.state import typed_state
from services.media.app import create_app as create_media_app
from services.media.models import metadata as media_metadata
from tests.databases import Templates
from tests.media import photos
from tests.media.images import jpeg
from tests.support.apps import AUDIENCE, ISSUER, MEDIA, client_for, running
from tests.support.builders import VILLAGE

MEDIA_BASE = "http://media.test"
POINT = (36.4312, 120.4471)  # 前庄村, roughly


@dataclass
class Media:
    client: httpx.AsyncClient
    app: FastAPI

    async def upload(self, headers: dict[str, str], data: bytes | None = None, *, seed: int = 1) -> str:
        """Upload a photo as the holder of `headers`; its id."""
        answer = await self.client.post(
            "/v1/photos",
            headers=headers,
            files={"file": ("photo.jpg", data or jpeg(seed=seed), "image/jpeg")},
            data={"purpose": "before"},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def photo(self, photo_id: str, headers: dict[str, str]) -> dict[str, Any]:
        answer = await self.client.get(f"/v1/photos/{photo_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
async def media(app: FastAPI, backend: str, templates: Templates, tmp_path: Path) -> AsyncIterator[Media]:
    """A media app on its own database, wired as the issues app's peer for this test."""
    state = typed_state(app, IssuesState)
    template = await asyncio.to_thread(templates.template, "media", backend)
    url = await templates.copy("media", backend, template, tmp_path, metadata=media_metadata)

    async def issuer_keys() -> dict[str, Any]:
        jwks: dict[str, Any] = state.keyring.jwks()
        return jwks

    verifier = TokenVerifier(JWKSCache(issuer_keys, min_refresh_interval=0), issuer=ISSUER, audience=AUDIENCE)
    settings = MEDIA.settings(database_url=url, data_dir=tmp_path / "media", token_issuer=ISSUER)
    media_app = create_media_app(settings, verifier=verifier)
    async with running(media_app), client_for(media_app, MEDIA_BASE) as client:
        transport = httpx.ASGITransport(app=media_app)
        async with httpx.AsyncClient(transport=transport, base_url=MEDIA_BASE) as peer_http:
            state.media = Peer("media", MEDIA_BASE, peer_http, _self_minted(state.keyring, state.settings))
            try:
                yield Media(client, media_app)
            finally:
                state.media = None


@functools.cache
def scene(seed: int) -> Image.Image:
    """A photo-like scene with enough structure for reuse detection (tests/media/photos.py)."""
    return photos.camera(seed, (1280, 960))


def scene_jpeg(seed: int, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    scene(seed).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def report(**changes: Any) -> dict[str, Any]:
    """A valid POST /v1/issues body: an inspector's finding in 前庄村."""
    return {
        "category": "luan-dui-fang",
        "region": VILLAGE,
        "source": "inspection",
        "severity": "normal",
        "description": "村东头路边堆放建筑垃圾约2立方米",
        "latitude": POINT[0],
        "longitude": POINT[1],
        "address": "前庄村东首",
        **changes,
    }


Auth = Callable[..., dict[str, str]]


async def reported(client: httpx.AsyncClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    """`POST /v1/issues` of `report(**changes)`, which must answer 201: the new issue."""
    answer = await client.post("/v1/issues", json=report(**changes), headers=headers)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def act(
    client: httpx.AsyncClient, issue_id: int, action: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    """`POST /v1/issues/{issue_id}/actions/{action}` with `body`."""
    return await client.post(f"/v1/issues/{issue_id}/actions/{action}", json=body, headers=headers)
