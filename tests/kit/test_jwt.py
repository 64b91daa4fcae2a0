"""Token verification: every forged, stale or malformed token is `Unauthorized`, never anything else."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.issues.deps import IssuesState
from services.kit.errors import Problem, ServiceUnavailable, Unauthorized
from services.kit.jwt import JWKSCache, TokenVerifier, public_jwk, sign
from services.kit.revocation import RevocationList, revocations_document
from services.kit.state import typed_state
from tests.support.problems import assert_unauthorized
from tests.support.tokens import b64url as b64
from tests.support.tokens import hs256_with_public_key, segment, unsigned_token

ISSUER = "http://issues.test"
AUDIENCE = "huanzhi"


def new_key() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh P-256 key."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


PRIVATE, PUBLIC = new_key()
OTHER_PRIVATE, _ = new_key()
KID = "2026-key-1"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user:4",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "0123456789abcdef0123456789abcdef",
        "token_use": "access",
        "role": "officer",
        "region": "370282103",
        "region_path": "/37/3702/370282/370282103/",
        "scope": "issues:read regions:read",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


class FakeIssuer:
    """An in-memory JWKS endpoint that counts how often it was asked, and can be made to fail."""

    def __init__(self, *keys: tuple[str, str]) -> None:
        self.keys = [public_jwk(public_pem, kid) for kid, public_pem in keys]
        self.fetches = 0
        self.failing = False

    async def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        if self.failing:
            raise httpx.ConnectError("issuer down")
        return {"keys": list(self.keys)}


def verifier_for(issuer: FakeIssuer, **cache: float) -> TokenVerifier:
    return TokenVerifier(JWKSCache(issuer.fetch, **cache), issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer((KID, PUBLIC))


async def test_a_valid_token_gives_its_claims(issuer: FakeIssuer) -> None:
    token = sign(claims(), PRIVATE, KID)
    verified = await verifier_for(issuer).verify(token)
    assert verified["sub"] == "user:4" and verified["region"] == "370282103"
    assert issuer.fetches == 1


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "signed by another key under our kid": sign(claims(), OTHER_PRIVATE, KID),
        "expired": sign(claims(exp=now - 120, iat=now - 720, nbf=now - 720), PRIVATE, KID),
        "not yet valid": sign(claims(nbf=now + 600), PRIVATE, KID),
        "another audience": sign(claims(aud="someone-else"), PRIVATE, KID),
        "another issuer": sign(claims(iss="http://evil.test"), PRIVATE, KID),
        "no exp": sign(claims(exp=None), PRIVATE, KID),
        "no iat": sign(claims(iat=None), PRIVATE, KID),
        "no sub": sign(claims(sub=None), PRIVATE, KID),
        "no aud": sign(claims(aud=None), PRIVATE, KID),
        "no iss": sign(claims(iss=None), PRIVATE, KID),
        "no jti": sign(claims(jti=None), PRIVATE, KID),
        "exp not a number": sign(claims(exp="tomorrow"), PRIVATE, KID),
        "exp a list": sign(claims(exp=[now + 600]), PRIVATE, KID),
        "aud an object": sign(claims(aud={"x": AUDIENCE}), PRIVATE, KID),
        "refresh token": sign(claims(token_use="refresh"), PRIVATE, KID),
        "no token_use": sign(claims(token_use=None), PRIVATE, KID),
        "alg none": unsigned_token({"alg": "none", "kid": KID}, claims()),
        "alg None": unsigned_token({"alg": "None", "typ": "JWT"}, claims()),
        "alg none over a real signature": segment({"alg": "none", "kid": KID})
        + "."
        + sign(claims(), PRIVATE, KID).split(".", 1)[1],
        "HS256 with the public key as secret": hs256_with_public_key(PUBLIC, KID, claims()),
        "unknown kid": sign(claims(), PRIVATE, "not-a-published-kid"),
        "no kid": unsigned_token({"alg": "ES256"}, claims()),
        "kid not a string": unsigned_token({"alg": "ES256", "kid": 7}, claims()),
        "header a list": f"{segment([1, 2])}.{segment(claims())}.AAAA",
        "payload a list": f"{segment({'alg': 'ES256', 'kid': KID})}.{segment([1])}.AAAA",
        "garbage": "not-a-token",
        "empty": "",
        "two segments": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0",
        "bad base64": "!!!.???.***",
        "header not JSON": f"{b64(b'{not json')}.{segment(claims())}.AAAA",
        "truncated signature": sign(claims(), PRIVATE, KID)[:-10],
    }


BAD_TOKENS = _bad_tokens()


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_is_unauthorized(issuer: FakeIssuer, case: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        await verifier_for(issuer).verify(BAD_TOKENS[case])
    assert type(caught.value) is Unauthorized
    assert caught.value.instance_code == "invalid_token"
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_from_a_newly_published_key_is_found_by_refetching(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer, min_refresh_interval=0)
    await verifier.verify(sign(claims(), PRIVATE, KID))
    new_private, new_public = new_key()
    issuer.keys.append(public_jwk(new_public, "2026-key-2"))
    await verifier.verify(sign(claims(), new_private, "2026-key-2"))
    assert issuer.fetches == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer, min_refresh_interval=0.3)
    await verifier.verify(sign(claims(), PRIVATE, KID))
    assert issuer.fetches == 1
    for n in range(5):
        with pytest.raises(Unauthorized):
            await verifier.verify(sign(claims(), PRIVATE, f"unknown-{n}"))
    assert issuer.fetches == 1  # the first fetch was just now
    await asyncio.sleep(0.35)
    for n in range(5):
        with pytest.raises(Unauthorized):
            await verifier.verify(sign(claims(), PRIVATE, f"unknown-{n}"))
    assert issuer.fetches == 2


async def test_simultaneous_unknown_kids_share_one_fetch(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer, min_refresh_interval=0)
    results = await asyncio.gather(
        *(verifier.verify(sign(claims(), PRIVATE, KID)) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, dict) for r in results), results
    assert issuer.fetches == 1


async def test_without_cached_keys_a_failing_issuer_is_jwks_unavailable(issuer: FakeIssuer) -> None:
    issuer.failing = True
    with pytest.raises(ServiceUnavailable) as caught:
        await verifier_for(issuer).verify(sign(claims(), PRIVATE, KID))
    assert caught.value.instance_code == "jwks_unavailable"
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]


@pytest.mark.parametrize("document", [[], {"keys": 3}, {"keys": "abc"}, "text"])
async def test_a_fetch_that_is_not_a_jwks_is_jwks_unavailable(document: Any) -> None:
    async def fetch() -> Any:
        return document

    verifier = TokenVerifier(JWKSCache(fetch), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ServiceUnavailable) as caught:
        await verifier.verify(sign(claims(), PRIVATE, KID))
    assert caught.value.instance_code == "jwks_unavailable"


async def test_a_failing_issuer_leaves_the_cached_keys_serving(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer, min_refresh_interval=0)
    await verifier.verify(sign(claims(), PRIVATE, KID))
    issuer.failing = True
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(sign(claims(), PRIVATE, "unknown"))
    assert caught.value.instance_code == "invalid_token"
    assert (await verifier.verify(sign(claims(), PRIVATE, KID)))["sub"] == "user:4"


async def test_after_the_ttl_a_failing_issuer_is_not_asked_by_every_request(issuer: FakeIssuer) -> None:
    # ttl=0: the keys are stale at once; a down issuer must not cost every request a fetch.
    verifier = verifier_for(issuer, ttl=0, min_refresh_interval=60)
    await verifier.verify(sign(claims(), PRIVATE, KID))
    issuer.failing = True
    for _ in range(5):
        assert (await verifier.verify(sign(claims(), PRIVATE, KID)))["sub"] == "user:4"
    for n in range(5):
        with pytest.raises(Unauthorized):
            await verifier.verify(sign(claims(), PRIVATE, f"unknown-{n}"))
    assert issuer.fetches == 1


async def test_a_failed_fetch_is_retried_after_the_interval(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer, min_refresh_interval=0.2)
    issuer.failing = True
    for _ in range(3):
        with pytest.raises(ServiceUnavailable, match="could not be fetched"):
            await verifier.verify(sign(claims(), PRIVATE, KID))
    assert issuer.fetches == 1
    issuer.failing = False
    await asyncio.sleep(0.25)
    assert (await verifier.verify(sign(claims(), PRIVATE, KID)))["sub"] == "user:4"
    assert issuer.fetches == 2


def _verify_sync(token: str) -> None:
    issuer = FakeIssuer((KID, PUBLIC))
    verifier = verifier_for(issuer, min_refresh_interval=0)
    with pytest.raises(Unauthorized):
        asyncio.run(verifier.verify(token))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_any_text_as_a_token_is_unauthorized(text: str) -> None:
    _verify_sync(text)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_header = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["ES256", "none", "HS256", "RS256"]) | _json,
        "kid": st.just(KID) | _json,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_header | _json, payload=_json, signature=st.binary(max_size=80))
def test_any_well_formed_looking_token_is_unauthorized(header: Any, payload: Any, signature: bytes) -> None:
    _verify_sync(f"{segment(header)}.{segment(payload)}.{b64(signature)}")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.dictionaries(
        st.sampled_from(["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "token_use", "role"]), _json
    )
)
def test_a_properly_signed_token_with_arbitrary_claims_never_escapes_as_another_error(
    payload: dict[str, Any],
) -> None:
    token = sign(payload, PRIVATE, KID)
    issuer = FakeIssuer((KID, PUBLIC))
    with contextlib.suppress(Unauthorized):
        asyncio.run(verifier_for(issuer).verify(token))


# Through the HTTP app: the issues service verifies with its own keys.


def _app_state(app: FastAPI) -> IssuesState:
    return typed_state(app, IssuesState)


def _app_key(app: FastAPI) -> tuple[str, str]:
    current = _app_state(app).keyring.current
    return current.kid, current.public_pem


def _app_claims(app: FastAPI, **changes: Any) -> dict[str, Any]:
    settings_ = _app_state(app).settings
    return claims(iss=settings_.token_issuer, aud=settings_.token_audience, **changes)


async def _caller(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/auth/caller", headers={"Authorization": f"Bearer {token}"})


async def test_the_app_refuses_an_alg_none_token(client: httpx.AsyncClient, app: FastAPI) -> None:
    kid, _ = _app_key(app)
    assert_unauthorized(await _caller(client, unsigned_token({"alg": "none", "kid": kid}, _app_claims(app))))


async def test_the_app_refuses_hs256_signed_with_its_public_key(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    kid, public_pem = _app_key(app)
    # The JWKS form of the key is what an attacker would download; the PEM is what a naive verifier uses.
    assert_unauthorized(await _caller(client, hs256_with_public_key(public_pem, kid, _app_claims(app))))


async def test_the_app_accepts_its_own_token_and_refuses_it_tampered(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    token = _app_state(app).keyring.sign(_app_claims(app))
    assert (await _caller(client, token)).status_code == 200
    head, _claims, sig = token.split(".")
    raised = segment(_app_claims(app, role="admin", region_path="/"))
    assert_unauthorized(await _caller(client, f"{head}.{raised}.{sig}"))


async def test_a_signed_token_missing_the_role_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    token = _app_state(app).keyring.sign(_app_claims(app, role=None))
    assert_unauthorized(await _caller(client, token))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic b2ZmaWNlcjpwdw=="}, {"Authorization": "Bearer"}, {"Authorization": ""}],
)
async def test_no_bearer_token_is_missing_token(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    assert_unauthorized(await client.get("/v1/auth/caller", headers=headers), code="missing_token")


@pytest.mark.parametrize(
    "case", ["garbage", "bad base64", "header a list", "alg None", "truncated signature"]
)
async def test_the_app_answers_401_for_malformed_tokens(client: httpx.AsyncClient, case: str) -> None:
    assert_unauthorized(await _caller(client, BAD_TOKENS[case]))


async def test_requests_arriving_during_the_first_fetch_wait_for_its_keys(issuer: FakeIssuer) -> None:
    """A cold verifier under load: every request waits for the one fetch in flight, none answers 503."""

    async def slow_fetch() -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return await issuer.fetch()

    verifier = TokenVerifier(JWKSCache(slow_fetch), issuer=ISSUER, audience=AUDIENCE)
    good, bogus = sign(claims(), PRIVATE, KID), sign(claims(), PRIVATE, "bogus")

    async def outcome(token: str) -> str:
        try:
            return str((await verifier.verify(token))["sub"])
        except Problem as problem:
            return f"{problem.status} {problem.instance_code}"

    results = await asyncio.gather(outcome(good), outcome(good), outcome(bogus), outcome(good))
    assert results == ["user:4", "user:4", "401 invalid_token", "user:4"]
    assert issuer.fetches == 1


# ---- tokens verified once are remembered: what still holds on each use ----


async def test_a_remembered_token_still_expires(issuer: FakeIssuer) -> None:
    now = [time.time()]
    verifier = TokenVerifier(JWKSCache(issuer.fetch), issuer=ISSUER, audience=AUDIENCE, clock=lambda: now[0])
    token = sign(claims(exp=int(now[0]) + 60), PRIVATE, KID)
    assert (await verifier.verify(token))["sub"] == "user:4"
    now[0] += 60 + 29  # within the leeway of 30 s
    assert (await verifier.verify(token))["sub"] == "user:4"
    now[0] += 2
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    assert caught.value.detail == "token expired"


async def test_a_remembered_token_goes_with_its_key_when_the_key_is_withdrawn(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer, ttl=0, min_refresh_interval=0)
    token = sign(claims(), PRIVATE, KID)
    await verifier.verify(token)
    _, other_public = new_key()
    issuer.keys = [public_jwk(other_public, "2026-key-2")]  # the key is withdrawn (say, leaked)
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    assert caught.value.detail == "token signed by an unknown key"


async def test_a_key_republished_under_the_same_kid_is_checked_afresh(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer, ttl=0, min_refresh_interval=0)
    token = sign(claims(), PRIVATE, KID)
    await verifier.verify(token)
    _, other_public = new_key()
    issuer.keys = [public_jwk(other_public, KID)]  # the kid now names another key: the signature fails
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_a_remembered_token_is_refused_once_its_subject_is_revoked(issuer: FakeIssuer) -> None:
    revoked: dict[str, float] = {}

    async def fetch() -> dict[str, Any]:
        return revocations_document(revoked, 3660)

    verifier = TokenVerifier(
        JWKSCache(issuer.fetch), issuer=ISSUER, audience=AUDIENCE, revocations=RevocationList(fetch, ttl=0)
    )
    token = sign(claims(iat=int(time.time()) - 5), PRIVATE, KID)
    await verifier.verify(token)
    revoked["user:4"] = time.time()
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    assert caught.value.instance_code == "token_revoked"


async def test_remembered_claims_cannot_be_changed_through_an_answer(issuer: FakeIssuer) -> None:
    verifier = verifier_for(issuer)
    token = sign(claims(), PRIVATE, KID)
    (await verifier.verify(token))["region_path"] = "/"
    assert (await verifier.verify(token))["region_path"] == "/37/3702/370282/370282103/"
