"""The issues service's OpenAPI says what its code does: which fields may be null, strict booleans, the
full `Allow` of every 405, the `Idempotency-Key` characters and the empty CSV import."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col

from services.issues.regions.models import Region
from services.issues.users.models import User
from tests.issues.api import user_id
from tests.support.builders import TOWN, VILLAGE
from tests.support.problems import assert_problem

pytestmark = pytest.mark.asyncio

Auth = Callable[..., dict[str, str]]
Count = Callable[..., Any]
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH")
IMPORT_HEADER = "code,name,level,parent_code\n"


async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    document: dict[str, Any] = r.json()
    return document


def nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(nullable(s) for s in schema.get("anyOf", []))


def refused_fields(r: httpx.Response) -> set[str]:
    """The fields a 422 names (an Update refusal is about one field at a time)."""
    body = assert_problem(r, 422, "validation_failed")
    return {e["field"] for e in body["errors"]}


# ---- nullable in the spec exactly where null is taken ----------------------------------------------


# What each Update shape takes as null: the one field whose null means something. Any other Update shape
# of the service takes null nowhere.
NULLABLE_UPDATE_FIELDS = {"RegionUpdate": {"parent_code"}, "UserUpdate": {"phone"}}


async def test_every_update_shape_is_nullable_only_where_null_means_something(
    client: httpx.AsyncClient,
) -> None:
    schemas = (await spec(client))["components"]["schemas"]
    updates = {name for name in schemas if name.endswith("Update")}
    assert set(NULLABLE_UPDATE_FIELDS) <= updates
    for name in updates:
        properties = schemas[name]["properties"]
        nullable_fields = {field for field, s in properties.items() if nullable(s)}
        assert nullable_fields == NULLABLE_UPDATE_FIELDS.get(name, set()), name
    for name in NULLABLE_UPDATE_FIELDS:
        assert not schemas[name].get("required"), f"{name}: every field of a PATCH may be left out"


async def test_null_is_refused_for_every_region_field_the_spec_does_not_call_nullable(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    properties = (await spec(client))["components"]["schemas"]["RegionUpdate"]["properties"]
    admin = auth("admin")
    for field, schema in properties.items():
        r = await client.patch(f"/v1/regions/{VILLAGE}", json={field: None}, headers=admin)
        if nullable(schema):
            # parent_code: null asks for a root, which only a caller over the whole tree may make.
            assert_problem(r, 403, "cannot_create_root")
        else:
            assert refused_fields(r) == {f"body.{field}"}, field
    read = (await client.get(f"/v1/regions/{VILLAGE}", headers=admin)).json()
    assert (read["level"], read["name"], read["parent_code"]) == ("village", "前庄村", "370282103-GQ01")
    assert await count_rows(Region, col(Region.level) == "village", col(Region.code) == VILLAGE) == 1


async def test_level_null_is_422_and_leaving_it_out_keeps_it(client: httpx.AsyncClient, auth: Auth) -> None:
    refused = await client.patch(f"/v1/regions/{VILLAGE}", json={"level": None}, headers=auth("admin"))
    assert refused_fields(refused) == {"body.level"}
    renamed = await client.patch(f"/v1/regions/{VILLAGE}", json={"name": "前庄社区"}, headers=auth("admin"))
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["level"]) == ("前庄社区", "village")


async def test_null_is_refused_for_every_user_field_but_the_phone(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Count
) -> None:
    properties = (await spec(client))["components"]["schemas"]["UserUpdate"]["properties"]
    village = await user_id(app, "village")
    for field, schema in properties.items():
        r = await client.patch(f"/v1/users/{village}", json={field: None}, headers=auth("admin"))
        if nullable(schema):
            assert r.status_code == 200, r.text
            assert r.json()[field] is None
        else:
            assert refused_fields(r) == {f"body.{field}"}, field
    assert await count_rows(User, col(User.id) == village, col(User.disabled).is_(False)) == 1


# ---- booleans are JSON booleans --------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 0, "no", "yes", "true", "false", "1", [], {}])
async def test_disabled_takes_only_a_json_boolean(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Count, value: Any
) -> None:
    village = await user_id(app, "village")
    r = await client.patch(f"/v1/users/{village}", json={"disabled": value}, headers=auth("admin"))
    body = assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["body.disabled"]
    assert await count_rows(User, col(User.id) == village, col(User.disabled).is_(False)) == 1


async def test_disabled_true_disables_and_false_enables(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI, count_rows: Count
) -> None:
    village = await user_id(app, "village")
    for value in (True, False):
        r = await client.patch(f"/v1/users/{village}", json={"disabled": value}, headers=auth("admin"))
        assert r.status_code == 200, r.text
        assert r.json()["disabled"] is value
        assert await count_rows(User, col(User.id) == village, col(User.disabled).is_(value)) == 1


BOOLEAN_QUERIES = [
    ("/v1/users", "disabled"),
    ("/v1/clients", "revoked"),
]


@pytest.mark.parametrize(("path", "name"), BOOLEAN_QUERIES)
@pytest.mark.parametrize("value", ["1", "0", "yes", "no", "on", "True", "FALSE", "t", ""])
async def test_boolean_query_parameters_take_only_true_or_false(
    client: httpx.AsyncClient, auth: Auth, path: str, name: str, value: str
) -> None:
    r = await client.get(path, params={name: value}, headers=auth("admin"))
    body = assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == [f"query.{name}"]


STRICT_BOOLEAN_QUERIES = [
    ("get", "/v1/clients", "revoked"),
    ("get", "/v1/users", "disabled"),
    ("post", "/v1/regions/import", "dry_run"),
    ("post", "/v1/regions/import", "partial"),
]


async def test_boolean_query_parameters_are_documented_as_exactly_true_or_false(
    client: httpx.AsyncClient,
) -> None:
    paths = (await spec(client))["paths"]
    for method, path, name in STRICT_BOOLEAN_QUERIES:
        (parameter,) = [p for p in paths[path][method]["parameters"] if p["name"] == name]
        assert parameter["in"] == "query"
        assert parameter["schema"]["type"] == "boolean" and "anyOf" not in parameter["schema"]
        assert "Exactly `true` or `false`" in parameter["description"]


async def test_users_filter_true_and_false(client: httpx.AsyncClient, auth: Auth, app: FastAPI) -> None:
    village = await user_id(app, "village")
    await client.post(f"/v1/users/{village}/disable", headers=auth("admin"))
    disabled = await client.get("/v1/users", params={"disabled": "true"}, headers=auth("admin"))
    enabled = await client.get("/v1/users", params={"disabled": "false"}, headers=auth("admin"))
    assert [u["username"] for u in disabled.json()["items"]] == ["village"]
    assert "village" not in {u["username"] for u in enabled.json()["items"]}
    assert enabled.json()["items"]


@pytest.mark.parametrize("params", [{"partial": "1"}, {"dry_run": "yes"}, {"dry_run": "True"}])
async def test_import_flags_take_only_true_or_false(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, params: dict[str, str]
) -> None:
    before = await count_rows(Region)
    data = (IMPORT_HEADER + "370282103204,北庄村,village,370282103\n").encode()
    r = await client.post(
        "/v1/regions/import",
        content=data,
        params=params,
        headers={**auth("officer", TOWN), "Content-Type": "text/csv"},
    )
    body = assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == [f"query.{next(iter(params))}"]
    assert await count_rows(Region) == before


# ---- 405 names every method of the path ------------------------------------------------------------


def concrete(path: str, operations: dict[str, Any]) -> str:
    """The path with each parameter filled by its example, or a value of its type."""
    for operation in operations.values():
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                continue
            schema = parameter["schema"]
            value = (parameter.get("examples") or schema.get("examples") or [None])[0]
            if value is None:
                value = 1 if schema.get("type") == "integer" else "370282103"
            path = path.replace("{" + parameter["name"] + "}", str(value))
    return path


async def test_every_405_allows_every_method_the_path_documents(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    paths = (await spec(client))["paths"]
    checked = 0
    for path, operations in paths.items():
        documented = {method.upper() for method in operations}
        url = concrete(path, operations)
        for method in sorted(set(HTTP_METHODS) - documented):
            r = await client.request(method, url, headers=auth("admin"))
            assert r.status_code == 405, (method, url, r.status_code)
            assert set(r.headers["allow"].split(", ")) == documented, (method, url, r.headers["allow"])
            if method != "HEAD":
                assert_problem(r, 405, "method_not_allowed")
            checked += 1
    assert checked > 50


async def test_options_on_regions_allows_get_and_post(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.options("/v1/regions", headers=auth("admin"))
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "POST", "PUT"])
async def test_users_me_answers_405_allowing_get(client: httpx.AsyncClient, auth: Auth, method: str) -> None:
    r = await client.request(method, "/v1/users/me", json={}, headers=auth("admin"))
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET"


async def test_users_by_id_still_answer_and_a_word_is_not_an_id(
    client: httpx.AsyncClient, auth: Auth, app: FastAPI
) -> None:
    village = await user_id(app, "village")
    assert (await client.get(f"/v1/users/{village}", headers=auth("admin"))).json()["username"] == "village"
    assert_problem(await client.get("/v1/users/someone", headers=auth("admin")), 404, "not_found")
    too_big = await client.get(f"/v1/users/{2**31}", headers=auth("admin"))
    assert [e["field"] for e in assert_problem(too_big, 422, "validation_failed")["errors"]] == [
        "path.user_id"
    ]


# ---- Idempotency-Key: the documented pattern is exactly what the middleware takes ------------------


async def key_pattern(client: httpx.AsyncClient) -> re.Pattern[str]:
    operation = (await spec(client))["paths"]["/v1/regions"]["post"]
    (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header" and header["schema"]["type"] == "string"
    return re.compile(header["schema"]["pattern"])


# Every Latin-1 character an HTTP client can put in a header value (no NUL, CR or LF).
_SENDABLE = [chr(c) for c in range(256) if chr(c) not in "\x00\r\n"]
KEY_CASES = [
    "6f1c7a52-3f5e-4d55-9d1e-8c7f6b9a0e21",
    "a",
    "a b",
    " a ",
    "x" * 255,
    "x" * 256,
    " " + "x" * 255 + " ",
    "",
    " ",
    "\t",
    "a\tb",
    "a\x7fb",
    "\x85a\xa0",
    "é",
    "a\xadb",
    "\xa0",
    "ab\x1f",
]


async def test_the_idempotency_key_pattern_is_exactly_what_is_taken(client: httpx.AsyncClient) -> None:
    pattern = await key_pattern(client)
    rng = random.Random(7)
    keys = KEY_CASES + [
        "".join(rng.choice(_SENDABLE) for _ in range(rng.choice([1, 2, 5, 40, 254, 255, 256])))
        for _ in range(300)
    ]
    for key in keys:
        # No token: a key the middleware takes goes on to the route, which answers 401.
        r = await client.post("/v1/regions", json={}, headers={"Idempotency-Key": key.encode("latin-1")})
        taken = r.status_code == 401
        if not taken:
            assert_problem(r, 400, "invalid_idempotency_key")
        assert taken == bool(pattern.fullmatch(key)), repr(key)


async def test_a_key_the_pattern_allows_is_kept_and_replayed(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count
) -> None:
    pattern = await key_pattern(client)
    key = "clé ¡retry! " + "x" * 40
    assert pattern.fullmatch(key)
    headers = {**auth("officer", TOWN), "Idempotency-Key": key.encode("latin-1")}
    body = {"code": "370282103204", "name": "北庄村", "level": "village", "parent_code": TOWN}
    first = await client.post("/v1/regions", json=body, headers=headers)
    again = await client.post("/v1/regions", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert await count_rows(Region, col(Region.code) == "370282103204") == 1


# ---- the empty CSV import --------------------------------------------------------------------------


async def test_the_import_body_is_documented_as_a_non_empty_file(client: httpx.AsyncClient) -> None:
    operation = (await spec(client))["paths"]["/v1/regions/import"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["text/csv"]["schema"] == {"type": "string", "minLength": 1}
    assert "400 `bad_csv_header`" in body["description"] or "`bad_csv_header`" in operation["description"]
    assert "no data rows answers 200" in operation["description"]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"], ids=["empty", "bom-only"])
async def test_an_empty_import_file_has_no_header(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, data: bytes
) -> None:
    before = await count_rows(Region)
    for send in (
        {"content": data, "headers": {**auth("officer", TOWN), "Content-Type": "text/csv"}},
        {"files": {"file": ("regions.csv", data, "text/csv")}, "headers": auth("officer", TOWN)},
    ):
        assert_problem(await client.post("/v1/regions/import", **send), 400, "bad_csv_header")  # type: ignore[arg-type]
    assert await count_rows(Region) == before


@pytest.mark.parametrize(
    "data",
    [
        IMPORT_HEADER.encode(),
        b"\xef\xbb\xbfcode,name,level,parent_code\r\n\r\n",
        b"code,name,level,parent_code",
    ],
    ids=["header", "bom-crlf-blank-line", "no-newline"],
)
@pytest.mark.parametrize("params", [{}, {"partial": "true"}, {"dry_run": "true"}])
async def test_a_header_only_import_reports_nothing_and_stores_nothing(
    client: httpx.AsyncClient, auth: Auth, count_rows: Count, data: bytes, params: dict[str, str]
) -> None:
    before = await count_rows(Region)
    r = await client.post(
        "/v1/regions/import",
        content=data,
        params=params,
        headers={**auth("officer", TOWN), "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "dry_run": params.get("dry_run") == "true",
        "partial": params.get("partial") == "true",
        "valid": 0,
        "created": 0,
        "refused": 0,
        "rows": [],
    }
    assert await count_rows(Region) == before
