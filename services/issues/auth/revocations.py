"""Revoking the tokens a subject holds, and the list every verifier reads (`/.well-known/revocations.json`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.auth.models import Revocation
from services.kit.db import Database, utcnow
from services.kit.identity import Subject
from services.kit.revocation import revocations_document

# Beyond a token's lifetime an entry changes nothing: every token issued before it has expired.
LEEWAY_SECONDS = 60


async def revoke(session: AsyncSession, subject: Subject) -> None:
    """Void every token `subject` holds now; tokens issued from the next second on are fine again."""
    now = utcnow()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Revocation).values(subject=str(subject), revoked_at=now)
    await session.execute(
        statement.on_conflict_do_update(index_elements=[col(Revocation.subject)], set_={"revoked_at": now})
    )


async def recent(database: Database, token_seconds: int) -> dict[str, Any]:
    """The revocations a live token may still fall under, as published."""
    window = token_seconds + LEEWAY_SECONDS
    async with database.transaction() as session:
        rows = await session.execute(
            select(col(Revocation.subject), col(Revocation.revoked_at)).where(
                col(Revocation.revoked_at) >= utcnow() - timedelta(seconds=window)
            )
        )
        return revocations_document({subject: at.timestamp() for subject, at in rows.all()}, window)
