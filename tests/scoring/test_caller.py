"""Scoring accepts the issuer's tokens and nothing else, and answers like every service."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from services.kit.identity import ROLE_SCOPES, Role, Subject
from tests.support.builders import TOWN, VILLAGE, region_path
from tests.support.problems import assert_problem, assert_unauthorized
from tests.support.tokens import TokenMinter, subject_for

CALLER = "/v1/scoring/caller"


async def test_a_token_of_the_issuer_names_the_caller(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    r = await client.get(CALLER, headers=auth("inspector", TOWN))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "subject": str(subject_for("inspector", TOWN)),
        "role": "inspector",
        "region": TOWN,
        "region_path": region_path(TOWN),
        "scopes": sorted(ROLE_SCOPES[Role.inspector]),
        "name": "test inspector",
    }


async def test_a_service_token_covers_the_whole_tree(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    r = await client.get(CALLER, headers=auth("service", "*", subject=Subject.client("svc-issues")))
    assert r.status_code == 200, r.text
    assert (r.json()["subject"], r.json()["region_path"]) == ("client:svc-issues", "/")


async def test_tokens_outside_the_identity_model_are_refused(
    client: httpx.AsyncClient, minter: TokenMinter
) -> None:
    for token in (
        minter.token("village", VILLAGE, subject="test:village"),  # a subject of no known form
        minter.token("village", VILLAGE, subject="user:0"),  # user ids are positive
        minter.token("headman", VILLAGE, subject=Subject.user(3), scopes=[]),  # a role nobody has
    ):
        assert_unauthorized(await client.get(CALLER, headers={"Authorization": f"Bearer {token}"}))
    assert_unauthorized(await client.get(CALLER), "missing_token")


async def test_another_issuers_token_is_refused(client: httpx.AsyncClient, minter: TokenMinter) -> None:
    stranger = TokenMinter(minter.keyring, "http://issuer.example", minter.audience)
    assert_unauthorized(await client.get(CALLER, headers=stranger.headers("admin")))


async def test_readiness_is_its_own_database_only(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "service": "scoring", "checks": {"database": "ok"}}
    assert_problem(await client.get("/v1/no-such-thing"), 404, "not_found")
