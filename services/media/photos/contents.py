"""Shared stored bytes: claimed by every upload that relies on them, removed only when no photo is left.

An upload claims its content (upserting the `contents` row, which holds the row until its transaction
ends) before it looks whether the bytes are already stored. Removal runs from the outbox after a delete
has committed: it takes the same row, counts the photos still showing those bytes, and only with none
left deletes the objects and the row in that one transaction. So an upload of the same bytes at the same
moment either finds them stored and keeps them, or waits and stores them again; they are never lost.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.kit.db import Database, utcnow
from services.media.photos import keys
from services.media.photos.models import Content, Photo
from services.media.storage import ObjectStore

RELEASE = "release_content"  # outbox kind: {"sha256": …}
DELETE_OBJECTS = "delete_objects"  # outbox kind: {"keys": [...]}, objects that belong to one row only


async def claim(session: AsyncSession, sha256: str) -> None:
    """Hold the content's row until the session's transaction ends (creating it where it is new)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    statement = dialect.insert(Content).values(sha256=sha256, claimed_at=now)
    await session.execute(
        statement.on_conflict_do_update(index_elements=[col(Content.sha256)], set_={"claimed_at": now})
    )


async def release(database: Database, store: ObjectStore, sha256: str) -> bool:
    """Delete the bytes of `sha256` if no photo shows them any more; True when they were deleted."""
    async with database.transaction() as session:
        held = await session.execute(
            update(Content).where(col(Content.sha256) == sha256).values(claimed_at=col(Content.claimed_at))
        )
        if held.rowcount != 1:  # type: ignore[attr-defined]
            return False  # already released
        users = await session.execute(
            select(func.count()).select_from(Photo).where(col(Photo.sha256) == sha256)
        )
        if users.scalar_one() > 0:
            return False
        # The original goes first: without it the content counts as absent, and a later upload writes it all.
        for key in reversed(keys.content_keys(sha256)):
            await store.delete(key)
        await session.execute(delete(Content).where(col(Content.sha256) == sha256))
    return True


async def delete_objects(store: ObjectStore, object_keys: list[str]) -> None:
    for key in object_keys:
        await store.delete(key)


# Where content objects live; each key ends in the content's SHA-256 (see keys.py).
CONTENT_PREFIXES = ("originals/", "thumbs/", "display/", "features/")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_of_key(key: str) -> str | None:
    """The SHA-256 a content object's key names, or None for any other key."""
    if not key.startswith(CONTENT_PREFIXES):
        return None
    name = key.rsplit("/", 1)[-1].split(".", 1)[0]
    return name if _SHA256.fullmatch(name) else None


async def sweep_orphans(
    database: Database, store: ObjectStore, older_than: datetime, *, page: int = 1000
) -> int:
    """Remove content objects written before `older_than` whose SHA-256 no photo shows and no `contents` row
    names: what a crash between storing the bytes and committing the photo leaves. Returns how many contents
    (each up to four objects) were removed.

    Each candidate is settled as `release` settles a delete: under its claimed row, so an upload of the same
    bytes in flight either commits first (and the objects are kept) or waits and stores them again.
    """
    removed = 0
    for prefix in CONTENT_PREFIXES:
        after: str | None = None
        while True:
            listed = await store.list_objects(prefix, start_after=after, limit=page)
            if not listed:
                break
            after = listed[-1].key
            old = {
                sha
                for info in listed
                if info.modified is not None
                and info.modified < older_than
                and (sha := sha256_of_key(info.key)) is not None
            }
            if old:
                async with database.sessionmaker() as session:
                    rows = await session.execute(
                        select(col(Content.sha256)).where(col(Content.sha256).in_(old))
                    )
                    known = set(rows.scalars())
                for sha in sorted(old - known):
                    removed += await _remove_if_unused(database, store, sha)
            if len(listed) < page:
                break
    return removed


async def _remove_if_unused(database: Database, store: ObjectStore, sha256: str) -> int:
    async with database.transaction() as session:
        await claim(session, sha256)  # holds the row: an upload of these bytes waits, or has committed
        users = await session.execute(
            select(func.count()).select_from(Photo).where(col(Photo.sha256) == sha256)
        )
        if users.scalar_one() > 0:
            return 0  # shown after all: the row claimed just now stays, as every shown content has one
        for key in reversed(keys.content_keys(sha256)):
            await store.delete(key)
        await session.execute(delete(Content).where(col(Content.sha256) == sha256))
    return 1
