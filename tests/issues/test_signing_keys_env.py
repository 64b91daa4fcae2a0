"""Signing keys given through the environment as a PEM bundle (for deployments without a key folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from services.issues.app import keyring_from
from services.issues.auth.keys import jwk_thumbprint, keys_from_pem_bundle
from services.issues.settings import IssuesSettings


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_every_key_in_the_bundle_is_published_and_the_last_signs(tmp_path: Path) -> None:
    old, new = _pem(ec.generate_private_key(ec.SECP256R1())), _pem(ec.generate_private_key(ec.SECP256R1()))
    settings = IssuesSettings(environment="test", data_dir=tmp_path, signing_keys_pem=old + "\n" + new)
    keyring = keyring_from(settings)
    kids = [k["kid"] for k in keyring.jwks()["keys"]]
    assert len(kids) == 2
    assert kids[1] == jwk_thumbprint(keyring.keys[1].public_pem)
    token = keyring.sign({"sub": "x"})
    assert jwt.get_unverified_header(token)["kid"] == kids[1]
    assert not (tmp_path / "keys").exists()  # nothing generated on disk when keys come from the environment


def test_the_thumbprint_kid_is_stable_for_the_same_key() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    assert keys_from_pem_bundle(pem)[0].kid == keys_from_pem_bundle(pem)[0].kid


@pytest.mark.parametrize(
    "bundle",
    ["", "not a key", _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))],
    ids=["empty", "garbage", "rsa"],
)
def test_a_bundle_without_a_usable_p256_key_is_refused_at_start(bundle: str) -> None:
    with pytest.raises(ValueError, match=r"PEM|P-256"):
        keys_from_pem_bundle(bundle)


def test_production_accepts_keys_from_the_environment(tmp_path: Path) -> None:
    settings = IssuesSettings(
        environment="production",
        database_url="postgresql+asyncpg://db/issues",
        signing_keys_pem=_pem(ec.generate_private_key(ec.SECP256R1())),
        scoring_client_secret="s" * 32,
    )
    assert settings.signing_keys_pem is not None
