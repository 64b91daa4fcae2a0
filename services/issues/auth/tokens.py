"""Minting access tokens: the claims every service reads."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from services.issues.auth.keys import KeyRing
from services.kit.jwt import TOKEN_USE


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def mint_access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    audience: str,
    lifetime_seconds: int,
    subject: str,
    role: str,
    region: str,
    region_path: str,
    scopes: Iterable[str],
    name: str | None = None,
) -> IssuedToken:
    issued_at = time.time()
    now = int(issued_at)
    scope = " ".join(sorted(set(scopes)))
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        # To the millisecond (RFC 7519 allows fractions): a token issued the moment after a revocation,
        # in the same second, is still told apart from the ones revoked.
        "iat": round(issued_at, 3),
        "nbf": now,
        "exp": now + lifetime_seconds,
        "jti": secrets.token_hex(16),
        "token_use": TOKEN_USE,
        "role": role,
        "region": region,
        "region_path": region_path,
        "scope": scope,
    }
    if name:
        claims["name"] = name
    return IssuedToken(keyring.sign(claims), lifetime_seconds, scope)
