"""One issuer, three services: tokens from issues are accepted by scoring and media, forgeries by none."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.issues.auth.keys import SigningKey, write_new_key
from services.kit.identity import ROLE_SCOPES, Role, service_client_id
from tests.crossservice.conftest import SERVICES, TEST_SUBJECT, LiveStack
from tests.support.builders import TOWN, region_path
from tests.support.problems import assert_unauthorized
from tests.support.tokens import hs256_with_public_key, kid_of, unsigned_token

pytestmark = pytest.mark.crossservice


def other_p256_key() -> str:
    private = ec.generate_private_key(ec.SECP256R1())
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def officer_token(live_stack: LiveStack, http: httpx.Client) -> str:
    return live_stack.login(http, "officer")


def test_password_token_from_issues_is_accepted_by_scoring_and_media(
    live_stack: LiveStack, http: httpx.Client, officer_token: str
) -> None:
    answers = {s: live_stack.caller(http, s, officer_token) for s in SERVICES}
    assert {s: r.status_code for s, r in answers.items()} == dict.fromkeys(SERVICES, 200)
    issues_view = answers["issues"].json()
    assert issues_view["subject"].startswith("user:")
    assert issues_view["role"] == "officer"
    assert issues_view["region"] == TOWN
    assert issues_view["region_path"] == region_path(TOWN)
    assert issues_view["scopes"] == sorted(ROLE_SCOPES[Role.officer])
    assert answers["scoring"].json() == issues_view
    assert answers["media"].json() == issues_view


def test_service_token_from_client_credentials_is_accepted_everywhere(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    """Scoring signs in to call the issuer; its token is good at every service (media never calls out)."""
    client_id = service_client_id("scoring")
    token = live_stack.service_token(http, client_id)
    for service in SERVICES:
        r = live_stack.caller(http, service, token)
        assert r.status_code == 200, (service, r.text)
        assert r.json() == {
            "subject": f"client:{client_id}",
            "role": "service",
            "region": "*",
            "region_path": "/",
            "scopes": sorted(ROLE_SCOPES[Role.service]),
            "name": client_id,
        }, service


def test_token_signed_by_the_test_with_the_issuers_key_is_accepted_everywhere(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    """The control for the refusals below: the signing path itself is sound, only the defect differs."""
    token = live_stack.sign(live_stack.claims())
    for service in SERVICES:
        r = live_stack.caller(http, service, token)
        assert r.status_code == 200, (service, r.text)
        assert r.json()["subject"] == str(TEST_SUBJECT)


def _forged_signature(s: LiveStack) -> str | None:
    return s.sign(s.claims(), key=SigningKey(s.signing_key().kid, other_p256_key(), ""))


def _expired(s: LiveStack) -> str | None:
    past = int(time.time()) - 3600
    return s.sign(s.claims(iat=past, nbf=past, exp=past + 600))  # 50 min ago, far beyond the leeway


def _wrong_audience(s: LiveStack) -> str | None:
    return s.sign(s.claims(aud="someone-else"))


def _wrong_issuer(s: LiveStack) -> str | None:
    return s.sign(s.claims(iss="http://issuer.example"))


def _alg_none(s: LiveStack) -> str | None:
    return unsigned_token({"alg": "none", "typ": "JWT", "kid": s.signing_key().kid}, s.claims())


def _hs256_with_public_key(s: LiveStack) -> str | None:
    key = s.signing_key()
    return hs256_with_public_key(key.public_pem, key.kid, s.claims())


def _subject_of_no_known_form(s: LiveStack) -> str | None:
    return s.sign(s.claims(sub="test:officer"))


def _unknown_role(s: LiveStack) -> str | None:
    return s.sign(s.claims(role="superuser"))


def _unknown_kid(s: LiveStack) -> str | None:
    return s.sign(s.claims(), kid="19990101T000000-0badc0de")


def _missing_exp(s: LiveStack) -> str | None:
    return s.sign(s.claims(exp=None))


def _no_token(s: LiveStack) -> str | None:
    return None


def _garbage(s: LiveStack) -> str | None:
    return "this-is-not-a-jwt"


DEFECTS: dict[str, tuple[Callable[[LiveStack], str | None], str]] = {
    "forged_signature": (_forged_signature, "invalid_token"),
    "expired": (_expired, "invalid_token"),
    "wrong_audience": (_wrong_audience, "invalid_token"),
    "wrong_issuer": (_wrong_issuer, "invalid_token"),
    "alg_none": (_alg_none, "invalid_token"),
    "hs256_with_public_key_as_secret": (_hs256_with_public_key, "invalid_token"),
    "unknown_kid": (_unknown_kid, "invalid_token"),
    "missing_exp": (_missing_exp, "invalid_token"),
    "subject_of_no_known_form": (_subject_of_no_known_form, "invalid_token"),
    "unknown_role": (_unknown_role, "invalid_token"),
    "no_token": (_no_token, "missing_token"),
    "garbage": (_garbage, "invalid_token"),
}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_defective_token_is_refused_with_401_problem(
    live_stack: LiveStack, http: httpx.Client, defect: str, service: str
) -> None:
    make, code = DEFECTS[defect]
    body = assert_unauthorized(live_stack.caller(http, service, make(live_stack)), code)
    assert "subject" not in body and "role" not in body


def test_rotated_key_is_accepted_across_processes_and_old_tokens_keep_working(
    live_stack: LiveStack, http: httpx.Client, officer_token: str
) -> None:
    old_kid = kid_of(officer_token)
    for service in ("scoring", "media"):  # their JWKS caches now hold only the old key
        assert live_stack.caller(http, service, officer_token).status_code == 200
    # Key names start with a UTC second; the new one must sort after the old to become the signer.
    while datetime.now(UTC).strftime("%Y%m%dT%H%M%S") <= old_kid.split("-")[0]:
        time.sleep(0.05)
    new_kid = write_new_key(live_stack.keys_dir).stem

    live_stack.restart_service("issues")

    jwks = http.get(live_stack.issuer + "/.well-known/jwks.json").json()
    assert {k["kid"] for k in jwks["keys"]} >= {old_kid, new_kid}
    new_token = live_stack.login(http, "officer")
    assert kid_of(new_token) == new_kid
    for service in SERVICES:
        fresh = live_stack.caller(http, service, new_token)
        assert fresh.status_code == 200, (service, fresh.text)
        assert fresh.json()["role"] == "officer"
        old = live_stack.caller(http, service, officer_token)
        assert old.status_code == 200, (service, old.text)
        assert old.json() == fresh.json()
