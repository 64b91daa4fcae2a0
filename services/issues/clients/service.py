"""API clients within the caller's region subtree: create (with a one-time secret), read, list, revoke."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy import Select, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.auth import revocations
from services.issues.auth.passwords import hash_secret
from services.issues.auth.rules import may_grant_scopes
from services.issues.clients.models import ApiClient
from services.issues.clients.schemas import ClientCreate, ClientPublic
from services.issues.regions.models import Region
from services.issues.settings import IssuesSettings
from services.issues.users.service import region_codes, region_in_scope
from services.kit.auth import Caller, in_subtree
from services.kit.db import utcnow
from services.kit.errors import Forbidden, NotFound
from services.kit.identity import SERVICE_ONLY_SCOPES, Role, Subject
from services.kit.pagination import Page, PageParams, paginate


def public(client: ApiClient, region_code: str) -> ClientPublic:
    return ClientPublic(
        client_id=client.client_id,
        name=client.name,
        role=client.role,
        scopes=client.scopes.split(),
        region_code=region_code,
        created_by=client.created_by,
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


async def create_client(
    session: AsyncSession, settings: IssuesSettings, caller: Caller, body: ClientCreate
) -> tuple[ApiClient, Region, str]:
    """The stored client, its region and the plain secret (returned once, never stored)."""
    region = await region_in_scope(session, caller, body.region_code)
    requested = frozenset(body.scopes)
    if not may_grant_scopes(caller.scopes, requested):
        refused = sorted(requested - caller.scopes) or sorted(requested & SERVICE_ONLY_SCOPES)
        raise Forbidden(f"may not grant: {' '.join(refused)}", code="scope_not_grantable")
    assert region.id is not None
    secret = secrets.token_urlsafe(32)
    client = ApiClient(
        client_id="cli_" + secrets.token_hex(8),
        name=body.name,
        # Argon2 costs tens of milliseconds of CPU: keep it off the event loop.
        secret_hash=await asyncio.to_thread(hash_secret, secret, settings),
        role=Role.integration,
        scopes=" ".join(sorted(requested)),
        region_id=region.id,
        created_by=str(caller.subject),
    )
    session.add(client)
    await session.flush()
    return client, region, secret


def _visible(caller: Caller) -> Select[ApiClient, Region]:
    """Clients whose region lies in the caller's subtree, with that region."""
    return (
        select(ApiClient, Region)
        .join(Region, col(ApiClient.region_id) == col(Region.id))
        .where(in_subtree(col(Region.path), caller))
    )


async def get_client(session: AsyncSession, caller: Caller, client_id: str) -> tuple[ApiClient, Region]:
    row = (await session.execute(_visible(caller).where(col(ApiClient.client_id) == client_id))).first()
    if row is None:
        raise NotFound(f"client {client_id} not found", code="client_not_found")
    return row[0], row[1]


async def list_clients(
    session: AsyncSession, caller: Caller, page: PageParams, *, revoked: bool | None = None
) -> Page[ClientPublic]:
    """A page of visible clients ordered by creation (id)."""
    statement = (
        select(ApiClient)
        .join(Region, col(ApiClient.region_id) == col(Region.id))
        .where(in_subtree(col(Region.path), caller))
    )
    if revoked is not None:
        statement = statement.where(
            col(ApiClient.revoked_at).is_not(None) if revoked else col(ApiClient.revoked_at).is_(None)
        )
    clients = await paginate(
        session, statement, [inspect(ApiClient).columns["id"]], page, lambda c: c, lambda c: [c.id]
    )
    codes = await region_codes(session, {c.region_id for c in clients.items})
    return Page(
        items=[public(c, codes[c.region_id]) for c in clients.items],
        next_cursor=clients.next_cursor,
        limit=clients.limit,
    )


async def revoke_client(session: AsyncSession, caller: Caller, client_id: str) -> tuple[ApiClient, Region]:
    """Revoke the client; revoking again keeps the first revocation time."""
    client, region = await get_client(session, caller, client_id)
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        await revocations.revoke(session, Subject.client(client.client_id))
        await session.flush()
    return client, region
