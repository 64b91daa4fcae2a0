"""Reuse detection, the pure part: perceptual hashes find candidates, local features confirm them.

A picture reused for a second issue comes back re-encoded, shrunk by WeChat, resized, cropped, brightened
or darkened, mirrored, turned a few degrees or inside a phone screenshot. Every new photo is compared with
a whole county's archive, so the work is split:

- **Find** (`fingerprint`, `band_keys`, `probe_keys`, `candidate_distance`): after trimming uniform
  borders (`trim.py`), 64-bit DCT hashes of several windows of the picture (`hashes.py`): a few stored per
  photo, more (with the mirror image's) queried by a new one. Each stored hash is indexed as four 16-bit
  bands, and each band of each query hash is looked up exactly (PROBE_RADIUS 0): that finds every stored
  hash within 3 bits for sure, and a reused picture leaves dozens of query/stored pairs within a few bits,
  so some pair nearly always shares a whole band; hashes fetched are kept within CANDIDATE_MAX_DISTANCE.
- **Confirm** (`confirm`, `features.py`): ORB keypoints, a RANSAC similarity fit, and agreement of the
  aligned thumbnails, so two photos that merely look alike or share a printed sign are not accused.
  Pictures with too few corners for that (a sky, a wall, a swept yard, a blurred shot) go to the dense
  path (`dense.py`): the thumbnails aligned by phase correlation and ECC, then compared at several scales
  and in colour, calibrated so that two different skies or walls stay apart.

No I/O and no shared mutable state: every function is safe to call from worker threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from services.media.reuse import dense as _dense
from services.media.reuse import features as _features
from services.media.reuse.features import FEATURE_EDGE, Match
from services.media.reuse.hashes import (
    BANDS,
    HASH_BASE,
    PROBE_GUARANTEE,
    PROBE_RADIUS,
    STORED_KEEP,
    WHOLE,
    band_keys,
    centre,
    cut,
    dct_hash,
    from_signed,
    hamming,
    probe_guarantee,
    probe_keys,
    query_hashes,
    stored_hashes,
    to_signed,
)
from services.media.reuse.trim import trim_box

__all__ = [
    "BANDS",
    "CANDIDATE_MAX_DISTANCE",
    "NEAR_DISTANCE",
    "PROBE_GUARANTEE",
    "PROBE_RADIUS",
    "Fingerprint",
    "Match",
    "band_keys",
    "candidate_distance",
    "confirm",
    "fingerprint",
    "for_confirm",
    "from_signed",
    "hamming",
    "hash_agreement",
    "lookup_distance",
    "probe_guarantee",
    "probe_keys",
    "probes",
    "to_signed",
    "trim_box",
]

# Candidates with candidate_distance <= this go on to confirm(). Each hash has exactly 32 bits set (the
# signs against the median), so distances are even. On the fixtures every kind of reuse measured within
# 6 bits and different photos 8 and more; on bench.reuse_set turns, brightened walls and chains of
# periodic or smooth pictures reach 8 and 10 (6 copies found at 10). The band lookup returns 201 of that
# set's 920,810 (upload, other picture's original) pairs within 10 bits (101 within 8), all refused by
# confirm(). Each is a confirm() (~12 ms) on an honest upload, and their number grows with the reuse
# scope: 1.2e-4 per pair of drawn fixture scenes within 10 bits, 2.2e-5 within 8 (bench/README.md).
# The lookup is the same either way: this only filters the rows it fetched. What the candidates beyond
# NEAR_DISTANCE may cost is bounded by `for_confirm`.
CANDIDATE_MAX_DISTANCE = 10
# Candidates within this many bits always go on to confirm() (up to the lookup's reuse_max_candidates):
# the bound before candidates were widened to 8 and then 10 bits, so what they cost an upload is what it
# cost then. Those beyond it, up to CANDIDATE_MAX_DISTANCE (i.e. at 8 and 10: distances are even), only
# the few ranked first by `for_confirm`: pairs of different pictures reach 8 and 10 bits far more often
# than 6 (drawn fixture scenes: none of 122,150 pairs within 6, 55 within 10; the set's uploads: 58 of
# 920,810 within 6 by candidate_distance, 431 within 10), so their number grows with the reuse scope and
# each is a wasted confirm() on an honest upload.
NEAR_DISTANCE = 6


@dataclass(frozen=True)
class Fingerprint:
    """What reuse detection keeps of a photo.

    `index_hashes` are stored and indexed; `query_hashes` (a superset, with the mirror image's) are probed
    when this photo looks for earlier ones. Hashes are 64-bit patterns as signed int64 (fit a BIGINT).
    `features` is the blob to store (ORB keypoints, descriptors, a 64 px grey thumbnail and, where it fits
    within the size of a fully textured picture's blob, a 32 px Cr/Cb thumbnail; at most about 21 KB);
    `mirror_features`, the mirror image's, only matter while this photo is the new one being checked.
    A stored photo is enough as `Fingerprint(index_hashes=(), query_hashes=(), features=blob)`.
    """

    index_hashes: tuple[int, ...]
    query_hashes: tuple[int, ...]
    features: bytes
    mirror_features: bytes = b""


def _resize_long(image: Image.Image, edge: int) -> Image.Image:
    """`image` with its long edge at `edge`: shrunk by box averaging, enlarged bicubically."""
    w, h = image.size
    scale = edge / max(w, h)
    if scale == 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale > 1:
        return image.resize(size, Image.Resampling.BICUBIC)
    return image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def fingerprint(image: Image.Image) -> Fingerprint:
    """Hashes and features of an upright picture (RGB or L, any size: it is scaled here).

    Small copies are enlarged to FEATURE_EDGE so ORB sees every picture at the same scale and finds the
    same corners in a 400 px copy as in the 1600 px original.
    """
    grey = image.convert("L") if image.mode != "L" else image
    box = trim_box(grey)
    view = _resize_long(grey.crop(box), FEATURE_EDGE)
    pixels = np.asarray(view, dtype=np.uint8)
    base = np.asarray(_resize_long(view, HASH_BASE), dtype=np.float32)
    index = stored_hashes(base)
    query = query_hashes(base)
    if box != (0, 0, *grey.size):
        # Trimming can misjudge (a blown-out sky above a straight roof line): keep the untrimmed view too.
        whole = np.asarray(_resize_long(grey, HASH_BASE), dtype=np.float32)
        index.append(dct_hash(whole))
        query.extend(dct_hash(cut(whole, window)) for window in (WHOLE, centre(STORED_KEEP)))
    colour = image.convert("RGB") if image.mode != "RGB" else image
    chroma_view = _resize_long(colour.crop(box), 2 * _features.CHROMA_EDGE).convert("YCbCr")
    chroma = np.asarray(chroma_view, dtype=np.uint8)[:, :, [2, 1]]  # Cr, Cb
    features, mirror_features = _features.encode_both(pixels, chroma)
    return Fingerprint(
        index_hashes=tuple(dict.fromkeys(index)),
        query_hashes=tuple(dict.fromkeys(index + query)),
        features=features,
        mirror_features=mirror_features,
    )


def candidate_distance(query: Fingerprint, stored_index_hashes: Sequence[int]) -> int:
    """The smallest Hamming distance between a query hash of `query` and a stored hash (65 if none)."""
    best = 65
    for q in query.query_hashes:
        for s in stored_index_hashes:
            best = min(best, hamming(q, s))
    return best


def hash_agreement(query: Fingerprint, stored_index_hashes: Sequence[int]) -> int:
    """How well all of a stored photo's windows agree with `query`, not just its nearest one: the sum,
    over its stored hashes, of the distance to the nearest query hash (lower is closer; 0 if none).

    A reused copy keeps most windows of its original within a few bits of a query hash; a different
    picture that reached the candidate bound by chance usually does so with one window, the others near
    the 32 bits of unrelated hashes. Used to rank candidates beyond NEAR_DISTANCE, never to refuse one.
    """
    if not stored_index_hashes:
        return 0
    if not query.query_hashes:
        return 64 * len(stored_index_hashes)
    mask = (1 << 64) - 1
    queries = np.array([q & mask for q in query.query_hashes], dtype=np.uint64)
    stored = np.array([s & mask for s in stored_index_hashes], dtype=np.uint64)
    return int(np.bitwise_count(queries[:, None] ^ stored[None, :]).min(axis=0).sum())


def for_confirm(
    candidates: Sequence[tuple[str, int]],
    far_limit: int,
    agreement: Mapping[str, int] | None = None,
) -> list[tuple[str, int]]:
    """The (id, distance) candidates to confirm: every one within NEAR_DISTANCE, then at most `far_limit`
    of those beyond it (up to CANDIDATE_MAX_DISTANCE), nearest first, then by `agreement` (as from
    `hash_agreement`, lower first; a missing id counts as the worst), then by id, so the choice does not
    depend on the order given.

    This bounds what the candidates beyond NEAR_DISTANCE cost an upload at `far_limit` confirm()s,
    whatever the size of the reuse scope.
    """
    near = sorted((c for c in candidates if c[1] <= NEAR_DISTANCE), key=lambda c: (c[1], c[0]))
    ranks = agreement or {}
    far = sorted(
        (c for c in candidates if NEAR_DISTANCE < c[1] <= CANDIDATE_MAX_DISTANCE),
        key=lambda c: (c[1], ranks.get(c[0], 65 * 64), c[0]),
    )
    return near + far[: max(0, far_limit)]


def probes(query: Fingerprint, radius: int = PROBE_RADIUS) -> dict[tuple[int, int], tuple[int, ...]]:
    """The band keys to look up for `query`, each with the query hashes that probe it."""
    by_key: dict[tuple[int, int], list[int]] = {}
    for q in query.query_hashes:
        for key in probe_keys(q, radius):
            hashes = by_key.setdefault(key, [])
            if q not in hashes:
                hashes.append(q)
    return {key: tuple(hashes) for key, hashes in by_key.items()}


def lookup_distance(
    query: Fingerprint, stored_index_hashes: Sequence[int], radius: int = PROBE_RADIUS
) -> int:
    """What the band index gives for one stored photo: the smallest distance between a stored hash and a
    query hash that probed one of its band keys, 65 if no key is shared.

    The database does the same for the whole archive at once (`Intake.candidates`).
    """
    keys = probes(query, radius)
    best = 65
    for s in stored_index_hashes:
        for key in band_keys(s):
            for q in keys.get(key, ()):
                best = min(best, hamming(q, s))
    return best


def confirm(new: Fingerprint, old: Fingerprint) -> Match | None:
    """The strict check: does `new` show the same photograph as `old`, maybe mirrored? None if not.

    Uses `new.mirror_features` for the mirror image when present. Raises ValueError on a blob that is not
    a features blob of this version.
    """
    stored = _features.decode(old.features)
    views = [(_features.decode(new.features), False)]
    if new.mirror_features:
        views.append((_features.decode(new.mirror_features), True))
    for view, mirrored in views:
        found = _features.match(view, stored, mirrored=mirrored)
        if found is not None:
            return found
    for view, mirrored in views:
        dense = _dense.match(view.thumb, stored.thumb, view.chroma, stored.chroma)
        if dense is not None:
            return Match(
                inliers=0,
                inlier_ratio=0.0,
                mirrored=mirrored,
                score=round(min(1.0, max(0.0, dense.correlation)), 4),
                correlation=round(dense.correlation, 4),
                coverage=round(dense.overlap, 4),
                rotation_deg=round(dense.rotation_deg, 2),
                scale=round(dense.scale, 4),
                dense=True,
            )
    return None
