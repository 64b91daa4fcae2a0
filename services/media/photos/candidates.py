"""The reuse candidate lookup: stored hashes near a new photo's, through the band index.

Each stored 64-bit hash is indexed as four 16-bit bands; each band of each query hash is looked up with
exact index lookups, and a stored hash is kept when it lies within CANDIDATE_MAX_DISTANCE bits of a query
hash that probed it (`reuse.lookup_distance` is the model both forms are tested against).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.media.photos.models import PhotoHash

Probes = dict[tuple[int, int], tuple[int, ...]]

# The band probe of `near_hashes` on PostgreSQL (bit_count: PostgreSQL 14 and later). One row per
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


async def near_hashes(
    session: AsyncSession, scope: str, keys: Probes, *, exclude: set[str], limit: int
) -> list[tuple[str, int]]:
    """(photo id, hash distance) of the photos whose stored hashes the probes `keys` hit, nearest first."""
    if not keys:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return await _near_in_sql(session, scope, keys, sorted(exclude), limit)
    return (await _near_here(session, scope, keys, exclude))[:limit]


async def _near_in_sql(
    session: AsyncSession, scope: str, keys: Probes, excluded: list[str], limit: int
) -> list[tuple[str, int]]:
    """PostgreSQL: the probes as rows joined to the band index, distances and ranking in the database.

    At 10^6 photos in one county this takes ~90 ms against ~200 ms fetching the rows
    (bench/similar_lookup.py), and none of it on the event loop.
    """
    from services.media.reuse import CANDIDATE_MAX_DISTANCE  # imported with the picture work, not at start

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
            "max_candidates": limit,
        },
    )
    return [(photo_id, int(distance)) for photo_id, distance in result.all()]


async def _near_here(
    session: AsyncSession, scope: str, keys: Probes, excluded: set[str]
) -> list[tuple[str, int]]:
    """Any database (SQLite, the embedded default): fetch the rows the probes hit, distances in Python."""
    from services.media.reuse import CANDIDATE_MAX_DISTANCE, hamming  # imported with the picture work

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
