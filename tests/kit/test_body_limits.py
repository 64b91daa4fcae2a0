"""Which body limit a path gets: exact paths, a trailing slash alike, and subtrees for keys ending in "/"."""

from __future__ import annotations

from typing import Any

import pytest

from services.kit.observability import Metrics, RequestContextMiddleware

JSON_LIMIT, PHOTO_LIMIT = 1_048_576, 20 * 1_048_576


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/v1/photos", PHOTO_LIMIT),
        ("/v1/photos/", PHOTO_LIMIT),  # redirected to /v1/photos by the router: the same limit
        ("/v1/photos/5b2e/redactions", JSON_LIMIT),
        ("/v1/photos/5b2e/attach", JSON_LIMIT),
        ("/v1/media/objects/incoming/8d0c", PHOTO_LIMIT),
        ("/v1/media/objects", PHOTO_LIMIT),  # a subtree key covers its own root too
        ("/v1/photosx", JSON_LIMIT),
    ],
)
def test_a_path_gets_its_own_limit_or_the_json_one(path: str, limit: int) -> None:
    middleware = RequestContextMiddleware(
        _app,
        metrics=Metrics("test"),
        max_body_bytes=JSON_LIMIT,
        body_limits={"/v1/photos": PHOTO_LIMIT, "/v1/media/objects/": PHOTO_LIMIT},
    )
    assert middleware._limit_for(path) == limit
