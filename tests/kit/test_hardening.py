"""Findings of the outside review, each held by a test: bounded metrics, strict claims, database outages
answered 503, and idempotent retries that replay the first answer however soon or however spelled."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from services.issues.app import create_app as create_issues_app
from services.issues.db import idempotency_keys
from services.issues.deps import IssuesState
from services.issues.regions.models import Region
from services.issues.settings import IssuesSettings
from services.kit.state import state_of, typed_state
from tests.support.apps import AUDIENCE, ISSUER
from tests.support.builders import COUNTY, TOWN, new_region
from tests.support.ports import closed_port
from tests.support.problems import assert_problem

# ---- 1. metrics: a made-up method or path mints no new series ----


async def test_made_up_methods_and_paths_add_no_metric_series(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    for n in range(40):
        await client.request(f"BBQ{n}Z", "/v1/regions")
        await client.get(f"/v1/no-such-{n}")
    after = (await client.get("/metrics")).text
    assert "BBQ" not in after and "no-such" not in after
    assert 'method="OTHER"' in after and 'route="unmatched"' in after
    series = [line for line in after.splitlines() if line.startswith("http_requests_total{")]
    grown = len(series) - len(
        [line for line in before.splitlines() if line.startswith("http_requests_total{")]
    )
    assert grown <= 4  # OTHER on /v1/regions, the unmatched GETs, the two /metrics reads at most


# ---- 9. claims: NumericDate means a number ----


def admin_claims(**changes: Any) -> dict[str, Any]:
    """The claims of a county admin's access token, as the issuer writes them."""
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user:4",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "token_use": "access",
        "role": "admin",
        "region": COUNTY,
        "region_path": "/37/3702/370282/",
        "scope": "regions:read",
        **changes,
    }


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
async def test_a_time_claim_given_as_a_string_is_refused(
    claim: str, app: FastAPI, client: httpx.AsyncClient
) -> None:
    keyring = typed_state(app, IssuesState).keyring
    claims = admin_claims()
    good = keyring.sign(claims)
    assert (
        await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {good}"})
    ).status_code == 200
    claims[claim] = str(claims.get(claim, claims["iat"]))
    bad = keyring.sign(claims)
    refused = await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {bad}"})
    assert_problem(refused, 401, "invalid_token")


