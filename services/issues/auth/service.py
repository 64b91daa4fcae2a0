"""Logins: password, client credentials and WeChat, each ending in an access token."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.auth.keys import KeyRing
from services.issues.auth.passwords import hash_secret, needs_rehash, verify_secret
from services.issues.auth.tokens import IssuedToken, mint_access_token
from services.issues.clients.models import ApiClient
from services.issues.regions.models import Region
from services.issues.settings import IssuesSettings
from services.issues.users.models import User
from services.kit.db import savepoint, utcnow
from services.kit.errors import NotFound, Problem, Unauthorized
from services.kit.identity import ROLE_SCOPES, Role, Subject

SERVICE_REGION, SERVICE_REGION_PATH = "*", "/"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"

    def __init__(self, detail: str) -> None:
        # `error` keeps OAuth 2.0 clients that look for it working.
        super().__init__(detail, headers={}, error="invalid_grant")


class InvalidScope(Problem):
    status, code, title = 400, "invalid_scope", "Invalid scope"


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    region: str
    region_path: str
    scopes: frozenset[str]
    name: str | None
    user_id: int | None = None


def narrow(granted: frozenset[str], requested: str | None) -> frozenset[str]:
    """The scopes to put in the token: all granted, or the requested subset of them."""
    if requested is None or not requested.strip():
        return granted
    asked = frozenset(requested.split())
    if not asked <= granted:
        raise InvalidScope(f"not granted: {' '.join(sorted(asked - granted))}", error="invalid_scope")
    return asked


async def user_principal(
    session: AsyncSession, username: str, password: str, settings: IssuesSettings | None = None
) -> Principal:
    """The user signing in; `settings` set the password-hash cost (default: from the environment)."""
    row = (
        await session.execute(
            select(User, Region)
            .join(Region, col(User.region_id) == col(Region.id))
            .where(col(User.username) == username)
        )
    ).first()
    user, region = (row[0], row[1]) if row else (None, None)
    # Argon2 costs tens of milliseconds of CPU: keep it off the event loop.
    ok = await asyncio.to_thread(verify_secret, user.password_hash if user else None, password, settings)
    if not ok or user is None or region is None or user.disabled:
        raise InvalidCredentials("wrong username or password")
    if user.password_hash and needs_rehash(user.password_hash, settings):
        # Made at another cost than the settings now name: redone at this one while the password is here.
        user.password_hash = await asyncio.to_thread(hash_secret, password, settings)
    return Principal(
        subject=str(Subject.user(user.id or 0)),
        role=user.role,
        region=region.code,
        region_path=region.path,
        scopes=ROLE_SCOPES[Role(user.role)],
        name=user.display_name,
        user_id=user.id,
    )


async def client_principal(
    session: AsyncSession, settings: IssuesSettings, client_id: str, secret: str
) -> Principal:
    # The services that call this one; media never does, so it has no credentials here.
    service_secrets = {"svc-scoring": settings.scoring_client_secret.get_secret_value()}
    if client_id in service_secrets:
        if not hmac.compare_digest(service_secrets[client_id].encode(), secret.encode()):
            raise InvalidCredentials("wrong client id or secret")
        return Principal(
            subject=str(Subject.client(client_id)),
            role=Role.service,
            region=SERVICE_REGION,
            region_path=SERVICE_REGION_PATH,
            scopes=ROLE_SCOPES[Role.service],
            name=client_id,
        )
    row = (
        await session.execute(
            select(ApiClient, Region)
            .join(Region, col(ApiClient.region_id) == col(Region.id))
            .where(col(ApiClient.client_id) == client_id)
        )
    ).first()
    client, region = (row[0], row[1]) if row else (None, None)
    ok = await asyncio.to_thread(verify_secret, client.secret_hash if client else None, secret, settings)
    if not ok or client is None or region is None or client.revoked_at is not None:
        raise InvalidCredentials("wrong client id or secret")
    return Principal(
        subject=str(Subject.client(client.client_id)),
        role=client.role,
        region=region.code,
        region_path=region.path,
        scopes=frozenset(client.scopes.split()),
        name=client.name,
    )


async def citizen_for_openid(
    session: AsyncSession, settings: IssuesSettings, openid: str
) -> tuple[User, Region, bool]:
    """The citizen user for a WeChat openid, created on first login in the configured home region."""
    found = await _citizen_by_openid(session, openid)
    if found is not None:
        return *found, False
    home = (
        await session.execute(select(Region).where(col(Region.code) == settings.citizen_region_code))
    ).scalar()
    if home is None:
        raise NotFound(
            f"the citizens' home region {settings.citizen_region_code} does not exist",
            code="citizen_region_missing",
        )
    assert home.id is not None
    user = User(
        display_name=f"微信用户{openid[-4:]}",
        role=Role.citizen,
        region_id=home.id,
        wechat_openid=openid,
        created_by="wechat",
        updated_at=utcnow(),
    )
    try:
        # A savepoint, so losing the race to a simultaneous first login leaves the request usable.
        async with savepoint(session, User):
            session.add(user)
            await session.flush()
    except IntegrityError:
        found = await _citizen_by_openid(session, openid)
        if found is None:
            raise
        return *found, False
    return user, home, True


async def _citizen_by_openid(session: AsyncSession, openid: str) -> tuple[User, Region] | None:
    row = (
        await session.execute(
            select(User, Region)
            .join(Region, col(User.region_id) == col(Region.id))
            .where(col(User.wechat_openid) == openid)
        )
    ).first()
    if row is None:
        return None
    user, region = row[0], row[1]
    if user.disabled:
        raise Unauthorized("this account is disabled", code="account_disabled", headers={})
    return user, region


def token_for(
    keyring: KeyRing, settings: IssuesSettings, principal: Principal, scopes: frozenset[str]
) -> IssuedToken:
    return mint_access_token(
        keyring,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=settings.access_token_seconds,
        subject=principal.subject,
        role=principal.role,
        region=principal.region,
        region_path=principal.region_path,
        scopes=scopes,
        name=principal.name,
    )
