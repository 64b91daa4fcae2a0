"""Problem details, request ids, body limits, health and the OpenAPI document, through the issues app."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from services.issues.users.models import User
from services.kit.app import ApiInfo, build_app
from services.kit.db import Database
from services.kit.observability import JsonFormatter
from services.kit.settings import ServiceSettings
from services.kit.state import ServiceState, state_of
from tests.support.apps import bare_state, client_for, running
from tests.support.problems import PROBLEM_JSON as PROBLEM
from tests.support.problems import assert_problem

TEN_MB = 10 * 1024 * 1024


async def test_an_unknown_path_is_not_found(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/no-such-thing"), 404, "not_found")
    assert body["instance"] == "/v1/no-such-thing"


async def test_a_wrong_method_is_method_not_allowed(client: httpx.AsyncClient) -> None:
    r = await client.delete("/v1/auth/token")
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


async def test_malformed_json_is_400(client: httpx.AsyncClient, count_rows: Callable[..., Any]) -> None:
    users_before = await count_rows(User)
    r = await client.post(
        "/v1/auth/wechat", content=b'{"code": "abc"', headers={"content-type": "application/json"}
    )
    body = assert_problem(r, 400, "malformed_json")
    assert body["detail"] == "the request body is not valid JSON"
    assert await count_rows(User) == users_before


async def test_a_10mb_body_with_its_length_declared_is_413(
    client: httpx.AsyncClient, count_rows: Callable[..., Any]
) -> None:
    users_before = await count_rows(User)
    payload = json.dumps({"code": "x" * TEN_MB}).encode()
    r = await client.post("/v1/auth/wechat", content=payload, headers={"content-type": "application/json"})
    body = assert_problem(r, 413, "payload_too_large")
    assert "1048576" in body["detail"]
    assert await count_rows(User) == users_before


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/v1/auth/wechat", "application/json"), ("/v1/auth/token", "application/x-www-form-urlencoded")],
)
async def test_a_10mb_chunked_body_without_a_length_is_413(
    client: httpx.AsyncClient, count_rows: Callable[..., Any], path: str, content_type: str
) -> None:
    users_before = await count_rows(User)
    chunks = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks
        yield b'{"code": "' if content_type == "application/json" else b"grant_type=password&username="
        for _ in range(10):
            chunks += 1
            yield b"x" * (1024 * 1024)
        yield b'"}'

    r = await client.post(path, content=body(), headers={"content-type": content_type})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload_too_large")
    assert await count_rows(User) == users_before


async def test_a_body_just_under_the_limit_is_read(client: httpx.AsyncClient) -> None:
    payload = json.dumps({"code": "x" * (1024 * 1024 - 100)}).encode()
    r = await client.post("/v1/auth/wechat", content=payload, headers={"content-type": "application/json"})
    body = assert_problem(r, 422, "validation_failed")  # the code is too long, but the body was read
    assert body["errors"][0]["field"] == "body.code"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/nowhere", {}, 404),
        ("PUT", "/healthz", {}, 405),
        ("GET", "/v1/auth/caller", {}, 401),
        ("GET", "/v1/auth/caller", {"headers": {"Authorization": "Bearer x.y.z"}}, 401),
        ("POST", "/v1/auth/wechat", {"json": {}}, 422),
        (
            "POST",
            "/v1/auth/token",
            {"data": {"grant_type": "password", "username": "a", "password": "b"}},
            401,
        ),
        ("POST", "/v1/auth/token", {"content": b"x", "headers": {"content-type": "text/plain"}}, 415),
    ],
)
async def test_every_problem_has_the_standard_members_and_the_request_id(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    r = await client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert_problem(r, status, r.json()["code"])


async def test_an_incoming_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere", headers={"X-Request-ID": "gateway-7f3a9c2e.1"})
    assert r.headers["x-request-id"] == "gateway-7f3a9c2e.1"
    assert r.json()["request_id"] == "gateway-7f3a9c2e.1"
    ok = await client.get("/healthz", headers={"X-Request-ID": "gateway-7f3a9c2e.2"})
    assert ok.headers["x-request-id"] == "gateway-7f3a9c2e.2"


@pytest.mark.parametrize("incoming", ["short", "has spaces in it", "x" * 129, "new\\nline-injection"])
async def test_an_unusable_request_id_is_replaced(client: httpx.AsyncClient, incoming: str) -> None:
    r = await client.get("/nowhere", headers={"X-Request-ID": incoming})
    assert r.headers["x-request-id"] != incoming
    assert len(r.headers["x-request-id"]) == 32
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_each_request_gets_its_own_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def _requests_total(metrics: str, labels: str) -> float:
    """The `http_requests_total` sample with exactly these labels (0 before the first such request)."""
    prefix = "http_requests_total{" + labels + "} "
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    healthz = 'method="GET",route="/healthz",service="issues",status="200"'
    before = _requests_total((await client.get("/metrics")).text, healthz)
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "service": "issues"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["checks"]["database"] == "ok"
    await client.get("/nowhere")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert "# TYPE http_requests_total counter" in text
    assert _requests_total(text, healthz) == before + 1
    assert 'route="unmatched",service="issues",status="404"' in text
    assert "http_request_duration_seconds_bucket" in text


async def test_readiness_fails_when_the_database_does_not_answer(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(state_of(app).database, "ping", broken)
    r = await client.get("/readyz")
    body = assert_problem(r, 503, "not_ready")
    assert body["checks"]["database"] == "failed: ConnectionRefusedError"
    assert r.headers["retry-after"] == "5"


async def test_every_operation_documents_its_problems_as_problem_json(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "ProblemDetail" in spec["components"]["schemas"]
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(operations) >= 6
    for path, method, op in operations:
        for status in ("401", "404", "422"):
            response = op["responses"].get(status)
            assert response is not None, f"{method.upper()} {path} does not document {status}"
            assert set(response["content"]) == {PROBLEM}, f"{method.upper()} {path} {status}"
            media = response["content"][PROBLEM]
            assert media["schema"] == {"$ref": "#/components/schemas/ProblemDetail"}
            assert media["example"]["status"] == int(status)
        assert op.get("summary"), f"{method.upper()} {path} has no summary"


async def test_the_token_endpoint_documents_its_throttling(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    responses = spec["paths"]["/v1/auth/token"]["post"]["responses"]
    assert "429" in responses and PROBLEM in responses["429"]["content"]
    wechat = spec["paths"]["/v1/auth/wechat"]["post"]["responses"]
    assert {"429", "502", "503", "504"} <= set(wechat)


# An unexpected error, on a bare kit app whose one route fails.

boom_router = APIRouter()


@boom_router.get("/boom", summary="Always fails")
async def boom() -> dict[str, str]:
    raise RuntimeError("kaboom: the secret detail stays in the logs")


@pytest.fixture
async def kit_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A bare kit app: no service of its own, only the kit's state."""

    settings = ServiceSettings(environment="test", data_dir=tmp_path, log_json=False, log_level="INFO")

    @asynccontextmanager
    async def open_state(database: Database, http: httpx.AsyncClient) -> AsyncIterator[ServiceState[Any]]:
        yield bare_state(database, settings, http)

    app = build_app(
        settings,
        api=ApiInfo(title="kit", description="kit test app", version="0"),
        routers=[boom_router],
        open_state=open_state,
    )
    async with running(app), client_for(app, "http://kit.test", raise_app_exceptions=False) as c:
        yield c


async def test_an_unexpected_error_is_500_with_the_request_id_logged(kit_client: httpx.AsyncClient) -> None:
    # The JSON log formatter reads the request id when the line is written: capture lines as written.
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter("kit"))
    huanzhi = logging.getLogger("huanzhi")
    huanzhi.addHandler(handler)
    try:
        r = await kit_client.get("/boom", headers={"X-Request-ID": "req-boom-000001"})
    finally:
        huanzhi.removeHandler(handler)
    body = assert_problem(r, 500, "internal_error")
    assert body["request_id"] == "req-boom-000001"
    assert "kaboom" not in r.text
    entries = [json.loads(line) for line in lines.getvalue().splitlines()]
    errors = [e for e in entries if e["logger"] == "huanzhi.errors"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-boom-000001" and "kaboom" in errors[0]["exc"]
    access = [e for e in entries if e["logger"] == "huanzhi.access"]
    assert [(e["status"], e["request_id"]) for e in access] == [(500, "req-boom-000001")]
