"""Request ids, structured logs, Prometheus metrics, body-size limits, and the health endpoints."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.context import request_id_var
from services.kit.errors import (
    database_unavailable,
    database_unavailable_response,
    internal_error_response,
    problem_doc,
    problem_response,
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
access_log = logging.getLogger("huanzhi.access")
error_log = logging.getLogger("huanzhi.errors")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key in ("method", "path", "status", "duration_ms", "peer"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# Query parameters whose values never reach a log line (e.g. jscode2session's `secret` and `js_code`).
SECRET_QUERY_PARAMS = frozenset(
    {"secret", "client_secret", "appsecret", "password", "access_token", "token", "code", "js_code"}
)


def redact_url(url: httpx.URL) -> str:
    """The URL with the values of secret-bearing query parameters masked."""
    if not url.query:
        return str(url)
    params = [(k, "***" if k.lower() in SECRET_QUERY_PARAMS else v) for k, v in url.params.multi_items()]
    return str(url.copy_with(params=params))


class RedactUrlSecrets(logging.Filter):
    """Masks secrets in the URLs httpx logs ("HTTP Request: GET https://…?secret=…")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def configure_logging(service: str, level: str, as_json: bool) -> None:
    client_log = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrlSecrets) for f in client_log.filters):
        client_log.addFilter(RedactUrlSecrets())
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("huanzhi")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _with_safe_headers(headers: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """The request id, and what keeps a browser or a proxy from misusing an API answer: no sniffing a
    type, no caching (a route that may be cached, such as a signed download, says so itself)."""
    present = {name.lower() for name, _ in headers}
    added = [(b"x-request-id", request_id.encode())]
    if b"x-content-type-options" not in present:
        added.append((b"x-content-type-options", b"nosniff"))
    if b"cache-control" not in present:
        added.append((b"cache-control", b"no-store"))
    return [*headers, *added]


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.service = service


class RequestContextMiddleware:
    """Assigns or carries `X-Request-ID`, limits body size, logs one line and counts each request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        body_limits: dict[str, int] | None = None,
        max_header_bytes: int = 16 * 1024,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.body_limits = body_limits or {}

    def _limit_for(self, path: str) -> int:
        """The limit for `path`: a key ending in "/" covers everything below it, any other key that path alone."""
        for key, limit in self.body_limits.items():
            if path.rstrip("/") == key.rstrip("/") or (key.endswith("/") and path.startswith(key)):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        limit = self._limit_for(scope["path"])
        received = 0
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = _with_safe_headers(message.get("headers", []), request_id)
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        try:
            declared = dict(scope["headers"]).get(b"content-length")
            header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if header_bytes > self.max_header_bytes:
                await problem_response(
                    431,
                    "headers_too_large",
                    "Request header fields too large",
                    detail=f"the request's headers exceed {self.max_header_bytes} bytes",
                    instance=scope["path"],
                    headers={"Connection": "close"},
                )(scope, receive, send_with_id)
            elif declared is not None and declared.isdigit() and int(declared) > limit:
                await self._too_large(scope, receive, send_with_id, limit)
            else:
                try:
                    await self.app(scope, limited_receive, send_with_id)
                except _BodyTooLarge:
                    if response_started:
                        raise
                    await self._too_large(scope, receive, send_with_id, limit)
        except Exception as exc:
            if database_unavailable(exc):
                # The idempotency middleware's own queries run out here, beyond the app's handlers.
                if not response_started:
                    await database_unavailable_response(scope["path"])(scope, receive, send_with_id)
                return
            if response_started:
                raise
            # Answered here, not by the outermost handler, so the 500 and its log line carry the request id.
            error_log.exception("unhandled error", extra={"path": scope["path"]})
            await internal_error_response(scope["path"])(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            # Labels come from fixed sets only: a made-up method or path must not mint a new series.
            method = scope["method"] if scope["method"] in METRIC_METHODS else "OTHER"
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(self.metrics.service, method, template, str(status)).inc()
            self.metrics.latency.labels(self.metrics.service, method, template).observe(elapsed)
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            413,
            "payload_too_large",
            "Payload too large",
            detail=f"the request body exceeds {limit} bytes",
            instance=scope["path"],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parsing re-raises it as is."""

    def __init__(self) -> None:
        super().__init__(413, "the request body is too large")


ReadinessCheck = Callable[[], Awaitable[None]]


def health_router(
    service: str, metrics: Metrics, checks: Callable[[Request], dict[str, ReadinessCheck]]
) -> APIRouter:
    """`/healthz` (alive), `/readyz` (this process's database and store answer), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        summary="Liveness: the process answers",
        responses={200: {"content": {"application/json": {"example": {"status": "ok", "service": service}}}}},
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get(
        "/readyz",
        summary="Readiness: this service's own database (and object store) answer",
        description="Peers are not checked: a service that is down shows in the 503s of the calls that "
        "need it, so one service's outage never takes another out of a load balancer's rotation.",
        responses={
            200: {
                "description": "Every check answers",
                "content": {
                    "application/json": {
                        "example": {"status": "ready", "service": service, "checks": {"database": "ok"}}
                    }
                },
            },
            503: problem_doc("A dependency does not answer; see `checks` and Retry-After", "not_ready", 503),
        },
    )
    async def readyz(request: Request) -> Response:
        results: dict[str, str] = {}
        for name, check in checks(request).items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        if ready:
            return JSONResponse({"status": "ready", "service": service, "checks": results})
        return problem_response(
            503,
            "not_ready",
            "Not ready",
            detail="a dependency does not answer",
            headers={"Retry-After": "5"},
            extensions={"checks": results},
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def exposition() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
