"""Helpers for the media API tests: regions, uploading, reading problems, following signed links."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from services.kit.identity import Subject, service_client_id
from tests.media.s3_server import unique_bucket
from tests.support.builders import COUNTY, FAR_VILLAGE, NEIGHBOUR, OTHER_TOWN, TOWN, VILLAGE
from tests.support.ports import closed_port

__all__ = ["COUNTY", "FAR_VILLAGE", "NEIGHBOUR", "OTHER_TOWN", "TOWN", "VILLAGE"]

# The issues service pinning photos to issues: `auth(**ATTACHER)`.
ATTACHER: dict[str, Any] = {
    "role": "service",
    "region": "*",
    "subject": Subject.client(service_client_id("issues")),
}

LOCAL_BASE = "http://media.test"


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    *,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    **fields: str,
) -> httpx.Response:
    """POST /v1/photos the way wx.uploadFile does: the file in `file`, other fields beside it."""
    return await client.post(
        "/v1/photos", headers=headers, files={"file": (filename, data, content_type)}, data=fields
    )


async def uploaded(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **fields: str
) -> dict[str, Any]:
    """Upload and return the 201 body (failing the test otherwise)."""
    r = await upload(client, headers, data, **fields)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def flags(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A photo's flags by code."""
    return {f["code"]: f for f in body["flags"]}


def spooled(data_dir: Path) -> list[Path]:
    """Files the service left in its spool folder (every request must clean up after itself)."""
    folder = data_dir / "tmp"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def follow(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET a signed link: local-store links through the media app, S3 links straight from the store."""
    if url.startswith(LOCAL_BASE):
        return await client.get(url)
    async with httpx.AsyncClient(timeout=10) as plain:
        return await plain.get(url)


async def variant(
    client: httpx.AsyncClient, headers: dict[str, str], photo_id: str, name: str
) -> tuple[str, httpx.Response]:
    """Ask for a variant's link (307) and fetch it: (the signed URL, the store's answer)."""
    r = await client.get(f"/v1/photos/{photo_id}/content", params={"variant": name}, headers=headers)
    assert r.status_code == 307, r.text
    assert r.headers["cache-control"] == "no-store"
    url = r.headers["location"]
    return url, await follow(client, url)


def picture(data: bytes) -> Image.Image:
    """Decoded bytes (loaded, so the buffer can go)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def unreachable_store(tmp_path: Path) -> dict[str, Any]:
    """Media settings under which neither store answers: S3 on a closed port (and a bucket never made), the
    local folder under a file."""
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_bytes(b"")
    return {
        "s3_endpoint": f"127.0.0.1:{closed_port()}",
        "s3_bucket": unique_bucket(),
        "local_store_dir": blocker / "objects",
    }


async def open_slot(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/uploads", headers=headers, json=body)
    assert r.status_code == 201, r.text
    slot: dict[str, Any] = r.json()
    return slot


async def put_bytes(client: httpx.AsyncClient, url: str, data: bytes) -> httpx.Response:
    """PUT to a slot's URL the way a client would: to the service (local store) or to the store (S3)."""
    headers = {"Content-Type": "image/jpeg"}
    if url.startswith(LOCAL_BASE):
        return await client.put(url, content=data, headers=headers)
    async with httpx.AsyncClient(timeout=10) as plain:
        return await plain.put(url, content=data, headers=headers)


async def complete(client: httpx.AsyncClient, headers: dict[str, str], upload_id: str) -> httpx.Response:
    return await client.post(f"/v1/uploads/{upload_id}/complete", headers=headers)
