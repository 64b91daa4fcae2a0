"""API client requests and answers; the secret appears once, in the answer that creates the client."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from services.kit.identity import SCOPE_DESCRIPTIONS, Scope
from services.kit.text import PLAIN_TEXT, plain_text_schema

SCOPE_NAMES = sorted(scope.value for scope in Scope)


def _known_scope(scope: str) -> str:
    if scope not in SCOPE_NAMES:
        raise ValueError(f"unknown scope {scope}")
    return scope


def _distinct(scopes: list[str]) -> list[str]:
    return sorted(set(scopes))


KnownScope = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_scope),
    Field(
        description="One of: "
        + "; ".join(f"`{scope.value}` {text}" for scope, text in SCOPE_DESCRIPTIONS.items()),
        json_schema_extra={"enum": SCOPE_NAMES},
    ),
]


class ClientCreate(BaseModel):
    """A new integration, with scopes the caller itself holds, in a region of the caller's subtree."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "name": "蓝村街道 数字乡村平台",
                "scopes": ["issues:read", "regions:read"],
                "region_code": "370282103",
            }
        },
    )

    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
        PLAIN_TEXT,
        plain_text_schema(100),
    ] = Field(description="1 to 100 characters after trimming, without control or text-direction characters.")
    scopes: Annotated[list[KnownScope], AfterValidator(_distinct)] = Field(
        min_length=1,
        max_length=len(SCOPE_NAMES),
        description="Each must be one the caller's token carries (else 403 `scope_not_grantable`).",
    )
    region_code: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="The client's region; its tokens see this region's subtree."
    )


_PUBLIC_EXAMPLE: dict[str, Any] = {
    "client_id": "cli_7f3a9c2e1b4d5a60",
    "name": "蓝村街道 数字乡村平台",
    "role": "integration",
    "scopes": ["issues:read", "regions:read"],
    "region_code": "370282103",
    "created_by": "user:4",
    "created_at": "2026-03-02T08:15:00Z",
    "revoked_at": None,
}


class ClientPublic(BaseModel):
    """An API client as the API shows it (never its secret)."""

    model_config = ConfigDict(json_schema_extra={"example": _PUBLIC_EXAMPLE})

    client_id: str
    name: str
    role: str
    scopes: list[str]
    region_code: str
    created_by: str | None
    created_at: datetime
    revoked_at: datetime | None = Field(description="Set once revoked; a revoked client gets no tokens.")


class ClientCreated(ClientPublic):
    """The new client with its secret: shown this once, stored only as a hash."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {**_PUBLIC_EXAMPLE, "client_secret": "q8Zx1v0Jb3H2m9Kc7TtR5yWn4uLp6sEa0dFgHiJkLmN"}
        }
    )

    client_secret: str = Field(description="Keep it safe: it is not shown again.")
