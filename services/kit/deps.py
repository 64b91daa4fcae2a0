"""Dependencies every service's routes share; each service's own `deps.py` adds its parts beside these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.idempotency import REQUEST_FAILED, SHARED_SESSION
from services.kit.state import state_of


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    Under an `Idempotency-Key` the idempotency middleware owns the transaction (it stores the answer in
    it too); the route then works in that session and a raised error marks it for rollback.
    """
    shared: AsyncSession | None = request.scope.get(SHARED_SESSION)
    if shared is not None:
        try:
            yield shared
        except BaseException:
            shared.info[REQUEST_FAILED] = True
            raise
        return
    async with state_of(request.app).database.transaction() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error answer.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a route that only reads (`Database.reading`: no BEGIN and COMMIT round trips)."""
    async with state_of(request.app).database.reading() as session:
        yield session


# For the busiest reads (a list page, one object, the statistics); a route that writes never takes it.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
