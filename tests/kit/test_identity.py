"""The kit's identity model: roles, scopes, subjects and region paths, and what a token may claim."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from services.kit.app import ApiInfo, build_app
from services.kit.auth import caller_from_claims, caller_router
from services.kit.db import Database
from services.kit.errors import Unauthorized
from services.kit.identity import (
    RANK,
    ROLE_SCOPES,
    SERVICE_ONLY_SCOPES,
    USER_ROLES,
    Role,
    Scope,
    Subject,
    child_path,
    codes_in_path,
    is_within,
    parent_code_of,
    path_prefix,
    tree_depth,
)
from services.kit.jwt import JWKSCache, TokenVerifier, public_jwk, sign
from services.kit.settings import ServiceSettings
from services.kit.state import ServiceState

ISSUER, AUDIENCE, KID = "http://issues.test", "huanzhi", "identity-test-key"
_PRIVATE = ec.generate_private_key(ec.SECP256R1())
PRIVATE_PEM = _PRIVATE.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PUBLIC_PEM = (
    _PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user:4",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "token_use": "access",
        "role": "officer",
        "region": "370282103",
        "region_path": "/37/3702/370282/370282103/",
        "scope": "issues:read regions:read",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


# ---- subjects ----


@given(st.integers(min_value=1, max_value=2**53))
def test_a_user_subject_reads_back_as_the_same_user(user_id: int) -> None:
    subject = Subject.user(user_id)
    assert str(subject) == f"user:{user_id}"
    assert Subject.parse(str(subject)) == subject
    assert subject.user_id == user_id and subject.client_id is None


@given(st.text(st.characters(categories=["L", "N"], include_characters="-_.:"), min_size=1, max_size=40))
def test_a_client_subject_reads_back_as_the_same_client(client_id: str) -> None:
    subject = Subject.client(client_id)
    assert Subject.parse(str(subject)) == subject
    assert subject.client_id == client_id and subject.user_id is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "user",
        "user:",
        "user:0",
        "user:-3",
        "user:abc",
        "user:٣",
        "client:",
        "client:a b",
        "test:officer",
        "4",
    ],
)
def test_a_subject_of_no_known_form_is_refused(text: str) -> None:
    assert Subject.parse(text) is None


# ---- roles and scopes ----


def test_every_role_has_its_scopes_and_a_rank() -> None:
    assert set(ROLE_SCOPES) == set(Role) == set(RANK)


def test_service_only_scopes_are_held_by_the_services_alone() -> None:
    holders = {role for role, scopes in ROLE_SCOPES.items() if scopes & SERVICE_ONLY_SCOPES}
    assert holders == {Role.service}
    assert all(scope in set(Scope) for scopes in ROLE_SCOPES.values() for scope in scopes)


def test_the_county_office_outranks_every_other_user_role() -> None:
    assert all(RANK[Role.admin] >= RANK[role] for role in USER_ROLES)
    assert RANK[Role.citizen] < RANK[Role.grid] < RANK[Role.village] < RANK[Role.officer]


# ---- region paths ----

_CODE = st.text("0123456789ABCDEFGW-", min_size=1, max_size=12).filter(lambda c: not c.startswith("-"))


@given(st.lists(_CODE, min_size=1, max_size=7))
def test_paths_are_built_and_read_back_level_by_level(codes: list[str]) -> None:
    path: str | None = None
    for code in codes:
        path = child_path(path, code)
    assert path is not None
    assert codes_in_path(path) == codes
    assert tree_depth(path) == len(codes) - 1
    assert parent_code_of(path) == (codes[-2] if len(codes) > 1 else None)
    for depth in range(len(codes) + 1):
        prefix = path_prefix(path, depth)
        assert is_within(path, prefix)
        assert codes_in_path(prefix) == codes[:depth]


def test_a_sibling_whose_code_extends_another_is_not_within_it() -> None:
    assert not is_within("/37/3702/3702821/", "/37/3702/370282/")
    assert is_within("/37/3702/370282/370282103/", "/37/3702/370282/")


# ---- what a token may claim ----


def test_claims_of_a_known_role_and_subject_make_a_caller() -> None:
    caller = caller_from_claims(claims(sub="user:42", role="village"))
    assert caller.role is Role.village
    assert caller.user_id == 42 and str(caller.subject) == "user:42"
    assert caller.has("issues:read") and not caller.has("issues:write")


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "superadmin"},
        {"role": "Admin"},
        {"role": 7},
        {"sub": "test:officer"},
        {"sub": "user:abc"},
        {"region_path": "370282103"},
        {"scope": ["issues:read"]},
        {"region": None},
    ],
    ids=[
        "unknown-role",
        "role-case",
        "role-number",
        "subject-kind",
        "user-id",
        "path",
        "scope-list",
        "no-region",
    ],
)
def test_claims_outside_the_model_are_a_401(changes: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized) as refused:
        caller_from_claims(claims(**changes))
    assert refused.value.status == 401 and refused.value.instance_code == "invalid_token"


@pytest.fixture
async def kit_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A kit-built app with a caller route, verifying tokens signed by this module's key."""

    async def jwks() -> dict[str, Any]:
        return {"keys": [public_jwk(PUBLIC_PEM, KID)]}

    settings = ServiceSettings(environment="test", data_dir=tmp_path, log_json=False, log_level="WARNING")

    @asynccontextmanager
    async def open_state(database: Database, http: httpx.AsyncClient) -> AsyncIterator[ServiceState[Any]]:
        verifier = TokenVerifier(JWKSCache(jwks), issuer=ISSUER, audience=AUDIENCE)
        yield ServiceState(settings=settings, database=database, http=http, verifier=verifier)

    app = build_app(
        settings,
        api=ApiInfo(title="kit", description="identity test app"),
        routers=[caller_router("/v1/kit/caller", ["caller"])],
        open_state=open_state,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit.test") as client:
            yield client


async def test_a_validly_signed_token_with_an_unknown_role_is_refused(kit_client: httpx.AsyncClient) -> None:
    good = sign(claims(role="inspector"), PRIVATE_PEM, KID)
    answer = await kit_client.get("/v1/kit/caller", headers={"Authorization": f"Bearer {good}"})
    assert answer.status_code == 200
    assert answer.json()["role"] == "inspector" and answer.json()["subject"] == "user:4"

    for forged in (claims(role="superadmin"), claims(sub="intruder:1")):
        token = sign(forged, PRIVATE_PEM, KID)
        refused = await kit_client.get("/v1/kit/caller", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "invalid_token"
