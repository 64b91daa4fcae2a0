"""The published keys (JWKS) and key rotation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from services.issues.auth.keys import KeyRing, load_key, write_new_key
from services.kit.state import state_of
from tests.issues.api import caller, login
from tests.support.apps import ISSUES, client_for, running
from tests.support.problems import assert_unauthorized
from tests.support.tokens import kid_of

JWKS = "/.well-known/jwks.json"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


async def test_jwks_is_public_and_lists_only_public_ec_p256_keys(client: httpx.AsyncClient) -> None:
    r = await client.get(JWKS)  # no Authorization header
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    keys = r.json()["keys"]
    assert len(keys) == 1
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        assert key["alg"] == "ES256" and key["use"] == "sig"
        assert key["kid"] and key["x"] and key["y"]
        assert not PRIVATE_MEMBERS & set(key), key


async def test_the_published_key_is_the_one_that_signs(client: httpx.AsyncClient) -> None:
    kids = [k["kid"] for k in (await client.get(JWKS)).json()["keys"]]
    assert kid_of(await login(client)) in kids


async def test_a_rotated_key_signs_new_tokens_while_old_tokens_still_verify(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    old_token = await login(client)
    old_kid = kid_of(old_token)
    # The embedded default keeps its keys under data_dir/keys when no signing_keys_dir is set.
    settings = state_of(app).settings
    folder = settings.signing_keys_dir or settings.data_dir / "keys"
    assert [p.stem for p in folder.glob("*.pem")] == [old_kid]
    new_kid = write_new_key(folder).stem

    async with running(ISSUES.build(settings)) as rotated, client_for(rotated, ISSUES.base_url) as c:
        keys = (await c.get(JWKS)).json()["keys"]
        assert sorted(k["kid"] for k in keys) == sorted([old_kid, new_kid])
        assert all(not PRIVATE_MEMBERS & set(k) for k in keys)
        new_token = await login(c)
        assert kid_of(new_token) == new_kid
        for token in (old_token, new_token):
            me = await caller(c, token)
            assert me.status_code == 200, me.text
            assert me.json()["role"] == "officer"


async def test_a_token_from_a_retired_key_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    old_token = await login(client)
    settings = state_of(app).settings
    folder = settings.data_dir / "keys"
    write_new_key(folder)
    (folder / f"{kid_of(old_token)}.pem").unlink()

    async with running(ISSUES.build(settings)) as retired, client_for(retired, ISSUES.base_url) as c:
        assert_unauthorized(await caller(c, old_token))


def test_keys_made_within_one_second_still_sign_newest_first(tmp_path: Path) -> None:
    for _ in range(10):
        newest = write_new_key(tmp_path)
        assert KeyRing.from_folder(tmp_path, generate_if_empty=False).current.kid == newest.stem
    assert len(KeyRing.from_folder(tmp_path, generate_if_empty=False).jwks()["keys"]) == 10


def test_an_empty_key_folder_is_refused_when_keys_are_configured(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no signing keys"):
        KeyRing.from_folder(tmp_path / "keys", generate_if_empty=False)


def test_a_key_that_is_not_p256_is_refused(tmp_path: Path) -> None:
    other_curve = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "p384.pem"
    path.write_bytes(other_curve)
    with pytest.raises(ValueError, match="P-256"):
        load_key(path)


def test_a_new_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    assert write_new_key(tmp_path).stat().st_mode & 0o077 == 0
