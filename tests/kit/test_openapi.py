"""The published specs of all three services, which front ends generate their clients from.

Every error a route documents is a problem+json with the shared schema and an example; every operation has
a summary; authenticated operations document 401; JSON request bodies carry an example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.support.apps import SERVICES
from tests.support.problems import PROBLEM_JSON as PROBLEM

PUBLIC = {"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/v1/auth/token", "/v1/auth/wechat"}


def _app(name: str, data_dir: Path) -> FastAPI:
    service = SERVICES[name]
    return service.build(service.settings(data_dir=data_dir))


@pytest.fixture(params=["issues", "scoring", "media"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    openapi: dict[str, Any] = _app(request.param, tmp_path).openapi()  # no lifespan: nothing is opened
    return openapi


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_documented_error_is_a_problem_with_an_example(spec: dict[str, Any]) -> None:
    assert "ProblemDetail" in spec["components"]["schemas"]
    for path, method, op in _operations(spec):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), f"{where} has no summary"
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            assert set(response.get("content", {})) == {PROBLEM}, f"{where} {status}"
            media = response["content"][PROBLEM]
            assert media["schema"] == {"$ref": "#/components/schemas/ProblemDetail"}, f"{where} {status}"
            assert media["example"]["status"] == int(status), f"{where} {status}"
            assert media["example"]["code"], f"{where} {status}"


def test_every_authenticated_operation_documents_401_404_422_and_503(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        if path in PUBLIC or path.startswith("/v1/media/objects/"):
            continue  # public, or authorised by a signed link instead of a token
        for status in ("401", "404", "422", "503"):
            assert status in op["responses"], f"{method.upper()} {path} does not document {status}"


def test_json_request_bodies_carry_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    missing = []
    for path, method, op in _operations(spec):
        content = op.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        if media is None:
            continue
        ref = media.get("schema", {}).get("$ref", "")
        schema = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else media.get("schema", {})
        if not (
            media.get("example") or media.get("examples") or schema.get("examples") or schema.get("example")
        ):
            missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_json_responses_carry_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    missing = []
    for path, method, op in _operations(spec):
        for status, response in op["responses"].items():
            media = response.get("content", {}).get("application/json")
            if not status.startswith("2") or media is None:
                continue
            ref = media.get("schema", {}).get("$ref", "")
            schema = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else media.get("schema", {})
            if not (
                media.get("example")
                or media.get("examples")
                or schema.get("examples")
                or schema.get("example")
            ):
                missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_a_page_is_documented_by_an_example_of_its_items(tmp_path: Path) -> None:
    spec = _app("issues", tmp_path).openapi()
    schemas = spec["components"]["schemas"]
    (page,) = schemas["Page_RegionPublic_"]["examples"]
    assert page["items"] == [schemas["RegionPublic"]["example"]]
    assert set(page) == {"items", "next_cursor", "limit"}
