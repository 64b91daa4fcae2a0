"""API clients for integrations (client-credentials grant): `/v1/clients`, limited to the caller's subtree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from services.issues.clients import service
from services.issues.clients.schemas import ClientCreate, ClientCreated, ClientPublic
from services.issues.deps import SessionDep, SettingsDep
from services.kit.auth import Caller, current_caller, require_scope
from services.kit.errors import problem_docs
from services.kit.fields import TRUE_FALSE, OptionalQueryBool
from services.kit.identity import Scope
from services.kit.pagination import Page, PageDep

router = APIRouter(tags=["clients"], dependencies=[Depends(current_caller)])

ClientsWriterDep = Annotated[Caller, Depends(require_scope(Scope.clients_write))]
ClientId = Annotated[
    str, Path(min_length=1, max_length=64, description="The client's id.", examples=["cli_7f3a9c2e1b4d5a60"])
]


@router.post(
    "/v1/clients",
    status_code=201,
    response_model=ClientCreated,
    summary="Create an API client",
    description="Creates an `integration` client for the client-credentials grant. Its scopes must be ones "
    "the caller's token carries (else 403 `scope_not_grantable`) and its region must lie in the caller's "
    "subtree (else 404 `region_not_found`). The `client_secret` is in this answer only; it is stored hashed.",
    responses=problem_docs(403),
)
async def create_client(
    body: ClientCreate,
    caller: ClientsWriterDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> ClientCreated:
    client, region, secret = await service.create_client(session, settings, caller, body)
    response.headers["Location"] = f"/v1/clients/{client.client_id}"
    # The secret must not be cached anywhere along the way.
    response.headers["Cache-Control"] = "no-store"
    return ClientCreated(**service.public(client, region.code).model_dump(), client_secret=secret)


@router.get(
    "/v1/clients",
    response_model=Page[ClientPublic],
    summary="List API clients",
    description="Clients whose region lies in the caller's subtree, oldest first.",
    responses=problem_docs(403),
)
async def list_clients(
    caller: ClientsWriterDep,
    session: SessionDep,
    page: PageDep,
    revoked: Annotated[
        OptionalQueryBool,
        Query(description="`true`: only revoked clients; `false`: only active ones. " + TRUE_FALSE),
    ] = None,
) -> Page[ClientPublic]:
    return await service.list_clients(session, caller, page, revoked=revoked)


@router.get(
    "/v1/clients/{client_id}",
    response_model=ClientPublic,
    summary="Read an API client",
    description="404 `client_not_found` when it does not exist or lies outside the caller's subtree.",
    responses=problem_docs(403),
)
async def read_client(client_id: ClientId, caller: ClientsWriterDep, session: SessionDep) -> ClientPublic:
    client, region = await service.get_client(session, caller, client_id)
    return service.public(client, region.code)


@router.post(
    "/v1/clients/{client_id}/revoke",
    response_model=ClientPublic,
    summary="Revoke an API client",
    description="The client can no longer get tokens; tokens already issued stay valid until they expire. "
    "Idempotent: revoking again keeps the first `revoked_at`.",
    responses=problem_docs(403),
)
async def revoke_client(client_id: ClientId, caller: ClientsWriterDep, session: SessionDep) -> ClientPublic:
    client, region = await service.revoke_client(session, caller, client_id)
    return service.public(client, region.code)
