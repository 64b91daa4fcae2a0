"""Cursor pagination: one envelope (`items`, `next_cursor`, `limit`), keyset queries, limit ≤ 200."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar, get_args

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from services.kit.errors import BadRequest

MAX_LIMIT = 200
T = TypeVar("T")
R = TypeVar("R")


def model_example(model: object) -> Any:
    """The example a model documents in its `json_schema_extra` (`example`, or the first of `examples`)."""
    extra = getattr(model, "model_config", {}).get("json_schema_extra")
    if not isinstance(extra, dict):
        return None
    if "example" in extra:
        return extra["example"]
    examples = extra.get("examples")
    return examples[0] if isinstance(examples, list) and examples else None


def envelope_example(**fields: Any) -> Callable[[dict[str, Any], type[BaseModel]], None]:
    """A `json_schema_extra` that documents an envelope by one item of its `items` model, beside `fields`."""

    def document(schema: dict[str, Any], cls: type[BaseModel]) -> None:
        item_types = get_args(cls.model_fields["items"].annotation)
        item = model_example(item_types[0]) if item_types else None
        if item is not None:
            schema["examples"] = [{"items": [item], **fields}]

    return document


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=envelope_example(next_cursor="WyIzNzAyODIxMDMiXQ", limit=50))

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=["WyIzNzAyODIxMDMiXQ"],
    )
    limit: int = Field(examples=[50])


class PageParams(BaseModel):
    limit: int
    cursor: str | None


def page_params(max_limit: int) -> Callable[..., Awaitable[PageParams]]:
    """The `limit` and `cursor` query parameters of a route whose pages hold at most `max_limit` rows."""

    async def page(limit: int = 50, cursor: str | None = None) -> PageParams:
        return PageParams(limit=limit, cursor=cursor)

    # Given as objects, not as this module's postponed annotations: `max_limit` is this call's own.
    page.__annotations__ = {
        "limit": Annotated[int, Query(ge=1, le=max_limit, description=f"Page size, at most {max_limit:,}.")],
        "cursor": Annotated[
            str | None, Query(max_length=512, description="`next_cursor` of the page before.")
        ],
        "return": PageParams,
    }
    return page


PageDep = Annotated[PageParams, Depends(page_params(MAX_LIMIT))]


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, width: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the cursor is not one this API issued", code="invalid_cursor") from exc
    if not isinstance(values, list) or len(values) != width:
        raise BadRequest("the cursor is not one this API issued", code="invalid_cursor")
    return values


def _typed(values: list[Any], keys: Sequence[ColumnElement[Any]]) -> list[Any]:
    """Cursor values as their key columns' Python types (a datetime was sent as text); else 400."""
    typed: list[Any] = []
    for value, key in zip(values, keys, strict=True):
        column_type = key.type
        if isinstance(column_type, TypeDecorator):  # e.g. UTCDateTime: its impl knows the Python type
            column_type = column_type.impl_instance
        try:
            python_type: type[Any] = column_type.python_type
        except NotImplementedError:
            python_type = object
        if isinstance(value, str) and python_type in (datetime, date):
            try:
                value = python_type.fromisoformat(value)
            except ValueError:
                value = None
            if isinstance(value, datetime) and value.tzinfo is None:
                value = None
        # bool is an int to Python but never a key here; a tampered value must not reach the database.
        if value is None or isinstance(value, bool) or not isinstance(value, python_type):
            raise BadRequest("the cursor is not one this API issued", code="invalid_cursor")
        typed.append(value)
    return typed


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    keys: Sequence[ColumnElement[Any]],
    params: PageParams,
    shape: Callable[[Any], R],
    key_of: Callable[[Any], Sequence[Any]],
    *,
    descending: bool = False,
) -> Page[R]:
    """Keyset page over `statement` ordered by `keys` (unique together; ascending, or all descending)."""
    if params.cursor:
        after = _typed(decode_cursor(params.cursor, len(keys)), keys)
        left, right = (tuple_(*keys), tuple_(*after)) if len(keys) > 1 else (keys[0], after[0])
        statement = statement.where(left < right if descending else left > right)
    order = [key.desc() for key in keys] if descending else list(keys)
    rows = (await session.execute(statement.order_by(*order).limit(params.limit + 1))).scalars().all()
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = encode_cursor(key_of(rows[-1])) if more and rows else None
    return Page(items=[shape(r) for r in rows], next_cursor=next_cursor, limit=params.limit)
