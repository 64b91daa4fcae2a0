"""The caller as its token describes it, scope checks, and the region-subtree filter."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement

from services.kit.errors import Forbidden, Unauthorized
from services.kit.jwt import TokenVerifier

bearer = HTTPBearer(auto_error=False, description="An access token from `POST /v1/auth/token`.")


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    role: str
    region: str
    region_path: str
    scopes: frozenset[str]
    name: str | None = None

    @property
    def is_client(self) -> bool:
        return self.role in ("integration", "service")

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def covers(self, region_path: str) -> bool:
        """True when `region_path` lies in the caller's subtree."""
        return region_path.startswith(self.region_path)


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        # RFC 6750 §3.1: no error code when the request carried no token at all.
        raise Unauthorized(
            "a bearer token is required", code="missing_token", headers={"WWW-Authenticate": "Bearer"}
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    claims = await verifier.verify(credentials.credentials)
    try:
        caller = Caller(
            subject=str(claims["sub"]),
            role=str(claims["role"]),
            region=str(claims["region"]),
            region_path=str(claims["region_path"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            name=claims.get("name"),
        )
    except KeyError as exc:
        raise Unauthorized("token lacks a required claim", code="invalid_token") from exc
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def require_scope(*needed: str) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """Dependency: the caller, provided its token carries every scope in `needed`."""

    async def check(caller: CallerDep) -> Caller:
        missing = [s for s in needed if not caller.has(s)]
        if missing:
            raise Forbidden(f"token lacks scope: {' '.join(missing)}", code="insufficient_scope")
        return caller

    return check


def in_subtree(path_column: Any, caller: Caller) -> ColumnElement[bool]:
    """SQL condition: the row's materialized region path lies in the caller's subtree."""
    condition: ColumnElement[bool] = path_column.startswith(caller.region_path, autoescape=True)
    return condition


class CallerPublic(BaseModel):
    """The caller as its verified token describes it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "subject": "user:12",
                "role": "officer",
                "region": "370282103",
                "region_path": "/37/3702/370282/370282103/",
                "scopes": ["issues:read", "regions:read"],
                "name": "蓝村街道 王主任",
            }
        }
    )

    subject: str
    role: str
    region: str
    region_path: str
    scopes: list[str]
    name: str | None = None


def caller_router(path: str, tags: list[str | Enum]) -> APIRouter:
    """`GET {path}`: who the token says the caller is; proves the service accepts the issuer's tokens."""
    router = APIRouter(tags=tags)

    @router.get(path, response_model=CallerPublic, summary="The caller as the token describes it")
    async def whoami(caller: CallerDep) -> CallerPublic:
        return CallerPublic(
            subject=caller.subject,
            role=caller.role,
            region=caller.region,
            region_path=caller.region_path,
            scopes=sorted(caller.scopes),
            name=caller.name,
        )

    return router
