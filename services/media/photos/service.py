"""What the photo domain does: take in, store, check, look for reuse, attach, redact, delete."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.kit.auth import Caller, in_subtree
from services.kit.db import utcnow
from services.kit.errors import Conflict, Forbidden, NotFound
from services.media.imaging import redact_with_thumb
from services.media.photos import keys
from services.media.photos.models import Photo, PhotoHash, PhotoMatch
from services.media.photos.schemas import Claims, Purpose
from services.media.pipeline import Processed, process
from services.media.reuse import (
    CANDIDATE_MAX_DISTANCE,
    Fingerprint,
    Match,
    band_keys,
    confirm,
    hamming,
    probes,
)
from services.media.rules import Flag, photo_checks
from services.media.settings import MediaSettings
from services.media.storage import ObjectStore

# The band probe of `Intake.candidates` on PostgreSQL (bit_count: PostgreSQL 14 and later). One row per
# (band, value, query hash); each stored hash found is measured against the query hash that probed it.
_NEAR_IN_SQL = text(
    """
    SELECT h.photo_id, min(bit_count((h.full_hash # k.q)::bit(64))) AS distance
    FROM unnest(
        CAST(:bands AS smallint[]), CAST(:band_values AS integer[]), CAST(:query_hashes AS bigint[])
    ) AS k(band, value, q)
    JOIN photo_hashes AS h ON h.reuse_scope = :scope AND h.band = k.band AND h.value = k.value
    WHERE h.photo_id <> ALL(CAST(:excluded AS varchar[]))
    GROUP BY h.photo_id
    HAVING min(bit_count((h.full_hash # k.q)::bit(64))) <= :max_distance
    ORDER BY distance, h.photo_id
    LIMIT :max_candidates
    """
)

# Only these roles may redact display copies (faces, number plates).
REDACTOR_ROLES = frozenset({"admin", "inspector", "officer"})
MAX_REUSE_FLAGS = 5


@dataclass(frozen=True)
class Owner:
    """Who a new photo belongs to until it is attached to an issue."""

    subject: str
    role: str
    region_code: str
    region_path: str

    @classmethod
    def of(cls, caller: Caller) -> Owner:
        return cls(caller.subject, caller.role, caller.region, caller.region_path)


def reuse_scope(region_path: str, depth: int) -> str:
    """The archive a photo is compared with: its region path cut to `depth` levels (the county)."""
    parts = [p for p in region_path.split("/") if p][:depth]
    return "/" + "".join(f"{p}/" for p in parts)


def visible_to(caller: Caller) -> ColumnElement[bool]:
    """Photos in the caller's subtree; a citizen sees only its own."""
    condition = in_subtree(col(Photo.region_path), caller)
    if caller.role == "citizen":
        condition = and_(condition, col(Photo.uploader) == caller.subject)
    return condition


async def get_visible(session: AsyncSession, caller: Caller, photo_id: str) -> Photo:
    photo = (
        await session.execute(select(Photo).where(col(Photo.id) == photo_id, visible_to(caller)))
    ).scalar_one_or_none()
    if photo is None:
        raise NotFound(f"photo {photo_id} not found", code="photo_not_found")
    return photo


class Intake:
    """Takes in photos for one app: bounds how many are decoded at once (memory) and talks to the store."""

    def __init__(self, store: ObjectStore, settings: MediaSettings, concurrency: int = 2) -> None:
        self.store = store
        self.settings = settings
        self._decoding = asyncio.Semaphore(concurrency)

    async def ingest(
        self,
        session: AsyncSession,
        owner: Owner,
        path: Path,
        *,
        purpose: Purpose,
        claims: Claims,
        client_content_type: str | None,
    ) -> Photo:
        """Check and store the image at `path` as a new photo; a refusal raises and stores nothing."""
        async with self._decoding:
            processed = await asyncio.to_thread(process, path, max_pixels=self.settings.max_pixels)
        await self._store_content(path, processed)
        received_at = utcnow()
        facts = processed.inspected.facts
        photo = Photo(
            id=uuid.uuid4().hex,
            sha256=processed.sha256,
            mime=processed.inspected.mime,
            width=processed.inspected.width,
            height=processed.inspected.height,
            size_bytes=processed.size_bytes,
            purpose=purpose,
            client_content_type=(client_content_type or "")[:100] or None,
            uploader=owner.subject,
            uploader_role=owner.role,
            region_code=owner.region_code,
            region_path=owner.region_path,
            reuse_scope=reuse_scope(owner.region_path, self.settings.reuse_scope_depth),
            claimed_lat=claims.latitude,
            claimed_lon=claims.longitude,
            claimed_taken_at=claims.taken_at,
            has_exif=facts.has_exif,
            exif_taken_at=facts.taken_at,
            exif_lat=facts.gps[0] if facts.gps else None,
            exif_lon=facts.gps[1] if facts.gps else None,
            camera_make=facts.make,
            camera_model=facts.model,
            orientation=facts.orientation,
            created_at=received_at,
        )
        flags = photo_checks(
            facts,
            claimed_position=(claims.latitude, claims.longitude)
            if claims.latitude is not None and claims.longitude is not None
            else None,
            claimed_taken_at=claims.taken_at,
            received_at=received_at,
            max_distance_m=self.settings.max_distance_m,
            max_age_hours=self.settings.max_age_hours,
        )
        session.add(photo)
        await session.flush()
        matches = await self._find_reuse(session, photo, processed.fingerprint)
        for match in matches:
            session.add(match)
        photo.flags = [_flag_json(f) for f in flags] + [_reuse_flag(m) for m in matches[:MAX_REUSE_FLAGS]]
        for full_hash in processed.fingerprint.index_hashes:
            for band, value in band_keys(full_hash):
                session.add(
                    PhotoHash(
                        photo_id=photo.id,
                        reuse_scope=photo.reuse_scope,
                        band=band,
                        value=value,
                        full_hash=full_hash,
                    )
                )
        await session.flush()
        return photo

    async def _store_content(self, path: Path, processed: Processed) -> None:
        sha = processed.sha256
        if await self.store.stat(keys.original_key(sha)) is not None:
            return  # the same bytes are already stored, variants included
        await self.store.put_bytes(keys.thumb_key(sha), processed.variants.thumb, "image/jpeg")
        await self.store.put_bytes(keys.display_key(sha), processed.variants.display, "image/jpeg")
        await self.store.put_bytes(
            keys.features_key(sha), processed.fingerprint.features, "application/octet-stream"
        )
        await self.store.put_file(keys.original_key(sha), path, processed.inspected.mime)

    async def _find_reuse(self, session: AsyncSession, photo: Photo, fp: Fingerprint) -> list[PhotoMatch]:
        """Earlier photos in the same archive that show the same picture, strongest first."""
        matches: dict[str, PhotoMatch] = {}
        same_bytes = (
            await session.execute(
                select(col(Photo.id)).where(
                    col(Photo.reuse_scope) == photo.reuse_scope,
                    col(Photo.sha256) == photo.sha256,
                    col(Photo.id) != photo.id,
                )
            )
        ).scalars()
        for other_id in same_bytes:
            matches[other_id] = PhotoMatch(
                photo_id=photo.id,
                other_id=other_id,
                score=1.0,
                distance=0,
                inliers=0,
                mirrored=False,
                exact=True,
            )
        candidates = await self.candidates(session, photo.reuse_scope, fp, exclude=set(matches) | {photo.id})
        if candidates:
            features = await self._features_of(session, [c[0] for c in candidates])
            for other_id, distance in candidates:
                blob = features.get(other_id)
                if blob is None:
                    continue
                other = Fingerprint(index_hashes=(), query_hashes=(), features=blob)
                found: Match | None = await asyncio.to_thread(confirm, fp, other)
                if found is not None:
                    matches[other_id] = PhotoMatch(
                        photo_id=photo.id,
                        other_id=other_id,
                        score=round(found.score, 4),
                        distance=distance,
                        inliers=found.inliers,
                        mirrored=found.mirrored,
                        exact=False,
                    )
        return sorted(matches.values(), key=lambda m: (-m.score, m.distance))

    async def candidates(
        self, session: AsyncSession, scope: str, fp: Fingerprint, exclude: set[str] | None = None
    ) -> list[tuple[str, int]]:
        """(photo id, hash distance) of stored photos whose hashes lie near the new one's, nearest first.

        Each stored 64-bit hash is indexed as four 16-bit bands; each band of each query hash is looked up
        (within `reuse_probe_radius` bits) with exact index lookups, and a stored hash is kept when it lies
        within CANDIDATE_MAX_DISTANCE bits of a query hash that probed it (`reuse.lookup_distance`).
        """
        keys = probes(fp, self.settings.reuse_probe_radius)
        if not keys:
            return []
        excluded = sorted(exclude or ())
        if session.get_bind().dialect.name == "postgresql":
            near = await self._candidates_in_sql(session, scope, keys, excluded)
        else:
            near = await self._candidates_here(session, scope, keys, set(excluded))
        return near[: self.settings.reuse_max_candidates]

    async def _candidates_in_sql(
        self,
        session: AsyncSession,
        scope: str,
        keys: dict[tuple[int, int], tuple[int, ...]],
        excluded: list[str],
    ) -> list[tuple[str, int]]:
        """PostgreSQL: the probes as rows joined to the band index, distances and ranking in the database.

        At 10^6 photos in one county this takes ~90 ms against ~200 ms fetching the rows
        (bench/similar_lookup.py), and none of it on the event loop.
        """
        probe_rows = [(band, value, q) for (band, value), hashes in keys.items() for q in hashes]
        result = await session.execute(
            _NEAR_IN_SQL,
            {
                "scope": scope,
                "bands": [r[0] for r in probe_rows],
                "band_values": [r[1] for r in probe_rows],
                "query_hashes": [r[2] for r in probe_rows],
                "excluded": excluded,
                "max_distance": CANDIDATE_MAX_DISTANCE,
                "max_candidates": self.settings.reuse_max_candidates,
            },
        )
        return [(photo_id, int(distance)) for photo_id, distance in result.all()]

    async def _candidates_here(
        self,
        session: AsyncSession,
        scope: str,
        keys: dict[tuple[int, int], tuple[int, ...]],
        excluded: set[str],
    ) -> list[tuple[str, int]]:
        """Any database (SQLite, the embedded default): fetch the rows the probes hit, distances in Python."""
        wanted: dict[int, list[int]] = defaultdict(list)
        for band, value in keys:
            wanted[band].append(value)
        condition = or_(
            *(
                and_(col(PhotoHash.band) == band, col(PhotoHash.value).in_(sorted(values)))
                for band, values in wanted.items()
            )
        )
        rows = await session.execute(
            select(
                col(PhotoHash.photo_id), col(PhotoHash.full_hash), col(PhotoHash.band), col(PhotoHash.value)
            ).where(col(PhotoHash.reuse_scope) == scope, condition)
        )
        best: dict[str, int] = {}
        for photo_id, full_hash, band, value in rows:
            if photo_id in excluded:
                continue
            distance = min(hamming(q, full_hash) for q in keys[(band, value)])
            if distance <= CANDIDATE_MAX_DISTANCE and distance < best.get(photo_id, 65):
                best[photo_id] = distance
        return sorted(best.items(), key=lambda c: (c[1], c[0]))

    async def _features_of(self, session: AsyncSession, photo_ids: list[str]) -> dict[str, bytes]:
        result = await session.execute(
            select(col(Photo.id), col(Photo.sha256)).where(col(Photo.id).in_(photo_ids))
        )
        shas: dict[str, str] = {photo_id: sha for photo_id, sha in result.all()}
        blobs: dict[str, bytes] = {}
        cache: dict[str, bytes] = {}
        for photo_id, sha in shas.items():
            if sha not in cache:
                try:
                    cache[sha] = await self.store.get_bytes(keys.features_key(sha))
                except KeyError:
                    continue
            blobs[photo_id] = cache[sha]
        return blobs

    async def attach(
        self, session: AsyncSession, photo_id: str, issue_id: str, region_code: str, region_path: str
    ) -> Photo:
        photo = (await session.execute(select(Photo).where(col(Photo.id) == photo_id))).scalar_one_or_none()
        if photo is None:
            raise NotFound(f"photo {photo_id} not found", code="photo_not_found")
        if photo.issue_id is not None:
            if photo.issue_id == issue_id:
                return photo
            raise Conflict(
                f"photo {photo_id} is already pinned to issue {photo.issue_id}", code="photo_already_attached"
            )
        photo.issue_id = issue_id
        photo.region_code = region_code
        photo.region_path = region_path
        photo.attached_at = utcnow()
        await session.flush()
        return photo

    async def delete(self, session: AsyncSession, caller: Caller, photo_id: str) -> None:
        photo = await get_visible(session, caller, photo_id)
        if photo.issue_id is not None:
            raise Conflict(
                "a photo pinned to an issue is evidence and can never be deleted", code="photo_pinned"
            )
        if photo.uploader != caller.subject:
            raise Forbidden("only the uploader may delete an unattached photo", code="not_uploader")
        sha, redacted = photo.sha256, photo.redacted_key
        await session.delete(photo)
        await session.flush()
        others = await session.execute(
            select(func.count()).select_from(Photo).where(col(Photo.sha256) == sha)
        )
        if others.scalar_one() == 0:
            for key in keys.content_keys(sha):
                await self.store.delete(key)
        if redacted:
            await self.store.delete(redacted)
            await self.store.delete(keys.redacted_thumb_key(photo_id))

    async def redact(
        self, session: AsyncSession, caller: Caller, photo_id: str, boxes: list[tuple[int, int, int, int]]
    ) -> Photo:
        photo = await get_visible(session, caller, photo_id)  # first: outside the caller's region is 404
        if caller.role not in REDACTOR_ROLES:
            raise Forbidden("only staff may redact photos", code="redaction_not_allowed")
        # Boxes add up: a later redaction starts from the redacted copy, so nothing hidden comes back.
        display = await self.store.get_bytes(photo.redacted_key or keys.display_key(photo.sha256))
        redacted, thumb = await asyncio.to_thread(redact_with_thumb, display, boxes)
        key = keys.redacted_key(photo.id)
        # The thumbnail first: once redacted_key is set, both variants must hide what was covered.
        await self.store.put_bytes(keys.redacted_thumb_key(photo.id), thumb, "image/jpeg")
        await self.store.put_bytes(key, redacted, "image/jpeg")
        photo.redacted_key = key
        await session.flush()
        return photo


async def similar(session: AsyncSession, caller: Caller, photo_id: str) -> list[tuple[PhotoMatch, str]]:
    """Confirmed matches of a photo in either direction, among photos the caller may see."""
    await get_visible(session, caller, photo_id)
    rows = await session.execute(
        select(PhotoMatch, col(Photo.id))
        .join(
            Photo,
            or_(
                and_(col(PhotoMatch.photo_id) == photo_id, col(Photo.id) == col(PhotoMatch.other_id)),
                and_(col(PhotoMatch.other_id) == photo_id, col(Photo.id) == col(PhotoMatch.photo_id)),
            ),
        )
        .where(visible_to(caller))
        .order_by(col(PhotoMatch.score).desc(), col(PhotoMatch.id))
    )
    return [(m, other) for m, other in rows.all()]


def _flag_json(flag: Flag) -> dict[str, Any]:
    return {"code": flag.code, "detail": flag.detail, "figures": dict(flag.figures)}


def _reuse_flag(match: PhotoMatch) -> dict[str, Any]:
    how = "byte-identical" if match.exact else ("mirrored" if match.mirrored else "the same picture")
    return {
        "code": "reused",
        "detail": f"{how}: already stored as photo {match.other_id}",
        "figures": {
            "other_photo_id": match.other_id,
            "score": match.score,
            "distance": match.distance,
            "inliers": match.inliers,
            "mirrored": match.mirrored,
            "exact": match.exact,
        },
    }
