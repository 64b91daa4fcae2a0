"""RFC 9457 problem details: one error base class, one set of handlers, documented in OpenAPI."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy.exc
import sqlalchemy.orm.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.kit.context import request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("huanzhi.errors")


class FieldError(BaseModel):
    field: str = Field(description="Dotted location of the offending value, e.g. `body.parent_code`.")
    message: str
    type: str = Field(description="Machine-readable error type, e.g. `missing`, `string_too_short`.")


class ProblemDetail(BaseModel):
    """RFC 9457 problem details with a stable machine `code`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": "https://huanzhi.dev/problems/not_found",
                "title": "Not found",
                "status": 404,
                "code": "not_found",
                "detail": "region 370282104 not found",
                "request_id": "5f2b9c0e8a7d4c3e9a1b2c3d4e5f6a7b",
            }
        },
    )

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """Base of every error the API answers with; subclasses fix `status`, `code` and `title`."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.instance_code = code or self.code
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(Problem):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(detail, **kwargs)


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, code, title = 404, "not_found", "Not found"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(Problem):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class UnprocessableEntity(Problem):
    status, code, title = 422, "validation_failed", "Validation failed"


class TooManyRequests(Problem):
    status, code, title = 429, "too_many_requests", "Too many requests"


class BadGateway(Problem):
    status, code, title = 502, "bad_gateway", "Bad gateway"


class ServiceUnavailable(Problem):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class GatewayTimeout(Problem):
    status, code, title = 504, "gateway_timeout", "Gateway timeout"


def problem_response(
    status: int,
    code: str,
    title: str,
    *,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://huanzhi.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "instance": instance,
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("too_many_requests", "Too many requests"),
}


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(part) for part in err.get("loc", ())),
            message=str(err.get("msg", "")),
            type=str(err.get("type", "invalid")),
        )
        for err in exc.errors()
    ]


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        exc.instance_code,
        exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        instance=request.url.path,
        extensions=exc.extensions,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    if any(e.type == "json_invalid" for e in errors):
        return problem_response(
            400,
            "malformed_json",
            "Malformed JSON",
            detail="the request body is not valid JSON",
            errors=errors,
            instance=request.url.path,
        )
    return problem_response(
        422,
        "validation_failed",
        "Validation failed",
        detail="; ".join(f"{e.field}: {e.message}" for e in errors[:5]),
        errors=errors,
        instance=request.url.path,
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _STATUS_CODES.get(exc.status_code, (f"http_{exc.status_code}", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the first route whose path matched; list every route's.
        allowed = {
            method
            for route in iter_route_contexts(request.app.router.routes)
            if route.matches(request.scope)[0] is not Match.NONE
            for method in route.methods or ()
        }
        if allowed:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = ", ".join(sorted(allowed))
    return problem_response(
        exc.status_code,
        code,
        title,
        detail=detail,
        headers=headers,
        instance=request.url.path,
    )


def internal_error_response(instance: str) -> JSONResponse:
    """The 500 answer; the request id in it is what an operator searches the logs for."""
    return problem_response(
        500,
        "internal_error",
        "Internal server error",
        detail="an unexpected error occurred; quote the request id when reporting it",
        instance=instance,
    )


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Reached only when the request-context middleware could not answer (it renders 500s itself).
    logger.exception("unhandled error", extra={"path": request.url.path})
    return internal_error_response(request.url.path)


# What a lost or refused database connection raises, by driver: asyncpg while connecting or when the
# server restarts under it, SQLAlchemy around both, the OS when nothing listens.
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
_CONNECTION_SQLSTATES = (
    "08",
    "57P",
)  # connection exception; operator intervention (admin shutdown, starting up)
DATABASE_RETRY_AFTER = "2"


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database cannot be reached, not that a query was wrong."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            return True
        if isinstance(current, ConnectionError | TimeoutError) and _raised_by_database_driver(current):
            return True
        if isinstance(current, asyncpg.PostgresError) and str(getattr(current, "sqlstate", "")).startswith(
            _CONNECTION_SQLSTATES
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _raised_by_database_driver(exc: BaseException) -> bool:
    """A plain OSError or timeout counts only when the database driver raised it (not a store, not a peer)."""
    frame = exc.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy", "aiosqlite")):
            return True
        frame = frame.tb_next
    return False


def database_unavailable_response(instance: str) -> JSONResponse:
    logger.warning("database unavailable", extra={"path": instance})
    return problem_response(
        503,
        "database_unavailable",
        "Service unavailable",
        detail="the database cannot be reached right now; retry shortly",
        headers={"Retry-After": DATABASE_RETRY_AFTER},
        instance=instance,
    )


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        return database_unavailable_response(request.url.path)
    logger.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return internal_error_response(request.url.path)


async def _on_concurrent_change(request: Request, exc: Exception) -> JSONResponse:
    # A row's version column moved under us: another request changed it first; this one changed nothing.
    return problem_response(
        409,
        "concurrent_change",
        "Conflict",
        detail="the object was changed by another request at the same moment; reload it and try again",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(sqlalchemy.orm.exc.StaleDataError, _on_concurrent_change)
    # Handled where the route runs (not re-raised to the server): an outage is one warning, not a traceback.
    for kind in (sqlalchemy.exc.DBAPIError, *_CONNECTION_ERRORS, asyncpg.PostgresError):
        app.add_exception_handler(kind, _on_database_error)
    app.add_exception_handler(Exception, _on_unhandled)


def problem_doc(description: str, code: str, status: int) -> dict[str, Any]:
    """The OpenAPI entry of one problem response, with an example body."""
    return {
        "description": description,
        "model": ProblemDetail,
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "example": {
                    "type": f"https://huanzhi.dev/problems/{code}",
                    "title": description,
                    "status": status,
                    "code": code,
                    "detail": None,
                    "request_id": "5f2b9c0e8a7d4c3e9a1b2c3d4e5f6a7b",
                }
            }
        },
    }


# Documented on every operation; routes add their own where they answer more.
COMMON_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem_doc("Malformed request (e.g. invalid JSON)", "malformed_json", 400),
    401: problem_doc("Missing, invalid or expired token", "unauthorized", 401),
    404: problem_doc("Not found, or outside the caller's region", "not_found", 404),
    405: problem_doc("Method not allowed on this path; see Allow", "method_not_allowed", 405),
    413: problem_doc("Request body too large", "payload_too_large", 413),
    422: problem_doc("Validation failed; see `errors`", "validation_failed", 422),
    500: problem_doc("Unexpected error", "internal_error", 500),
    503: problem_doc(
        "The database, the token issuer's keys or another dependency cannot be reached; see Retry-After",
        "service_unavailable",
        503,
    ),
}


def document_problem_media_type(openapi: dict[str, Any]) -> dict[str, Any]:
    """Move the `ProblemDetail` schema FastAPI files under `application/json` to `application/problem+json`.

    FastAPI documents every response model under the route's media type; problems are not sent as that.
    """
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                    schema = content.pop("application/json").get("schema")
                    if schema is not None:
                        content[PROBLEM_MEDIA_TYPE].setdefault("schema", schema)
    return openapi


def problem_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Extra documented problem responses for one route (403, 409, 429, 502, 503, 504)."""
    names = {
        403: ("Forbidden: role or scope does not allow this", "forbidden"),
        409: ("Conflict with the stored state", "conflict"),
        410: ("Gone: expired", "gone"),
        415: ("Unsupported media type (e.g. not an image)", "unsupported_media_type"),
        429: ("Too many requests; see Retry-After", "too_many_requests"),
        502: ("A peer answered badly", "bad_gateway"),
        503: ("A peer or store is unavailable; see Retry-After", "service_unavailable"),
        504: ("A peer did not answer in time", "gateway_timeout"),
    }
    return {s: problem_doc(names[s][0], names[s][1], s) for s in statuses}
