"""The verifiers' cache of the issuer's revocations: fresh within its time, kept when the issuer is down."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.kit.errors import ServiceUnavailable
from services.kit.revocation import RevocationList, revocations_document


class Issuer:
    def __init__(self) -> None:
        self.revoked: dict[str, float] = {}
        self.down = False
        self.asked = 0

    async def fetch(self) -> dict[str, Any]:
        self.asked += 1
        if self.down:
            raise httpx.ConnectError("issuer down")
        return revocations_document(self.revoked, 3660)


async def test_a_revocation_is_seen_once_the_cache_time_has_passed() -> None:
    issuer = Issuer()
    fresh = RevocationList(issuer.fetch, ttl=0)
    assert await fresh.revoked_at("user:4") is None
    issuer.revoked["user:4"] = 1_800_000_000.5
    assert await fresh.revoked_at("user:4") == 1_800_000_000.5

    cached = RevocationList(issuer.fetch, ttl=3600)
    assert await cached.revoked_at("user:5") is None
    issuer.revoked["user:5"] = 1_800_000_001.0
    assert await cached.revoked_at("user:5") is None  # within its time the list is not asked again
    assert issuer.asked == 3


async def test_an_issuer_that_is_down_leaves_the_last_list_in_force() -> None:
    issuer = Issuer()
    issuer.revoked["client:hotline"] = 1_800_000_000.0
    revocations = RevocationList(issuer.fetch, ttl=0)
    assert await revocations.revoked_at("client:hotline") == 1_800_000_000.0
    issuer.down = True
    assert await revocations.revoked_at("client:hotline") == 1_800_000_000.0


async def test_without_any_list_verification_is_unavailable_not_open() -> None:
    issuer = Issuer()
    issuer.down = True
    with pytest.raises(ServiceUnavailable) as refused:
        await RevocationList(issuer.fetch, ttl=0).revoked_at("user:4")
    assert refused.value.instance_code == "revocations_unavailable"


async def test_a_malformed_document_counts_as_a_failed_fetch() -> None:
    async def broken() -> dict[str, Any]:
        return {"subjects": [{"sub": "user:4"}]}

    with pytest.raises(ServiceUnavailable):
        await RevocationList(broken, ttl=0).revoked_at("user:4")
