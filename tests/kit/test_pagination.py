"""Cursor pages: the cursor round trip, tampered cursors, limits, and walking every page on both databases."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlmodel import col

from services.issues.users.models import User
from services.kit.app import ApiInfo, build_app
from services.kit.db import Database
from services.kit.deps import SessionDep
from services.kit.errors import BadRequest
from services.kit.pagination import MAX_LIMIT, Page, PageDep, decode_cursor, encode_cursor, paginate
from services.kit.settings import ServiceSettings
from services.kit.state import ServiceState
from tests.support.apps import bare_state, client_for, running
from tests.support.problems import assert_problem

_scalar = st.none() | st.booleans() | st.integers() | st.text()


@given(st.lists(_scalar, max_size=4))
def test_a_cursor_decodes_to_the_values_it_encodes(values: list[Any]) -> None:
    cursor = encode_cursor(values)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, len(values)) == values


@given(st.text(max_size=600), st.integers(min_value=1, max_value=3))
def test_any_text_as_a_cursor_decodes_or_is_invalid_cursor(text: str, width: int) -> None:
    failure: BadRequest | None = None
    try:
        values = decode_cursor(text, width)
    except BadRequest as exc:
        failure = exc
    if failure is None:
        assert isinstance(values, list) and len(values) == width
    else:
        assert failure.instance_code == "invalid_cursor" and failure.status == 400


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        encode_cursor([1, 2]),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        "\u00e9t\u00e9",
    ],
)
def test_a_cursor_of_the_wrong_shape_is_invalid(cursor: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor, 1)
    assert caught.value.instance_code == "invalid_cursor"


# Walking pages through a small app over the test tree's users, on SQLite and PostgreSQL.


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    # Give half the users one creation time, so the id must break ties.
    async with db.sessionmaker() as session, session.begin():
        same = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
        await session.execute(update(User).where(col(User.id) % 2 == 0).values(created_at=same))
    yield db
    await db.dispose()


@pytest.fixture
async def pages(db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A kit app of two paged routes over the users table (the kit's middleware and problems included)."""
    router = APIRouter()

    @router.get("/users", summary="Users by creation")
    async def by_creation(page: PageDep, session: SessionDep) -> Page[str]:
        return await paginate(
            session,
            select(User),
            [col(User.created_at), col(User.id)],
            page,
            lambda u: str(u.username),
            lambda u: [u.created_at, u.id],
        )

    @router.get("/users/by-id", summary="Users by id")
    async def by_id(page: PageDep, session: SessionDep) -> Page[str]:
        return await paginate(
            session, select(User), [col(User.id)], page, lambda u: str(u.username), lambda u: [u.id]
        )

    settings = ServiceSettings(environment="test", data_dir=tmp_path, database_url=db_url, log_json=False)

    @asynccontextmanager
    async def open_state(database: Database, http: httpx.AsyncClient) -> AsyncIterator[ServiceState[Any]]:
        yield bare_state(database, settings, http)

    app = build_app(
        settings,
        api=ApiInfo(title="pages", description="paged routes"),
        routers=[router],
        open_state=open_state,
    )
    async with running(app), client_for(app, "http://kit.test") as c:
        yield c


async def expected_order(database: Database) -> list[str]:
    async with database.sessionmaker() as session:
        rows = await session.execute(select(User.username).order_by(col(User.created_at), col(User.id)))
        return [str(u) for u in rows.scalars()]


async def walk(client: httpx.AsyncClient, path: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["limit"] == limit and len(body["items"]) <= limit
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("limit", [1, 3, 8, 200])
async def test_walking_the_pages_keyed_by_time_and_id_gives_every_row_once_in_order(
    pages: httpx.AsyncClient, database: Database, limit: int
) -> None:
    expected = await expected_order(database)
    assert len(expected) == 8
    assert await walk(pages, "/users", limit) == expected


async def test_walking_the_pages_keyed_by_id(pages: httpx.AsyncClient) -> None:
    assert len(await walk(pages, "/users/by-id", 3)) == 8


async def test_the_last_page_has_no_next_cursor(pages: httpx.AsyncClient) -> None:
    r = await pages.get("/users", params={"limit": 8})
    assert r.json()["next_cursor"] is None and len(r.json()["items"]) == 8
    assert (await pages.get("/users")).json()["limit"] == 50


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/users", "garbage!"),
        ("/users", encode_cursor([1])),
        ("/users", encode_cursor(["not a time", 1])),
        ("/users", encode_cursor(["2026-03-01 08:00:00", 1])),  # no time zone: not one we issued
        ("/users", encode_cursor(["2026-03-01 08:00:00+00:00", "1"])),
        ("/users", encode_cursor([{"a": 1}, 1])),
        ("/users/by-id", encode_cursor(["abc"])),
        ("/users/by-id", encode_cursor([{"id": 1}])),
        ("/users/by-id", encode_cursor([[1]])),
        ("/users/by-id", encode_cursor([True])),
        ("/users/by-id", encode_cursor([None])),
        ("/users/by-id", encode_cursor([1.5])),
    ],
)
async def test_a_tampered_cursor_is_400_invalid_cursor(
    pages: httpx.AsyncClient, path: str, cursor: str
) -> None:
    assert_problem(await pages.get(path, params={"cursor": cursor}), 400, "invalid_cursor")


async def test_a_cursor_we_issued_for_a_time_key_is_accepted(
    pages: httpx.AsyncClient, database: Database
) -> None:
    first = (await pages.get("/users", params={"limit": 2})).json()
    assert json.loads(base64.urlsafe_b64decode(first["next_cursor"] + "==="))[0].startswith("20")
    second = await pages.get("/users", params={"limit": 2, "cursor": first["next_cursor"]})
    assert second.status_code == 200, second.text
    assert second.json()["items"] == (await expected_order(database))[2:4]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": MAX_LIMIT + 1}, "query.limit"),
        ({"limit": 0}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"cursor": "A" * 513}, "query.cursor"),
    ],
)
async def test_a_limit_over_200_or_an_oversized_cursor_is_422(
    pages: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    body = assert_problem(await pages.get("/users", params=params), 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == [field]


def test_the_page_envelope_is_documented() -> None:
    app = FastAPI()

    @app.get("/things")
    async def things(page: PageDep) -> Page[int]:
        return Page(items=[], next_cursor=None, limit=page.limit)

    spec = app.openapi()
    params = {p["name"]: p for p in spec["paths"]["/things"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == MAX_LIMIT
    assert set(spec["components"]["schemas"]["Page_int_"]["properties"]) == {"items", "next_cursor", "limit"}
