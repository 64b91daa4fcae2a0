"""`Idempotency-Key` on creates: a retried POST (rural networks drop) gets the first answer again.

Keys are kept for `keep_hours` (24 h). The first request with a key records it as in flight, runs, and stores its answer; a retry with the same
key and the same body replays that answer (`Idempotent-Replayed: true`), with another body it is refused
(422), and while the first is still running it answers 409. Keys belong to the caller (the token's `sub`).
Failures that a retry may cure (5xx, 408, 409, 425, 429) are not stored. A process that dies between its
commit and storing the answer leaves an in-flight record that lapses after `in_flight_seconds`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.db import UTCDateTime, savepoint, utcnow
from services.kit.errors import Problem, problem_response
from services.kit.state import state_of

HEADER = "Idempotency-Key"
# Where the middleware leaves the request's session for the session dependency, and how the dependency
# tells the middleware that the route raised (its changes must not be committed).
SHARED_SESSION = "huanzhi.idempotent_session"
REQUEST_FAILED = "huanzhi.request_failed"
_RETRYABLE = frozenset({408, 409, 425, 429})
_KEPT_HEADERS = frozenset({"content-type", "location", "cache-control"})


class BodyFingerprint:
    """SHA-256 of a request body, blind to what a retry may change without changing the request: a
    multipart boundary (clients draw a new one for every retry), and the spacing and key order of JSON."""

    _TOKEN = b"\x00boundary\x00"  # a boundary never holds NUL (RFC 2046), so this cannot recur

    def __init__(self, content_type: bytes) -> None:
        self._digest = hashlib.sha256()
        self._carry = b""
        media_type, _, params = content_type.decode("latin-1").partition(";")
        media_type = media_type.strip().lower()
        # JSON bodies are small (the JSON body limit): kept whole and hashed in canonical form.
        self._json: bytearray | None = (
            bytearray() if media_type == "application/json" or media_type.endswith("+json") else None
        )
        boundary = None
        if media_type.strip().lower().startswith("multipart/"):
            for param in params.split(";"):
                name, _, value = param.strip().partition("=")
                if name.lower() == "boundary" and value:
                    boundary = value.strip('"').encode("latin-1")
        self._boundary = boundary

    def update(self, chunk: bytes) -> None:
        if self._json is not None:
            self._json += chunk
            return
        if not self._boundary:
            self._digest.update(chunk)
            return
        data = (self._carry + chunk).replace(self._boundary, self._TOKEN)
        # Hold back what could be the start of a boundary split across two chunks.
        cut = max(0, len(data) - (len(self._boundary) - 1))
        self._digest.update(data[:cut])
        self._carry = data[cut:]

    def hexdigest(self) -> str:
        if self._json is not None:
            self._digest.update(_canonical_json(bytes(self._json)))
            self._json = bytearray()
            return self._digest.hexdigest()
        self._digest.update(self._carry)
        self._carry = b""
        return self._digest.hexdigest()


def _canonical_json(body: bytes) -> bytes:
    """The same JSON value gives the same bytes, whatever the spacing or key order; other bytes as they are."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def idempotency_table(metadata: MetaData) -> Table:
    """The table each service keeps its keys in (its own database, its own migration)."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("subject", String(128), nullable=False),
        Column("key", String(255), nullable=False),
        Column("method", String(8), nullable=False),
        Column("path", String(500), nullable=False),
        Column("fingerprint", String(64), nullable=True),
        Column("status", Integer, nullable=True),  # null while the first request is in flight
        Column("headers", JSON, nullable=True),
        Column("body", LargeBinary, nullable=True),
        Column("created_at", UTCDateTime(), nullable=False, index=True),
        UniqueConstraint("subject", "key"),
    )


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, *, table: Table, in_flight_seconds: float = 60.0, keep_hours: float = 24.0
    ) -> None:
        self.app = app
        self.table = table
        self.in_flight = timedelta(seconds=in_flight_seconds)
        self.keep = timedelta(hours=keep_hours)
        self._uses = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        raw_key = headers.get(b"idempotency-key")
        if scope["type"] != "http" or scope["method"] != "POST" or raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not 1 <= len(key) <= 255 or not key.isprintable():
            await _problem(
                scope,
                receive,
                send,
                400,
                "invalid_idempotency_key",
                "Bad request",
                "Idempotency-Key must be 1–255 printable characters",
            )
            return
        subject = await self._subject(scope, headers.get(b"authorization", b""))
        if subject is None:  # no valid token: the route answers 401 itself
            await self.app(scope, receive, send)
            return
        database = state_of(scope["app"]).database
        t = self.table
        where = and_(t.c.subject == subject, t.c.key == key)
        async with database.sessionmaker() as session, session.begin():
            row = (await session.execute(select(t).where(where))).mappings().first()
            if row is not None and row["status"] is None and utcnow() - row["created_at"] > self.in_flight:
                await session.execute(delete(t).where(where))  # the first attempt died; run this one
                row = None
            self._uses += 1
            if self._uses % 200 == 1:  # now and then, forget keys older than the retention period
                await session.execute(delete(t).where(t.c.created_at < utcnow() - self.keep))
            if row is None:
                try:
                    async with savepoint(session, t):
                        await session.execute(
                            insert(t).values(
                                subject=subject,
                                key=key,
                                method=scope["method"],
                                path=scope["path"],
                                created_at=utcnow(),
                            )
                        )
                except IntegrityError:
                    row = (await session.execute(select(t).where(where))).mappings().first()
        if row is not None:
            await self._answer_repeat(dict(row), scope, receive, send)
            return
        await self._first(scope, receive, send, where)

    async def _subject(self, scope: Scope, authorization: bytes) -> str | None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        verifier = state_of(scope["app"]).verifier
        try:
            claims = await verifier.verify(token.strip())
        except Problem:
            return None
        return str(claims["sub"])

    async def _answer_repeat(self, row: dict[str, Any], scope: Scope, receive: Receive, send: Send) -> None:
        if row["status"] is None:
            await _problem(
                scope,
                receive,
                send,
                409,
                "idempotency_key_in_flight",
                "Conflict",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                headers={"Retry-After": "1"},
            )
            return
        digest = BodyFingerprint(dict(scope["headers"]).get(b"content-type", b""))
        while True:  # read (and hash) the retried body without keeping it
            message = await receive()
            digest.update(message.get("body", b""))
            if not message.get("more_body"):
                break
        if (row["method"], row["path"], row["fingerprint"]) != (
            scope["method"],
            scope["path"],
            digest.hexdigest(),
        ):
            await _problem(
                scope,
                receive,
                send,
                422,
                "idempotency_key_reused",
                "Unprocessable request",
                "this Idempotency-Key was used for a different request",
            )
            return
        stored_headers = [(k.encode(), v.encode()) for k, v in (row["headers"] or {}).items()]
        await send(
            {
                "type": "http.response.start",
                "status": row["status"],
                "headers": [*stored_headers, (b"idempotent-replayed", b"true")],
            }
        )
        await send({"type": "http.response.body", "body": row["body"] or b""})

    async def _first(self, scope: Scope, receive: Receive, send: Send, where: Any) -> None:
        """Run the request in a transaction that also stores its answer, and send the answer only after
        that commit: a retry arriving the moment the first answer does finds it stored, and a change is
        never committed without the answer that a retry will replay."""
        digest = BodyFingerprint(dict(scope["headers"]).get(b"content-type", b""))
        status = 500
        kept: dict[str, str] = {}
        held: list[Message] = []

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                digest.update(message.get("body", b""))
            return message

        async def holding_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.decode("latin-1").lower() in _KEPT_HEADERS:
                        kept[name.decode("latin-1").lower()] = value.decode("latin-1")
            held.append(message)

        def answer() -> dict[str, Any]:
            body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            return {"status": status, "headers": kept, "body": body, "fingerprint": digest.hexdigest()}

        database = state_of(scope["app"]).database
        try:
            async with database.transaction() as session:
                scope[SHARED_SESSION] = session
                await self.app(scope, hashing_receive, holding_send)
                if session.info.get(REQUEST_FAILED) or status >= 500 or status in _RETRYABLE:
                    raise _Undo
                await session.execute(update(self.table).where(where).values(**answer()))
        except _Undo:
            # The route's changes are rolled back; a refusal is remembered, a failure a retry may cure is not.
            async with database.transaction() as session:
                if status >= 500 or status in _RETRYABLE:
                    await session.execute(delete(self.table).where(where))
                else:
                    await session.execute(update(self.table).where(where).values(**answer()))
        except BaseException:
            with contextlib.suppress(Exception):
                async with database.transaction() as session:
                    await session.execute(delete(self.table).where(where))
            raise
        finally:
            scope.pop(SHARED_SESSION, None)
        for message in held:
            await send(message)


class _Undo(Exception):
    """Roll the request's transaction back (the route refused or failed) without an error of its own."""


