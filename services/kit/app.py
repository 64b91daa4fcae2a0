"""Builds a service app the same way for all three: errors, middleware, health, tokens, database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import Table

from services.kit.db import Database
from services.kit.errors import (
    COMMON_PROBLEM_RESPONSES,
    document_problem_media_type,
    install_problem_handlers,
)
from services.kit.idempotency import IdempotencyMiddleware, document_idempotency
from services.kit.jwt import JWKSCache, TokenVerifier, http_jwks_fetcher
from services.kit.observability import (
    Metrics,
    ReadinessCheck,
    RequestContextMiddleware,
    configure_logging,
    health_router,
)
from services.kit.peers import Peer, new_http_client
from services.kit.settings import ServiceSettings

Extra = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def build_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    version: str,
    routers: Sequence[APIRouter],
    extra_lifespan: Extra | None = None,
    jwks_cache: Callable[[FastAPI], JWKSCache] | None = None,
    peers: Callable[[FastAPI], dict[str, Peer]] | None = None,
    body_limits: dict[str, int] | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
    idempotency: Table | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan builds the database, HTTP client, token verifier and peers.

    `jwks_cache` lets the issuer verify with its own keys instead of fetching its JWKS over HTTP.
    """
    service = settings.service_name
    configure_logging(service, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.database = Database(settings.resolved_database_url, echo=settings.db_echo)
        app.state.http = new_http_client(settings.peer_timeout_seconds)
        keys = (
            jwks_cache(app)
            if jwks_cache
            else JWKSCache(
                http_jwks_fetcher(app.state.http, settings.jwks_url),
                ttl=settings.jwks_cache_seconds,
                min_refresh_interval=settings.jwks_min_refresh_seconds,
            )
        )
        app.state.token_verifier = TokenVerifier(
            keys, issuer=settings.token_issuer, audience=settings.token_audience
        )
        try:
            if extra_lifespan is not None:
                async with extra_lifespan(app):
                    app.state.peers = peers(app) if peers else {}
                    yield
            else:
                app.state.peers = peers(app) if peers else {}
                yield
        finally:
            await app.state.http.aclose()
            await app.state.database.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        responses=COMMON_PROBLEM_RESPONSES,
        openapi_tags=openapi_tags,
    )
    app.state.metrics = Metrics(service)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_problem_media_type(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    install_problem_handlers(app)
    if idempotency is not None:
        # Inside the request-context middleware: replays carry a request id and respect the body limit.
        app.add_middleware(IdempotencyMiddleware, table=idempotency)
        _document_idempotency(app)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        max_body_bytes=settings.max_json_body_bytes,
        body_limits=body_limits,
    )
    app.include_router(health_router(service, _readiness_checks))
    for router in routers:
        app.include_router(router)
    return app


def _document_idempotency(app: FastAPI) -> None:
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_idempotency(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _readiness_checks(request: Request) -> dict[str, ReadinessCheck]:
    app = request.app
    checks: dict[str, ReadinessCheck] = {"database": app.state.database.ping}
    for name, peer in app.state.peers.items():
        checks[name] = _peer_check(peer)
    checks.update(getattr(app.state, "readiness_extra", {}))
    return checks


def _peer_check(peer: Peer) -> ReadinessCheck:
    async def check() -> None:
        if not await peer.healthy():
            raise ConnectionError(f"{peer.name} is not healthy")

    return check
