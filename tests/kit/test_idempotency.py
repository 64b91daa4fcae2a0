"""Idempotency-Key on creates, through the issues app (the kit middleware is the same in all three)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import insert

from services.issues.db import idempotency_keys
from services.issues.regions.models import Region
from services.kit.db import utcnow
from services.kit.idempotency import BodyFingerprint
from services.kit.identity import Subject
from services.kit.state import state_of
from tests.support.builders import COUNTY, TOWN, VILLAGE, new_region
from tests.support.problems import assert_problem
from tests.support.rows import count_rows

OFFICER = TOWN
ME = Subject.user(5)
NEW_VILLAGE = new_region(code="370282103299", name="新建村")


async def _keys(app: FastAPI) -> int:
    return await count_rows(state_of(app).database, idempotency_keys)


async def test_a_retried_create_answers_the_first_answer_and_stores_once(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Any
) -> None:
    headers = {**auth("officer", OFFICER, subject=ME), "Idempotency-Key": "k-1"}
    before = await count_rows(Region)
    first = await client.post("/v1/regions", json=NEW_VILLAGE, headers=headers)
    again = await client.post("/v1/regions", json=NEW_VILLAGE, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await count_rows(Region) == before + 1


async def test_the_same_key_with_another_body_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Any
) -> None:
    headers = {**auth("officer", OFFICER, subject=ME), "Idempotency-Key": "k-2"}
    assert (await client.post("/v1/regions", json=NEW_VILLAGE, headers=headers)).status_code == 201
    before = await count_rows(Region)
    other = await client.post("/v1/regions", json={**NEW_VILLAGE, "code": "370282103298"}, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    assert await count_rows(Region) == before


async def test_keys_belong_to_the_caller(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], count_rows: Any
) -> None:
    first = await client.post(
        "/v1/regions",
        json=NEW_VILLAGE,
        headers={**auth("officer", OFFICER, subject=ME), "Idempotency-Key": "shared"},
    )
    second = await client.post(
        "/v1/regions",
        json={**NEW_VILLAGE, "code": "370282103297"},
        headers={**auth("admin", COUNTY, subject=Subject.user(1)), "Idempotency-Key": "shared"},
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["code"] == "370282103297"


async def test_a_request_still_in_flight_answers_409(
    client: httpx.AsyncClient, app: FastAPI, auth: Callable[..., dict[str, str]], count_rows: Any
) -> None:
    async with state_of(app).database.transaction() as session:
        await session.execute(
            insert(idempotency_keys).values(
                subject=str(ME), key="busy", method="POST", path="/v1/regions", created_at=utcnow()
            )
        )
    before = await count_rows(Region)
    r = await client.post(
        "/v1/regions",
        json=NEW_VILLAGE,
        headers={**auth("officer", OFFICER, subject=ME), "Idempotency-Key": "busy"},
    )
    assert_problem(r, 409, "idempotency_key_in_flight")
    assert r.headers["retry-after"] == "1"
    assert await count_rows(Region) == before


async def test_a_refusal_that_a_retry_may_cure_is_not_stored(
    client: httpx.AsyncClient, app: FastAPI, auth: Callable[..., dict[str, str]]
) -> None:
    headers = {**auth("officer", OFFICER, subject=ME), "Idempotency-Key": "dup"}
    existing = {**NEW_VILLAGE, "code": VILLAGE}  # a village of the tree: 409 region_code_taken
    assert_problem(await client.post("/v1/regions", json=existing, headers=headers), 409, "region_code_taken")
    assert await _keys(app) == 0


async def test_a_bad_key_is_refused_and_requests_without_a_token_are_left_to_the_route(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    long_key = {**auth("officer", OFFICER), "Idempotency-Key": "x" * 256}
    r = await client.post("/v1/regions", json=NEW_VILLAGE, headers=long_key)
    assert_problem(r, 400, "invalid_idempotency_key")
    anonymous = await client.post("/v1/regions", json=NEW_VILLAGE, headers={"Idempotency-Key": "k"})
    assert_problem(anonymous, 401, "missing_token")


async def test_the_openapi_document_offers_the_header_on_creates(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    names = [p["name"] for p in spec["paths"]["/v1/regions"]["post"].get("parameters", [])]
    assert "Idempotency-Key" in names
    token_params = spec["paths"]["/v1/auth/token"]["post"].get("parameters", [])
    assert all(p["name"] != "Idempotency-Key" for p in token_params)


def _fingerprint(content_type: bytes, body: bytes, chunk: int) -> str:
    digest = BodyFingerprint(content_type)
    for i in range(0, len(body), chunk):
        digest.update(body[i : i + chunk])
    return digest.hexdigest()


@given(
    payload=st.binary(max_size=300),
    boundary_a=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=40),
    boundary_b=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=40),
    chunk=st.integers(min_value=1, max_value=64),
)
def test_multipart_fingerprint_ignores_the_boundary_however_the_body_is_chunked(
    payload: bytes, boundary_a: str, boundary_b: str, chunk: int
) -> None:
    def body(boundary: str) -> bytes:
        b = boundary.encode()
        return (
            b"--"
            + b
            + b'\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
            + payload
            + b"\r\n--"
            + b
            + b"--\r\n"
        )

    def ctype(boundary: str) -> bytes:
        return f"multipart/form-data; boundary={boundary}".encode()

    assume(boundary_a.encode() not in payload and boundary_b.encode() not in payload)
    assert _fingerprint(ctype(boundary_a), body(boundary_a), chunk) == _fingerprint(
        ctype(boundary_b), body(boundary_b), 1000
    )


def test_fingerprint_still_tells_different_bodies_apart() -> None:
    ctype = b"multipart/form-data; boundary=xyzxyzxyz"
    one = b"--xyzxyzxyz\r\n\r\nA\r\n--xyzxyzxyz--"
    two = b"--xyzxyzxyz\r\n\r\nB\r\n--xyzxyzxyz--"
    assert _fingerprint(ctype, one, 7) != _fingerprint(ctype, two, 7)
    assert _fingerprint(b"application/json", b'{"a":1}', 3) != _fingerprint(
        b"application/json", b'{"a":2}', 3
    )
