"""The candidate lookup in the database agrees with its model in the pure core, on SQLite and PostgreSQL.

`Intake.candidates` runs as one SQL statement on PostgreSQL and as a fetch plus Python on other databases;
both must return exactly what `reuse.lookup_distance` says of each stored photo: the photos with a stored
hash within CANDIDATE_MAX_DISTANCE bits of a query hash that probed one of its bands, nearest first.
"""

from __future__ import annotations

import random
import uuid

import pytest

from services.media.deps import MediaState
from services.media.photos.models import PhotoHash
from services.media.photos.service import Intake
from services.media.reuse import CANDIDATE_MAX_DISTANCE, Fingerprint, band_keys, lookup_distance, to_signed
from tests.media.rows import photo_row
from tests.support.builders import COUNTY, REGION_PATHS

pytestmark = pytest.mark.parametrize("store_kind", ["local"], indirect=True)

SCOPE = REGION_PATHS[COUNTY]
OTHER_SCOPE = "/37/3702/370283/"


def _flip(h: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), bits):
        h ^= 1 << bit
    return h


async def _store(media_state: MediaState, archive: dict[str, tuple[str, list[int]]]) -> None:
    async with media_state.database.transaction() as session:
        for photo_id, (scope, hashes) in archive.items():
            session.add(photo_row(photo_id, scope))
            await session.flush()
            for h in hashes:
                for band, value in band_keys(h):
                    session.add(
                        PhotoHash(photo_id=photo_id, reuse_scope=scope, band=band, value=value, full_hash=h)
                    )


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_database_lookup_is_the_models(media_state: MediaState, seed: int) -> None:
    rng = random.Random(seed)
    queries = [rng.getrandbits(64) for _ in range(12)]
    archive: dict[str, tuple[str, list[int]]] = {}
    for n in range(60):
        # Near photos: one stored hash a few bits from a query hash (some share a band, some do not);
        # far ones: random. A few near ones live in another county and must never come back.
        hashes = [to_signed(rng.getrandbits(64)) for _ in range(5)]
        if n % 3 == 0:
            hashes[rng.randrange(5)] = to_signed(_flip(rng.choice(queries), rng.randrange(0, 10), rng))
        scope = OTHER_SCOPE if n % 10 == 9 else SCOPE
        archive[f"{n:02d}" + uuid.uuid4().hex[:30]] = (scope, hashes)
    await _store(media_state, archive)
    new = Fingerprint(index_hashes=(), query_hashes=tuple(to_signed(q) for q in queries), features=b"")
    excluded = next(
        pid for pid, (scope, h) in archive.items() if scope == SCOPE and lookup_distance(new, h) <= 7
    )

    intake: Intake = media_state.intake
    async with media_state.database.sessionmaker() as session:
        found = await intake.candidates(session, SCOPE, new, exclude={excluded})

    expected = sorted(
        (
            (pid, lookup_distance(new, hashes))
            for pid, (scope, hashes) in archive.items()
            if scope == SCOPE and pid != excluded
        ),
        key=lambda c: (c[1], c[0]),
    )
    expected = [c for c in expected if c[1] <= CANDIDATE_MAX_DISTANCE]
    assert len(expected) >= 5  # the case is not vacuous
    assert found == expected[: intake.settings.reuse_max_candidates]
