"""Revocation: tokens of a disabled user or a revoked client stop working within seconds, on every service.

An access token lives an hour and is verified offline, so the issuer publishes the subjects whose tokens
were revoked lately (`/.well-known/revocations.json`: each subject with the moment of its revocation,
kept for a token's lifetime) and every verifier caches that list for a few seconds. A token issued at
or before its subject's revocation is refused; one issued after (a user enabled again, a new password)
is fine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from services.kit.errors import ServiceUnavailable

logger = logging.getLogger("huanzhi.revocation")

RevocationFetcher = Callable[[], Awaitable[dict[str, Any]]]


def revocations_document(revoked: dict[str, float], window_seconds: float) -> dict[str, Any]:
    """What the issuer publishes: `{"subjects": [{"sub": "user:42", "revoked_at": 1767225600.5}], …}`."""
    return {
        "subjects": [{"sub": sub, "revoked_at": at} for sub, at in sorted(revoked.items())],
        "window_seconds": window_seconds,
    }


class RevocationList:
    """The issuer's recent revocations, fetched with `fetch` and kept for `ttl` seconds.

    A failed refresh keeps the list last fetched (an issuer that is down does not stop verification);
    without any list yet, verification answers 503 like missing keys do.
    """

    def __init__(self, fetch: RevocationFetcher, *, ttl: float = 30.0) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._revoked: dict[str, float] | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def revoked_at(self, subject: str) -> float | None:
        """When `subject`'s tokens were last revoked (Unix seconds), or None."""
        if time.monotonic() - self._fetched_at >= self._ttl:
            await self._refresh()
        if self._revoked is None:
            raise ServiceUnavailable(
                "the token issuer's revocations could not be fetched",
                code="revocations_unavailable",
                headers={"Retry-After": "5"},
            )
        return self._revoked.get(subject)

    async def _refresh(self) -> None:
        asked_at = time.monotonic()
        async with self._lock:
            if self._fetched_at >= asked_at:  # fetched by another request while we waited
                return
            try:
                document = await self._fetch()
                subjects = document["subjects"]
                revoked = {str(entry["sub"]): float(entry["revoked_at"]) for entry in subjects}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                logger.warning("revocations could not be refreshed: %r", exc)
                if self._revoked is not None:
                    # Serve the last list a while longer rather than ask again on every request.
                    self._fetched_at = time.monotonic() - self._ttl / 2
                return
            self._revoked = revoked
            self._fetched_at = time.monotonic()


def http_revocations_fetcher(client: httpx.AsyncClient, url: str) -> RevocationFetcher:
    async def fetch() -> dict[str, Any]:
        response = await client.get(url)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("revocations document is not an object")
        return document

    return fetch
