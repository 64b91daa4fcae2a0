"""JWT signing and verification: the only module that touches python-jose.

Algorithms are pinned, `exp`/`iss`/`aud` always checked, keys found by `kid` in a JWKS that is cached
and refreshed when an unknown `kid` appears. Every python-jose failure (its base `JOSEError`, which
covers `JWKError` from an HS256-with-the-public-key forgery) becomes `Unauthorized`, never a 500. An issuer
whose keys cannot be fetched (and none are cached) is `ServiceUnavailable`: the token may well be good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from services.kit.errors import ServiceUnavailable, Unauthorized
from services.kit.revocation import RevocationList

ALGORITHM = "ES256"
ALLOWED_ALGORITHMS = [ALGORITHM]
TOKEN_USE = "access"
LEEWAY_SECONDS = 30  # clock skew allowed on exp, nbf and iat

JWKSFetcher = Callable[[], Awaitable[dict[str, Any]]]


def sign(claims: dict[str, Any], private_key_pem: str, kid: str) -> str:
    """Sign `claims` with an EC P-256 private key; the header names the key by `kid`."""
    return str(jwt.encode(claims, private_key_pem, algorithm=ALGORITHM, headers={"kid": kid}))


def public_jwk(public_pem: str, kid: str) -> dict[str, Any]:
    """A public key as a JWK, with `kid`, `alg` and `use` set."""
    data: dict[str, Any] = jwk.construct(public_pem, ALGORITHM).to_dict()
    data.update(kid=kid, alg=ALGORITHM, use="sig")
    return data


class JWKSCache:
    """Public keys by `kid`, fetched with `fetch`, cached for `ttl` seconds, refreshed on an unknown kid.

    Fetches are at least `min_refresh_interval` apart, failed ones included: an issuer that is down is
    not asked again by every request, and unknown-kid tokens cannot make us hammer it.
    """

    def __init__(self, fetch: JWKSFetcher, *, ttl: float = 3600, min_refresh_interval: float = 5.0) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._min_refresh = min_refresh_interval
        # Verifying keys built once per fetch: python-jose would rebuild the EC key from the JWK on every
        # request (~0.3 ms of CPU each). A JWK that is not an ES256 key is left out (its tokens: unknown key).
        self._keys: dict[str, Key] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Key | None:
        now = time.monotonic()
        due = now - self._fetched_at > self._ttl or kid not in self._keys
        if due and self._lock.locked():
            async with self._lock:  # a fetch is in flight: wait for its keys rather than answer without
                pass
        elif due and now - self._attempted_at >= self._min_refresh:
            await self._refresh(now)
        if not self._keys and self._fetched_at == float("-inf"):
            # Not the caller's fault: its token may be fine, so 503 (try again), not 401 (get a new token).
            raise ServiceUnavailable(
                "the token issuer's keys could not be fetched",
                code="jwks_unavailable",
                headers={"Retry-After": "5"},
            )
        return self._keys.get(kid)

    async def _refresh(self, asked_at: float) -> None:
        async with self._lock:
            if self._attempted_at >= asked_at:  # another request fetched (or tried) while we waited
                return
            self._attempted_at = time.monotonic()
            try:
                document = await self._fetch()
            except (httpx.HTTPError, ValueError):
                return  # keep serving the keys we have, if any
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                return  # not a JWKS: as good as a failed fetch
            self._keys = {
                str(k["kid"]): verifier
                for k in keys
                if isinstance(k, dict) and "kid" in k and (verifier := _verifying_key(k)) is not None
            }
            self._fetched_at = time.monotonic()


def _verifying_key(jwk_: dict[str, Any]) -> Key | None:
    if jwk_.get("kty") != "EC" or jwk_.get("alg", ALGORITHM) != ALGORITHM:
        return None
    try:
        return jwk.construct(jwk_, ALGORITHM)
    except (JOSEError, ValueError, TypeError, KeyError):
        return None


def http_jwks_fetcher(client: httpx.AsyncClient, url: str) -> JWKSFetcher:
    async def fetch() -> dict[str, Any]:
        response = await client.get(url)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("JWKS is not an object")
        return document

    return fetch


class TokenVerifier:
    """Verifies access tokens; a token verified once is remembered (its exact text) until it expires.

    An ES256 signature costs ~0.15 ms of CPU to check, and a client sends the same token with every request
    until it expires. What a remembered token still goes through on each use: its expiry, its signing key
    still being published (a key withdrawn from the JWKS takes its tokens with it), and the revocations.
    """

    REMEMBERED = 4096  # tokens (~1 KiB each with their claims); the oldest is forgotten first

    def __init__(
        self,
        keys: JWKSCache,
        *,
        issuer: str,
        audience: str,
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.revocations = revocations
        self._clock = clock
        self._verified: dict[str, tuple[dict[str, Any], str, Key]] = {}

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of an access token, or `Unauthorized`."""
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, kid, key = remembered
            if claims["exp"] < self._clock() - LEEWAY_SECONDS:
                del self._verified[token]
                raise Unauthorized("token expired", code="invalid_token")
            if await self.keys.key(kid) is not key:
                del self._verified[token]
                return await self.verify(token)  # judged afresh against the keys published now
        else:
            claims, kid, key = await self._verify_signed(token)
            if len(self._verified) >= self.REMEMBERED:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims, kid, key
        if self.revocations is not None:
            revoked_at = await self.revocations.revoked_at(str(claims["sub"]))
            if revoked_at is not None and claims["iat"] <= revoked_at:
                raise Unauthorized("token revoked", code="token_revoked")
        return dict(claims)

    async def _verify_signed(self, token: str) -> tuple[dict[str, Any], str, Key]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALLOWED_ALGORITHMS:
                raise Unauthorized("token algorithm not accepted", code="invalid_token")
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthorized("token has no key id", code="invalid_token")
            key = await self.keys.key(kid)
            if key is None:
                raise Unauthorized("token signed by an unknown key", code="invalid_token")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALLOWED_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_aud": True,
                    "require_iss": True,
                    "require_jti": True,
                    "leeway": LEEWAY_SECONDS,
                },
            )
        except JOSEError as exc:
            raise Unauthorized(_reason(exc), code="invalid_token") from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise Unauthorized("malformed token", code="invalid_token") from exc
        if claims.get("token_use") != TOKEN_USE:
            raise Unauthorized("not an access token", code="invalid_token")
        # RFC 7519 NumericDate: a number. python-jose also takes "1767225600" as a string.
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise Unauthorized(f"token claim {name} is not a number", code="invalid_token")
        return claims, kid, key


def _reason(exc: JOSEError) -> str:
    text = str(exc).lower()
    if "expired" in text:
        return "token expired"
    if "audience" in text:
        return "token audience not accepted"
    if "issuer" in text:
        return "token issuer not accepted"
    return "token could not be verified"
