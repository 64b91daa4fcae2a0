"""Per-request context that follows a request through logs and service-to-service calls."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