# ---- §2 database outage: 503 database_unavailable with Retry-After, one warning, no traceback ----


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_database_that_cannot_be_reached_answers_503_not_500(tmp_path: Path) -> None:
    settings = IssuesSettings(
        environment="test",
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nowhere",
        data_dir=tmp_path,
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        media_url="",
        log_json=False,
    )
    app = create_issues_app(settings)
    async with app.router.lifespan_context(app):
        keyring = typed_state(app, IssuesState).keyring
        token = keyring.sign(admin_claims(scope="regions:read regions:write"))
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as c:
            logs = _Records()
            logging.getLogger("huanzhi").addHandler(logs)
            try:
                read = await c.get("/v1/regions", headers=headers)
                write = await c.post(
                    "/v1/regions", json=new_region(), headers={**headers, "Idempotency-Key": "outage-1"}
                )
                login = await c.post(
                    "/v1/auth/token", data={"grant_type": "password", "username": "a", "password": "b"}
                )
                ready = await c.get("/readyz")
            finally:
                logging.getLogger("huanzhi").removeHandler(logs)
    for answer in (read, write, login):
        assert_problem(answer, 503, "database_unavailable")
        assert answer.headers["retry-after"] == "2"
    assert_problem(ready, 503, "not_ready")
    errors = [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []  # an outage is a warning per request, not a traceback
    warned = [r for r in logs.records if r.getMessage() == "database unavailable"]
    assert len(warned) == 3 and all(r.levelno == logging.WARNING for r in warned)


# ---- §2 idempotency edges ----


async def test_the_answer_is_stored_before_it_is_sent(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    count_rows: Callable[..., Any],
) -> None:
    """A retry sent the moment the 201 arrives must find the answer stored, not a key still "in flight"."""
    stored_when_sent: list[int | None] = []

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        async def watched_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                async with state_of(app).database.transaction() as session:
                    row = await session.execute(
                        select(idempotency_keys.c.status).where(idempotency_keys.c.key == "soon-after-201")
                    )
                    stored_when_sent.append(row.scalar_one_or_none())
            await send(message)

        await app(scope, receive, watched_send)

    headers = {**auth("admin"), "Idempotency-Key": "soon-after-201"}
    body = new_region(code="370282103299", name="新村", parent_code=TOWN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=watching), base_url=ISSUER) as watched:
        first = await watched.post("/v1/regions", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert stored_when_sent == [201]
    retry = await client.post("/v1/regions", json=body, headers=headers)
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert await count_rows(Region, col(Region.code) == "370282103299") == 1


async def test_concurrent_retries_create_once(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Callable[..., Any]
) -> None:
    headers = {**auth("admin"), "Idempotency-Key": "burst"}
    body = new_region(code="370282103298", name="旧村", parent_code=TOWN)
    answers = await asyncio.gather(
        *(client.post("/v1/regions", json=body, headers=headers) for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    assert await count_rows(Region, col(Region.code) == "370282103298") == 1


async def test_the_same_json_with_other_spacing_or_key_order_is_the_same_request(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Callable[..., Any]
) -> None:
    headers = {**auth("admin"), "Idempotency-Key": "respelled", "Content-Type": "application/json"}
    body = new_region(code="370282103297", name="南村", parent_code=TOWN)
    first = await client.post("/v1/regions", content=json.dumps(body), headers=headers)
    assert first.status_code == 201, first.text
    respelled = json.dumps(dict(reversed(list(body.items()))), indent=2, ensure_ascii=False).encode()
    retry = await client.post("/v1/regions", content=respelled, headers=headers)
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    other = await client.post("/v1/regions", json={**body, "name": "北村"}, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    assert await count_rows(Region, col(Region.code) == "370282103297") == 1


async def test_a_refused_request_under_a_key_keeps_nothing_and_replays_its_refusal(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Callable[..., Any]
) -> None:
    headers = {**auth("admin"), "Idempotency-Key": "refused"}
    body = new_region(code="370282103296", name="东村", parent_code="no-such-parent")
    first = await client.post("/v1/regions", json=body, headers=headers)
    assert first.status_code in (404, 422), first.text
    again = await client.post("/v1/regions", json=body, headers=headers)
    assert again.status_code == first.status_code and again.headers["idempotent-replayed"] == "true"
    assert await count_rows(Region, col(Region.code) == "370282103296") == 0


# ---- 10. headers ----


async def test_every_api_answer_forbids_sniffing_and_caching(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    answers = [
        await client.get("/v1/regions", headers=auth("admin")),
        await client.get("/v1/regions/nowhere", headers=auth("admin")),
        await client.get("/v1/regions"),
        await client.get("/healthz"),
    ]
    assert [a.status_code for a in answers] == [200, 404, 401, 200]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


async def test_an_oversized_authorization_header_is_a_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/regions", headers={"Authorization": "Bearer " + "A" * 64 * 1024})
    assert_problem(answer, 431, "headers_too_large")


# ---- 10. CORS: none by default, the configured origins exactly ----

FRONT_END = "https://zhengzhi.jimo.example"


async def test_without_configured_origins_a_preflight_is_refused(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/v1/regions", headers={"Origin": FRONT_END, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("overrides", [{"cors_allowed_origins": [FRONT_END]}])
async def test_a_configured_origin_passes_its_preflight_and_reads_the_answer(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    preflight = await client.options(
        "/v1/regions",
        headers={
            "Origin": FRONT_END,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == FRONT_END
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()

    answer = await client.get("/v1/regions", headers={**auth("admin"), "Origin": FRONT_END})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == FRONT_END
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()

    elsewhere = await client.options(
        "/v1/regions", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert_problem(elsewhere, 400, "cors_preflight_refused")
    plain = await client.get("/v1/regions", headers={**auth("admin"), "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_an_origin_setting_must_name_origins() -> None:
    from services.kit.settings import ServiceSettings

    parsed = ServiceSettings(cors_allowed_origins=f"{FRONT_END}, http://127.0.0.1:5173")  # type: ignore[arg-type]
    assert parsed.cors_allowed_origins == [FRONT_END, "http://127.0.0.1:5173"]
    for bad in ("*", "https://x.example/path", "zhengzhi.example"):
        with pytest.raises(ValueError, match="not an origin"):
            ServiceSettings(cors_allowed_origins=bad)  # type: ignore[arg-type]
