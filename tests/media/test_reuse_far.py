"""Candidates beyond NEAR_DISTANCE cost an upload at most `reuse_far_candidates` confirm()s.

Pairs of different pictures reach 8 bits far more often than 6, and 10 more often still, so in a large
reuse scope an honest upload meets many candidates at 7-10 bits; each would be a wasted confirm(). Those
within 6 bits (the bound before candidates were widened to 10) are all confirmed as before; of those
beyond, only the first `reuse_far_candidates`, nearest and best agreeing first (`reuse.for_confirm`), so a
reused copy found only at 8 or 10 bits is still flagged when it ranks first.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from services.media.deps import MediaState
from services.media.photos import keys
from services.media.photos.models import PhotoHash
from services.media.photos.service import Intake
from services.media.reuse import (
    CANDIDATE_MAX_DISTANCE,
    NEAR_DISTANCE,
    Fingerprint,
    Match,
    band_keys,
    for_confirm,
    hamming,
    hash_agreement,
    lookup_distance,
    to_signed,
)
from tests.media.rows import photo_row
from tests.support.builders import COUNTY, REGION_PATHS

SCOPE = REGION_PATHS[COUNTY]


def _flip_low(h: int, bits: int, rng: random.Random) -> int:
    """`h` with `bits` bits flipped, none in its most significant band (so band 0 is still shared)."""
    for bit in rng.sample(range(48), bits):
        h ^= 1 << bit
    return to_signed(h & (2**64 - 1))


def test_for_confirm_keeps_every_near_candidate_and_the_first_far_ones() -> None:
    near = [("n2", NEAR_DISTANCE), ("n1", 0)]
    far = [("f3", 10), ("f1", 10), ("f2", 10)]
    assert NEAR_DISTANCE < 10 <= CANDIDATE_MAX_DISTANCE
    # Far ones by agreement (lower first), then by id; the order given does not matter.
    agreement = {"f1": 90, "f2": 40, "f3": 90}
    for order in (near + far, far[::-1] + near[::-1]):
        assert for_confirm(order, 0, agreement) == [("n1", 0), ("n2", NEAR_DISTANCE)]
        assert for_confirm(order, 1, agreement) == [("n1", 0), ("n2", NEAR_DISTANCE), ("f2", 10)]
        assert for_confirm(order, 2, agreement)[2:] == [("f2", 10), ("f1", 10)]
        assert for_confirm(order, 2)[2:] == [("f1", 10), ("f2", 10)]  # no agreement: by id
    # Nearest first beyond NEAR_DISTANCE too, whatever the agreement.
    assert for_confirm([("a", 10), ("b", NEAR_DISTANCE + 1)], 1, {"a": 0, "b": 300}) == [
        ("b", NEAR_DISTANCE + 1)
    ]


def test_candidates_at_8_bits_are_bounded_and_every_one_within_6_is_confirmed() -> None:
    assert NEAR_DISTANCE == 6  # the bound before candidates were widened: the cost baseline
    near = [(f"n{i}", d) for i, d in enumerate([6, 6, 4, 6, 2, 6])]
    far = [(f"e{i}", 8) for i in range(5)] + [(f"t{i}", 10) for i in range(5)]
    agreement = {"e0": 90, "e1": 90, "e2": 30, "e3": 60, "e4": 90, "t0": 0}
    kept_near = sorted(near, key=lambda c: (c[1], c[0]))
    for order in (near + far, far[::-1] + near[::-1]):
        assert for_confirm(order, 0, agreement) == kept_near
        assert for_confirm(order, 1, agreement) == [*kept_near, ("e2", 8)]  # 8 before 10 whatever agreeing
        assert for_confirm(order, 2, agreement) == [*kept_near, ("e2", 8), ("e3", 8)]
    assert len(for_confirm(near + far, 40, agreement)) == len(near) + len(far)


def test_hash_agreement_counts_every_stored_window() -> None:
    rng = random.Random(3)
    queries = [rng.getrandbits(64) for _ in range(4)]
    new = Fingerprint(index_hashes=(), query_hashes=tuple(to_signed(q) for q in queries), features=b"")
    copy = [_flip_low(q, 10, rng) for q in queries]  # every window within 10 bits
    chance = [copy[0]] + [to_signed(rng.getrandbits(64)) for _ in range(3)]  # one window only
    assert lookup_distance(new, copy) == lookup_distance(new, chance) == 10
    assert hash_agreement(new, copy) == 40
    assert hash_agreement(new, chance) > 40 + 3 * 10


@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
@pytest.mark.parametrize("bits", [8, 10])
async def test_many_far_candidates_cost_one_confirm_and_a_far_copy_ranked_first_is_flagged(
    media_state: MediaState, monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    rng = random.Random(10)
    queries = [rng.getrandbits(64) for _ in range(4)]
    new = Fingerprint(index_hashes=(), query_hashes=tuple(to_signed(q) for q in queries), features=b"new")
    intake: Intake = media_state.intake
    assert intake.settings.reuse_far_candidates == 1

    def random_hashes(n: int) -> list[int]:
        return [to_signed(rng.getrandbits(64)) for _ in range(n)]

    # 12 other pictures that reach `bits` by chance with one window, 4 more at 10 bits, 2 within 6 bits
    # (other pictures too), and the reused copy: every window at `bits`, its id last (ties by id lose).
    archive: dict[str, tuple[list[int], bytes]] = {}
    for n in range(16):
        archive[f"{n:02d}" + uuid.uuid4().hex[:30]] = (
            [_flip_low(queries[n % 4], bits if n < 12 else 10, rng), *random_hashes(5)],
            b"other",
        )
    for n in range(2):
        archive[f"a{n}" + uuid.uuid4().hex[:30]] = (
            [_flip_low(queries[1], 6, rng), *random_hashes(5)],
            b"other",
        )
    true_id = "ff" + uuid.uuid4().hex[:30]
    archive[true_id] = ([_flip_low(q, bits, rng) for q in queries], b"true")
    async with media_state.database.transaction() as session:
        for photo_id, (hashes, blob) in archive.items():
            sha = uuid.uuid4().hex * 2
            session.add(photo_row(photo_id, SCOPE, sha256=sha))
            await intake.store.put_bytes(keys.features_key(sha), blob, "application/octet-stream")
            await session.flush()
            for h in hashes:
                for band, value in band_keys(h):
                    session.add(
                        PhotoHash(photo_id=photo_id, reuse_scope=SCOPE, band=band, value=value, full_hash=h)
                    )
    distances = {pid: lookup_distance(new, hashes) for pid, (hashes, _) in archive.items()}
    assert sorted(distances.values()) == sorted([6, 6] + [bits] * 13 + [10] * 4)  # the case is what it says
    assert NEAR_DISTANCE < bits <= CANDIDATE_MAX_DISTANCE
    assert all(min(hamming(q, h) for q in queries) == bits for h in archive[true_id][0])

    confirmed: list[str] = []

    def counting_confirm(fp: Fingerprint, other: Fingerprint) -> Match | None:
        confirmed.append(other.features.decode())
        return (
            Match(inliers=30, inlier_ratio=0.9, mirrored=False, score=0.9)
            if other.features == b"true"
            else None
        )

    monkeypatch.setattr("services.media.reuse.confirm", counting_confirm)
    upload: Any = photo_row(uuid.uuid4().hex, SCOPE)
    async with media_state.database.sessionmaker() as session:
        matches = await intake._find_reuse(session, upload, new)

    assert sorted(confirmed) == ["other", "other", "true"]  # the two near ones, one far: the copy
    assert [m.other_id for m in matches] == [true_id]
    assert matches[0].distance == bits
