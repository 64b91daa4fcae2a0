"""Access tokens for tests: minted for any role, region, scopes and subject, for any service.

A token names a subject the identity model accepts: `user:<n>` for people, `client:<id>` for API clients
and services. Without an explicit subject each (role, region) gets its own stable user number (or client
id), so what a route stores as `created_by` is known to the test: `str(subject_for("officer", TOWN))`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.issues.auth.keys import KeyRing
from services.issues.auth.tokens import mint_access_token
from services.kit.identity import ROLE_SCOPES, Role, Subject
from services.kit.jwt import JWKSCache, TokenVerifier
from tests.support.builders import COUNTY, region_path

CLIENT_ROLES = {Role.integration, Role.service}
# Above any id a test database hands out, so a token's user is never mistaken for a stored one.
_FIRST_TOKEN_USER = 100_000


def subject_for(role: str, region: str = COUNTY) -> Subject:
    """The subject of a test token for `role` at `region` when the test names none (stable across runs)."""
    if role in CLIENT_ROLES:
        return Subject.client(f"test-{role}-{region.replace('*', 'all')}")
    return Subject.user(_FIRST_TOKEN_USER + zlib.crc32(f"{role}@{region}".encode()) % 900_000)


@dataclass(frozen=True)
class TokenMinter:
    """Signs tokens as the issuer does, with `keyring`, for the issuer and audience a service trusts."""

    keyring: KeyRing
    issuer: str
    audience: str

    def token(
        self,
        role: str,
        region: str = COUNTY,
        *,
        scopes: Iterable[str] | None = None,
        subject: Subject | str | None = None,
        lifetime_seconds: int = 600,
        name: str | None = None,
    ) -> str:
        """`token("officer", TOWN)`: the role's own scopes unless `scopes` narrows or widens them."""
        return mint_access_token(
            self.keyring,
            issuer=self.issuer,
            audience=self.audience,
            lifetime_seconds=lifetime_seconds,
            subject=str(subject or subject_for(role, region)),
            role=role,
            region=region,
            region_path=region_path(region),
            scopes=ROLE_SCOPES[Role(role)] if scopes is None else scopes,
            name=name or f"test {role}",
        ).access_token

    def headers(self, role: str, region: str = COUNTY, **kwargs: Any) -> dict[str, str]:
        """Authorization headers: `headers("village", VILLAGE, subject=Subject.user(7))`."""
        return bearer(self.token(role, region, **kwargs))

    def verifier(self) -> TokenVerifier:
        """A verifier that trusts exactly these keys (what scoring and media get in tests)."""

        async def fetch() -> dict[str, Any]:
            jwks: dict[str, Any] = self.keyring.jwks()
            return jwks

        keys = JWKSCache(fetch, min_refresh_interval=0)
        return TokenVerifier(keys, issuer=self.issuer, audience=self.audience)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- taking tokens apart, and tokens the issuer would never make ----


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    """One JWS segment: JSON, base64url without padding."""
    return b64url(json.dumps(value).encode())


def jwt_header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def kid_of(token: str) -> str:
    return str(jwt_header(token)["kid"])


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Header and claims with an empty signature (`alg: none`)."""
    return f"{segment(header)}.{segment(claims)}."


def hs256_with_public_key(public_pem: str, kid: str, claims: dict[str, Any]) -> str:
    """The classic confusion: HMAC-signed with the (public) verification key as the secret."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(claims)}"
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"
