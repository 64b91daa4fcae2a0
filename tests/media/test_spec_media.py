"""The media service's OpenAPI says what its code does: the content redirect, and the full `Allow` of a 405."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.media.api import VILLAGE, uploaded
from tests.media.images import jpeg
from tests.support.problems import assert_problem

pytestmark = [pytest.mark.asyncio, pytest.mark.parametrize("store_kind", ["local"], indirect=True)]

Auth = Callable[..., dict[str, str]]


async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


async def test_content_is_documented_as_a_redirect_without_a_body(client: httpx.AsyncClient) -> None:
    responses = (await spec(client))["paths"]["/v1/photos/{photo_id}/content"]["get"]["responses"]
    redirect = responses["307"]
    assert "content" not in redirect, redirect
    location = redirect["headers"]["Location"]
    assert location["required"] is True
    assert location["schema"] == {"type": "string", "format": "uri"}
    assert "200" not in responses


async def test_content_answers_the_documented_redirect(client: httpx.AsyncClient, auth: Auth) -> None:
    village = auth("village", VILLAGE)
    photo = await uploaded(client, village, jpeg(640, 480, seed=3))
    r = await client.get(f"/v1/photos/{photo['id']}/content", params={"variant": "thumb"}, headers=village)
    assert r.status_code == 307
    assert r.content == b""
    assert httpx.URL(r.headers["location"]).is_absolute_url


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/photos", "GET, POST"),
        ("OPTIONS", "/v1/photos", "GET, POST"),
        ("PATCH", "/v1/photos/p_1", "DELETE, GET"),
        ("PUT", "/v1/photos/p_1/content", "GET"),
        ("GET", "/v1/uploads", "POST"),
    ],
)
async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, auth: Auth, method: str, path: str, allow: str
) -> None:
    r = await client.request(method, path, headers=auth("village", VILLAGE))
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow
    documented = (await spec(client))["paths"]
    template = {
        "/v1/photos/p_1": "/v1/photos/{photo_id}",
        "/v1/photos/p_1/content": "/v1/photos/{photo_id}/content",
    }
    assert {m.upper() for m in documented[template.get(path, path)]} == set(allow.split(", "))


async def test_a_nul_in_the_batch_ids_is_a_422_not_a_failed_query(
    client: httpx.AsyncClient, auth: Any
) -> None:
    answer = await client.get("/v1/photos", params={"ids": "abc\x00def"}, headers=auth("admin"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_failed"
