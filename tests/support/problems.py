"""RFC 9457 problem details as every service answers them."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPES = "https://huanzhi.dev/problems/"


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is a problem with this status and stable `code`, carrying the request's id; its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON, r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert (body["status"], body["code"]) == (status, code), body
    assert body["type"] == PROBLEM_TYPES + code and body["title"], body
    assert body["request_id"] and body["request_id"] == r.headers["x-request-id"], body
    return body


def assert_unauthorized(r: httpx.Response, code: str = "invalid_token") -> dict[str, Any]:
    """A 401 problem that tells the client to bring a bearer token (RFC 6750)."""
    body = assert_problem(r, 401, code)
    assert r.headers["www-authenticate"].startswith("Bearer")
    return body
