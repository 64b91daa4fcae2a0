"""The caller as its token describes it, scope checks, and the region-subtree filter."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, bindparam

from services.kit.errors import Forbidden, Unauthorized
from services.kit.identity import ROOT_PATH, Role, Subject, parse_role
from services.kit.state import state_of

bearer = HTTPBearer(auto_error=False, description="An access token from `POST /v1/auth/token`.")


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller as its verified token describes it."""

    subject: Subject
    role: Role
    region: str
    region_path: str
    scopes: frozenset[str]
    name: str | None = None

    @property
    def user_id(self) -> int | None:
        """The user's id, or None for an API client or a service."""
        return self.subject.user_id

    def has(self, scope: str) -> bool:
        return scope in self.scopes


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        # RFC 6750 §3.1: no error code when the request carried no token at all.
        raise Unauthorized(
            "a bearer token is required", code="missing_token", headers={"WWW-Authenticate": "Bearer"}
        )
    verifier = state_of(request.app).verifier
    return caller_from_claims(await verifier.verify(credentials.credentials))


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    """The caller a verified token's claims describe; a subject or role this model does not know is a 401."""
    try:
        subject, role = Subject.parse(str(claims["sub"])), parse_role(claims["role"])
        region, region_path, scope = claims["region"], claims["region_path"], claims.get("scope", "")
    except KeyError as exc:
        raise Unauthorized("token lacks a required claim", code="invalid_token") from exc
    if subject is None:
        raise Unauthorized("token subject not recognised", code="invalid_token")
    if role is None:
        raise Unauthorized("token role not recognised", code="invalid_token")
    if not (isinstance(region, str) and isinstance(region_path, str) and isinstance(scope, str)):
        raise Unauthorized("token claims malformed", code="invalid_token")
    if not region_path.startswith(ROOT_PATH) or not region_path.endswith("/"):
        raise Unauthorized("token region path malformed", code="invalid_token")
    name = claims.get("name")
    return Caller(
        subject=subject,
        role=role,
        region=region,
        region_path=region_path,
        scopes=frozenset(scope.split()),
        name=name if isinstance(name, str) else None,
    )


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


SUBTREE_ESCAPE = "/"


def in_subtree_param(path_column: Any, name: str = "subtree") -> ColumnElement[bool]:
    """`in_subtree` for a statement built once: the caller's path comes as the parameter `name`, given
    `subtree_param(caller)`."""
    condition: ColumnElement[bool] = path_column.startswith(bindparam(name), escape=SUBTREE_ESCAPE)
    return condition


def subtree_param(caller: Caller) -> str:
    """The caller's region path escaped for `in_subtree_param` (as `autoescape` would)."""
    e = SUBTREE_ESCAPE
    return caller.region_path.replace(e, e + e).replace("%", e + "%").replace("_", e + "_")


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
            subject=str(caller.subject),
            role=caller.role,
            region=caller.region,
            region_path=caller.region_path,
            scopes=sorted(caller.scopes),
            name=caller.name,
        )

    return router
