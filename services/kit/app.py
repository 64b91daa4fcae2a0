"""Builds a service app the same way for all three: errors, middleware, health, tokens, database."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from sqlalchemy import Table
from starlette.datastructures import Headers
from starlette.responses import Response

from services.kit.db import Database
from services.kit.errors import (
    COMMON_PROBLEM_RESPONSES,
    document_problem_media_type,
    install_problem_handlers,
    problem_response,
)
from services.kit.idempotency import IdempotencyMiddleware, document_idempotency
from services.kit.jwt import JWKSCache, TokenVerifier, http_jwks_fetcher
from services.kit.observability import Metrics, RequestContextMiddleware, configure_logging, health_router
from services.kit.peers import new_http_client
from services.kit.revocation import RevocationList, http_revocations_fetcher
from services.kit.settings import ServiceSettings
from services.kit.state import ServiceState, state_of


@dataclass(frozen=True)
class ApiInfo:
    """What the OpenAPI document says about a service."""

    title: str
    description: str
    version: str = "0.1.0"
    tags: list[dict[str, Any]] = field(default_factory=list)


# Given the database and the HTTP client the kit built, a service opens its state (and closes what it
# opened when the context ends).
OpenState = Callable[[Database, httpx.AsyncClient], AbstractAsyncContextManager[ServiceState[Any]]]


_heap_frozen = False


def _freeze_startup_heap() -> None:
    """Once a process, when its first app has started: what was built so far (modules, classes, schemas, the
    service's state) is moved out of the cyclic collector's way (`gc.freeze`), so a full collection during
    requests walks only what requests left. The first full collection under load paused a request 70-100 ms,
    later ones 7-10 ms (bench.issues_lifecycle at 10⁶: the lists' slowest answer 80-108 ms -> 9 ms)."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


def build_app(
    settings: ServiceSettings,
    *,
    api: ApiInfo,
    routers: Sequence[APIRouter],
    open_state: OpenState,
    idempotency: Table | None = None,
    body_limits: dict[str, int] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan builds the database and HTTP client, then the service's own state."""
    service = settings.service_name
    configure_logging(service, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.resolved_database_url, echo=settings.db_echo)
        http = new_http_client(settings.peer_timeout_seconds)
        try:
            async with open_state(database, http) as state:
                app.state.service = state
                _freeze_startup_heap()
                yield
        finally:
            await http.aclose()
            await database.dispose()

    app = FastAPI(
        title=api.title,
        description=api.description,
        version=api.version,
        lifespan=lifespan,
        responses=COMMON_PROBLEM_RESPONSES,
        openapi_tags=api.tags or None,
    )
    metrics = Metrics(service)
    app.state.metrics = metrics  # a service adds collectors of its own through `metrics_registry(app)`

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = document_problem_media_type(FastAPI.openapi(app))
            app.openapi_schema = document_idempotency(schema) if idempotency is not None else schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_problem_handlers(app)
    if idempotency is not None:
        # Inside the request-context middleware: replays carry a request id and respect the body limit.
        app.add_middleware(IdempotencyMiddleware, table=idempotency)
    if settings.cors_allowed_origins:
        # Outside everything but the request context: a preflight is answered before tokens or bodies are
        # looked at, and still carries a request id.
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=[
                "Location",
                "Retry-After",
                "X-Request-ID",
                "Idempotent-Replayed",
                "Content-Disposition",
            ],
            max_age=600,
        )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_json_body_bytes,
        body_limits=body_limits,
    )
    app.include_router(health_router(service, metrics, _readiness_checks))
    for router in routers:
        app.include_router(router)
    return app


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as a problem like every other refusal."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        return problem_response(
            400,
            "cors_preflight_refused",
            "Bad request",
            detail=bytes(response.body).decode() or "the cross-origin request is not allowed",
        )


def metrics_registry(app: FastAPI) -> CollectorRegistry:
    """The registry `/metrics` exports: where a service registers collectors of its own."""
    metrics = app.state.metrics
    assert isinstance(metrics, Metrics)
    return metrics.registry


def issuer_verifier(settings: ServiceSettings, http: httpx.AsyncClient) -> TokenVerifier:
    """Verifies tokens with the issuer's keys and its recent revocations, both fetched and cached."""
    keys = JWKSCache(
        http_jwks_fetcher(http, settings.jwks_url),
        ttl=settings.jwks_cache_seconds,
        min_refresh_interval=settings.jwks_min_refresh_seconds,
    )
    revocations = RevocationList(
        http_revocations_fetcher(http, settings.revocations_url), ttl=settings.revocation_cache_seconds
    )
    return TokenVerifier(
        keys, issuer=settings.token_issuer, audience=settings.token_audience, revocations=revocations
    )


def _readiness_checks(request: Request) -> dict[str, Any]:
    return state_of(request.app).readiness_checks()
