"""Service-to-service HTTP: carries a service token and the request id; failures become clear problems."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from services.kit.context import request_id_var
from services.kit.errors import BadGateway, GatewayTimeout, ServiceUnavailable

TokenSource = Callable[[], Awaitable[str]]


class ClientCredentials:
    """Gets and caches a service access token from the issuer's token endpoint."""

    def __init__(self, client: httpx.AsyncClient, token_url: str, client_id: str, client_secret: str) -> None:
        self._client = client
        self._token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the cached token so the next call fetches a new one."""
        self._token = None

    async def __call__(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() > self._expires_at - 60:
                response = await _send(self._client, "issues", "POST", self._token_url, data=self._form)
                if response.status_code >= 500:
                    raise BadGateway(
                        f"issues answered {response.status_code}", code="peer_error", peer="issues"
                    )
                if response.status_code != 200:
                    raise BadGateway(
                        "the token issuer refused this service's credentials",
                        code="peer_auth_failed",
                        peer="issues",
                    )
                try:
                    body = response.json()
                    token, lifetime = str(body["access_token"]), float(body.get("expires_in", 300))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    # A proxy's HTML page or a broken issuer: a bad gateway, not our own 500.
                    raise BadGateway(
                        "the token issuer answered without a token", code="peer_error", peer="issues"
                    ) from exc
                self._token = token
                self._expires_at = time.monotonic() + lifetime
            return self._token


class Peer:
    """Another Huanzhi service reached over HTTP."""

    def __init__(
        self, name: str, base_url: str, client: httpx.AsyncClient, token: TokenSource | None
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._token = token

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self._token is not None:
            headers["Authorization"] = f"Bearer {await self._token()}"
        response = await _send(
            self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
        )
        if response.status_code == 401 and isinstance(self._token, ClientCredentials):
            # The peer no longer accepts our cached token (keys rotated, clock skew): fetch a new one once.
            self._token.forget()
            headers["Authorization"] = f"Bearer {await self._token()}"
            response = await _send(
                self._client, self.name, method, self.base_url + path, headers=headers, **kwargs
            )
        if response.status_code >= 500:
            raise BadGateway(
                f"{self.name} answered {response.status_code}", code="peer_error", peer=self.name
            )
        return response

    async def healthy(self) -> bool:
        try:
            response = await _send(self._client, self.name, "GET", self.base_url + "/healthz")
        except (ServiceUnavailable, GatewayTimeout):
            return False
        return response.status_code == 200


async def _send(client: httpx.AsyncClient, peer: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    request_id = request_id_var.get()
    if request_id:
        headers["X-Request-ID"] = request_id
    try:
        return await client.request(method, url, headers=headers, **kwargs)
    except httpx.TimeoutException as exc:
        raise GatewayTimeout(f"{peer} did not answer in time", code="peer_timeout", peer=peer) from exc
    except httpx.TransportError as exc:
        raise ServiceUnavailable(
            f"{peer} is unreachable", code="peer_unavailable", peer=peer, headers={"Retry-After": "5"}
        ) from exc


def new_http_client(timeout_seconds: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds, connect=min(2.0, timeout_seconds)),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        follow_redirects=False,
    )
