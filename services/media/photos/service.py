"""What the photo domain does: take in, store, check, look for reuse, attach, redact, delete."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.kit.auth import Caller, in_subtree
from services.kit.db import utcnow
from services.kit.errors import Conflict, Forbidden, NotFound
from services.kit.identity import SUPERVISOR_ROLES, Role, Subject, path_prefix
from services.kit.outbox import Outbox
from services.media.imaging.budget import DecodeBudget, give_back_freed_memory
from services.media.photos import contents, keys
from services.media.photos.candidates import near_hashes
from services.media.photos.models import Photo, PhotoHash, PhotoMatch
from services.media.photos.rules import Flag, photo_checks
from services.media.photos.schemas import Claims, Purpose
from services.media.settings import MediaSettings
from services.media.storage import ObjectStore

if TYPE_CHECKING:
    from services.media.imaging.pipeline import Processed
    from services.media.reuse import Fingerprint, Match

# The imaging and reuse modules (OpenCV, NumPy, Pillow, HEIF) are imported where a picture is handled, not
# when the service starts: they are most of its start-up time. `services.media.app` warms them in the
# background once the service is up, so the first upload does not wait for them either.

# Only these roles may redact display copies (faces, number plates).
REDACTOR_ROLES = SUPERVISOR_ROLES
MAX_REUSE_FLAGS = 5
# Decodes costing more than this give their freed memory back to the system when they end (~1 ms).
LARGE_DECODE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class Owner:
    """Who a new photo belongs to until it is attached to an issue."""

    subject: str
    role: str
    region_code: str
    region_path: str

    @classmethod
    def of(cls, caller: Caller) -> Owner:
        return cls(str(caller.subject), caller.role, caller.region, caller.region_path)

    def as_viewer(self) -> Caller:
        """The uploader as a reader of photos (no scopes: only what `visible_to` weighs)."""
        subject = Subject.parse(self.subject)
        if subject is None:
            raise ValueError(f"not a token subject: {self.subject!r}")
        return Caller(
            subject=subject,
            role=Role(self.role),
            region=self.region_code,
            region_path=self.region_path,
            scopes=frozenset(),
        )


def reuse_scope(region_path: str, depth: int) -> str:
    """The archive a photo is compared with: its region path cut to `depth` levels (the county)."""
    return path_prefix(region_path, depth)


def visible_to(viewer: Caller | Owner) -> ColumnElement[bool]:
    """Photos in the caller's subtree; a citizen sees only its own. An `Owner` is the uploader of a photo
    being taken in, seeing what its own token would."""
    caller = viewer if isinstance(viewer, Caller) else viewer.as_viewer()
    condition = in_subtree(col(Photo.region_path), caller)
    if caller.role == Role.citizen:
        condition = and_(condition, col(Photo.uploader) == str(caller.subject))
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

    def __init__(self, store: ObjectStore, settings: MediaSettings, outbox: Outbox) -> None:
        self.store = store
        self.settings = settings
        self.outbox = outbox
        self._decoding = asyncio.Semaphore(settings.max_concurrent_decodes)
        self._memory = DecodeBudget(settings.decode_memory_bytes)

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
        from services.media.imaging.images import ImageTooCostly, decode_cost
        from services.media.imaging.pipeline import process

        max_pixels = self.settings.max_pixels
        cost = await asyncio.to_thread(decode_cost, path, max_pixels=max_pixels)  # the header only
        if cost > self._memory.total:
            raise ImageTooCostly(
                f"解码这张图片约需 {cost // 2**20} MB 内存，超过上限 {self._memory.total // 2**20} MB；"
                "请转为 JPEG 或缩小尺寸后再上传",
                decode_bytes=cost,
                max_decode_bytes=self._memory.total,
            )
        async with self._decoding, self._memory.hold(cost):
            processed = await asyncio.to_thread(process, path, max_pixels=max_pixels)
            if cost > LARGE_DECODE_BYTES:
                await asyncio.to_thread(give_back_freed_memory)  # before the next decode may start
        await contents.claim(session, processed.sha256)  # before looking: a release waits for this upload
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
        ranked = await _for_review(session, matches)
        flagged = ranked[:MAX_REUSE_FLAGS]
        # The archive is the county's, but the uploader is told which photo only where it may read it.
        seen = await _visible_ids(session, owner, [r.match.other_id for r in flagged])
        photo.flags = [_flag_json(f) for f in flags] + [
            _reuse_flag(r.match, r.match.other_id in seen, ranked=r, group_size=len(ranked)) for r in flagged
        ]
        from services.media.reuse import band_keys

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
        from services.media.reuse import NEAR_DISTANCE, Fingerprint, confirm, for_confirm, hash_agreement

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
        # Beyond NEAR_DISTANCE only reuse_far_candidates go on to confirm(); where more are found, their
        # stored hashes (a few rows each, by photo id) rank them by how many windows agree.
        far_limit = self.settings.reuse_far_candidates
        far = [other_id for other_id, distance in candidates if distance > NEAR_DISTANCE]
        agreement: dict[str, int] | None = None
        if 0 < far_limit < len(far):
            stored = await _index_hashes_of(session, far)
            agreement = {other_id: hash_agreement(fp, hashes) for other_id, hashes in stored.items()}
        candidates = for_confirm(candidates, far_limit, agreement)
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
        """(photo id, hash distance) of stored photos near `fp` in `scope`, nearest first."""
        from services.media.reuse import probes

        return await near_hashes(
            session,
            scope,
            probes(fp, self.settings.reuse_probe_radius),
            exclude=exclude or set(),
            limit=self.settings.reuse_max_candidates,
        )

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
        if photo.uploader != str(caller.subject):
            raise Forbidden("only the uploader may delete an unattached photo", code="not_uploader")
        await session.delete(photo)
        await session.flush()
        # The bytes go after the commit, and only if no other photo shows them by then.
        await self.outbox.enqueue(session, contents.RELEASE, {"sha256": photo.sha256})
        if photo.redacted_key:
            await self.outbox.enqueue(
                session,
                contents.DELETE_OBJECTS,
                {"keys": [photo.redacted_key, keys.redacted_thumb_key(photo_id)]},
            )

    async def redact(
        self, session: AsyncSession, caller: Caller, photo_id: str, boxes: list[tuple[int, int, int, int]]
    ) -> Photo:
        photo = await get_visible(session, caller, photo_id)  # first: outside the caller's region is 404
        if caller.role not in REDACTOR_ROLES:
            raise Forbidden("only staff may redact photos", code="redaction_not_allowed")
        # Boxes add up: a later redaction starts from the redacted copy, so nothing hidden comes back.
        display = await self.store.get_bytes(photo.redacted_key or keys.display_key(photo.sha256))
        from services.media.imaging.images import redact_with_thumb

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


async def _visible_ids(session: AsyncSession, owner: Owner, photo_ids: list[str]) -> set[str]:
    """Those of `photo_ids` the uploader may read."""
    if not photo_ids:
        return set()
    rows = await session.execute(select(col(Photo.id)).where(col(Photo.id).in_(photo_ids), visible_to(owner)))
    return set(rows.scalars())


@dataclass(frozen=True)
class Ranked:
    """A match with what a reviewer weighs first: is the other photo the earliest of this picture, is it
    already evidence on an issue."""

    match: PhotoMatch
    earliest: bool
    attached: bool


async def _for_review(session: AsyncSession, matches: list[PhotoMatch]) -> list[Ranked]:
    """All matches of the new photo show one picture: the earliest of them first (the original a reuse
    copies), then those already attached to an issue (a second issue closed with the same evidence), then
    the rest, strongest first. Every match is stored; the upload answers the first MAX_REUSE_FLAGS."""
    if not matches:
        return []
    rows = await session.execute(
        select(col(Photo.id), col(Photo.created_at), col(Photo.issue_id)).where(
            col(Photo.id).in_([m.other_id for m in matches])
        )
    )
    facts = {photo_id: (created_at, issue_id) for photo_id, created_at, issue_id in rows.all()}
    known = [m for m in matches if m.other_id in facts]
    if not known:
        return [Ranked(m, earliest=False, attached=False) for m in matches]
    first = min(known, key=lambda m: (facts[m.other_id][0], m.other_id)).other_id
    ranked = [
        Ranked(m, earliest=m.other_id == first, attached=facts.get(m.other_id, (None, None))[1] is not None)
        for m in matches
    ]

    def order(r: Ranked) -> tuple[bool, bool, float, int, str]:
        return (not r.earliest, not r.attached, -r.match.score, r.match.distance, r.match.other_id)

    return sorted(ranked, key=order)


def _reuse_flag(
    match: PhotoMatch, named: bool, *, ranked: Ranked | None = None, group_size: int = 1
) -> dict[str, Any]:
    """The `reused` flag; the other photo's id only where the uploader may read that photo (`named`).

    `group_size` is how many stored photos show this picture; `ranked` says whether this one is the
    earliest of them and whether it is attached to an issue (the issue itself is not named here)."""
    how = "byte-identical" if match.exact else ("mirrored" if match.mirrored else "the same picture")
    where = f"as photo {match.other_id}" if named else "elsewhere in the county (outside your region)"
    earliest = ranked is not None and ranked.earliest
    attached = named and ranked is not None and ranked.attached  # nothing more said of a photo not shown
    notes = [
        n for n, on in (("the earliest copy", earliest), ("already evidence on an issue", attached)) if on
    ]
    detail = f"{how}: already stored {where}" + (f" ({', '.join(notes)})" if notes else "")
    if group_size > 1:
        detail += f"; {group_size} stored photos show this picture"
    return {
        "code": "reused",
        "detail": detail,
        "figures": {
            **({"other_photo_id": match.other_id} if named else {}),
            "elsewhere": not named,
            "score": match.score,
            "distance": match.distance,
            "inliers": match.inliers,
            "mirrored": match.mirrored,
            "exact": match.exact,
            "earliest": earliest,
            "attached": attached,
            "group_size": group_size,
        },
    }


async def _index_hashes_of(session: AsyncSession, photo_ids: list[str]) -> dict[str, list[int]]:
    """The distinct stored (index) hashes of each of `photo_ids`."""
    rows = await session.execute(
        select(col(PhotoHash.photo_id), col(PhotoHash.full_hash))
        .where(col(PhotoHash.photo_id).in_(photo_ids))
        .distinct()
    )
    hashes: dict[str, list[int]] = {}
    for photo_id, full_hash in rows.all():
        hashes.setdefault(photo_id, []).append(full_hash)
    return hashes