async def _problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> None:
    response = problem_response(status, code, title, detail=detail, instance=scope["path"], headers=headers)
    await response(scope, receive, send)


def document_idempotency(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the optional `Idempotency-Key` header to every POST that takes a bearer token."""
    # What the middleware takes: the value (as Latin-1, HTTP's header charset) less surrounding whitespace
    # is 1 to 255 printable characters: ASCII 0x20-0x7E and Latin-1 0xA1-0xFF but the soft hyphen 0xAD.
    printable, edge = r"[ -~\xa1-\xac\xae-\xff]", r"[\t-\r\x1c-\x20\x85\xa0]*"
    visible = r"[!-~\xa1-\xac\xae-\xff]"
    parameter = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "schema": {
            "type": "string",
            "minLength": 1,
            "pattern": f"^{edge}{visible}(?:{printable}{{0,253}}{visible})?{edge}$",
        },
        "description": "Send the same key when retrying this request: the first answer comes back again "
        "(`Idempotent-Replayed: true`); the same key with a different body is refused (422). 1 to 255 "
        "printable characters once surrounding whitespace is trimmed (ASCII, or Latin-1 above 0xA0 but the "
        "soft hyphen); anything else answers 400 `invalid_idempotency_key`. A UUID is a good key.",
        "example": "6f1c7a52-3f5e-4d55-9d1e-8c7f6b9a0e21",
    }
    for path, operations in openapi.get("paths", {}).items():
        post = operations.get("post")
        if post is None or path.startswith(("/v1/auth/", "/v1/media/objects")):
            continue
        post.setdefault("parameters", []).append(parameter)
    json.dumps(openapi)  # fail loudly here rather than when serving /openapi.json
    return openapi
