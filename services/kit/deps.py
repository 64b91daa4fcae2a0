"""Dependencies every service's routes share; each service's own `deps.py` adds its parts beside these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.db import Database
from services.kit.idempotency import REQUEST_FAILED, SHARED_SESSION
from services.kit.state import state_of


@asynccontextmanager
async def _session(
    request: Request, opened: Callable[[Database], AbstractAsyncContextManager[AsyncSession]]
) -> AsyncIterator[AsyncSession]:
    """The request's session: `opened` on the service's database; under an `Idempotency-Key` the
    idempotency middleware's, which owns the transaction (it stores the answer in it too) and is told when
    the route raised (its changes must not be committed)."""
    shared: AsyncSession | None = request.scope.get(SHARED_SESSION)
    if shared is not None:
        try:
            yield shared
        except BaseException:
            shared.info[REQUEST_FAILED] = True
            raise
        return
    async with opened(state_of(request.app).database) as session:
        yield session


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    async with _session(request, Database.transaction) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error answer.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


def statement_session(request: Request) -> AbstractAsyncContextManager[AsyncSession]:
    """`Database.statements` (under an `Idempotency-Key` the middleware's session), for a route whose writes
    are each one statement, opened by the route itself: as a dependency with an exit FastAPI would spend an
    exit stack and a cancel scope on it (~0.05 ms a request by py-spy, 3 % of a report's CPU here)."""
    return _session(request, Database.statements)


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a route that only reads (`Database.reading`: no BEGIN and COMMIT round trips)."""
    async with state_of(request.app).database.reading() as session:
        yield session


# For the busiest reads (a list page, one object, the statistics); a route that writes never takes it.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
