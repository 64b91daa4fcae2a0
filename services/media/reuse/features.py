"""Local features that confirm a candidate: ORB keypoints, a similarity fit, and a look at the pixels.

A features blob holds the ORB keypoints and descriptors of the trimmed picture (long edge FEATURE_EDGE)
and a THUMB_EDGE grey thumbnail of it. Two blobs show the same photograph when:

1. enough descriptors match (Lowe's ratio test) and RANSAC fits them with one similarity (turn, scale,
   shift) with many inliers: a reuse is never warped in perspective;
2. the fit is plausible (a turn of at most MAX_ROTATION_DEG, a scale within SCALE_RANGE) and the two
   pictures overlap on at least MIN_OVERLAP of each;
3. over that overlap, the thumbnails' fine structure agrees (normalised cross-correlation of their
   high-passed grey values, after aligning them with the fit). This is what keeps apart two different
   photos that share a printed sign or poster: their keypoints on the sign fit perfectly, their pixels
   elsewhere do not.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

FEATURE_EDGE = 640  # long edge the keypoints are found at (smaller pictures are enlarged to it)
MAX_FEATURES = 500
THUMB_EDGE = 64
DETECT = 2000  # keypoints found before `_spread` keeps MAX_FEATURES of them
GRID = 8  # cells along the long edge for spreading keypoints

# Confirmation thresholds, set on the fixtures of tests/media/photos.py (see bench/reuse_quality.py).
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 6.0  # reprojection tolerance at FEATURE_EDGE scale
MIN_INLIERS = 20
MIN_INLIER_RATIO = 0.25
MAX_ROTATION_DEG = 20.0
SCALE_RANGE = (0.4, 2.5)  # both pictures are normalised to FEATURE_EDGE, so crops stay near 1
MIN_OVERLAP = 0.5  # share of each picture the other one also shows
MIN_COVERAGE = 0.25  # inliers' convex hull over that of all keypoints in the overlap
MIN_CORRELATION = 0.7  # reuses measured >= 0.85; different photos sharing a sign <= 0.6
_HIGH_PASS_SIGMA = 4.0  # thumbnail pixels: keep the structure finer than about a sixteenth of the picture

_HEADER = struct.Struct("<2sBHHHBB")  # magic, version, keypoints, width, height, thumb width, thumb height
_MAGIC = b"RF"
_VERSION = 3
_WITH_CHROMA = 0x80  # set in the version byte when a chroma thumbnail follows the grey one
_READABLE = (2, 3)  # version 2 blobs (no chroma) are still read: photos stored before it
CHROMA_EDGE = 32  # long edge of the Cr/Cb thumbnail the dense path compares colour with
_XY_SCALE = 16  # keypoint coordinates stored as uint16 in 1/16 px
_DESCRIPTOR = 32


@dataclass(frozen=True)
class Match:
    """A confirmed reuse: the similarity fit between the two pictures and how well they agree."""

    inliers: int  # keypoint matches that agree with the fit
    inlier_ratio: float  # of the matches that passed the ratio test
    mirrored: bool  # the new picture is the mirror image of the old one
    score: float  # 0..1 confidence
    correlation: float = 1.0  # of the aligned thumbnails' fine structure, -1..1
    coverage: float = 1.0  # inliers' hull over the keypoints' hull in the overlap
    rotation_deg: float = 0.0
    scale: float = 1.0  # old picture size over new, both at FEATURE_EDGE
    dense: bool = False  # confirmed by the dense path (dense.py), not by keypoints


@dataclass(frozen=True)
class Features:
    xy: NDArray[np.float32]  # n x 2 keypoint positions
    descriptors: NDArray[np.uint8]  # n x 32
    size: tuple[int, int]  # width, height of the picture the keypoints are in
    thumb: NDArray[np.float32]  # grey thumbnail of the same picture
    chroma: NDArray[np.float32] | None = None  # its Cr and Cb (h x w x 2, CHROMA_EDGE), when stored


def _spread(keypoints: Sequence[cv2.KeyPoint], w: int, h: int, limit: int) -> list[cv2.KeyPoint]:
    """The strongest keypoints of each cell of a grid first, then the strongest of the rest, up to `limit`:
    the keypoints then cover all of the picture, not just its busiest corner, so crops keep enough."""
    if not keypoints:
        return []
    cols = max(1, round(GRID * w / max(w, h)))
    rows = max(1, round(GRID * h / max(w, h)))
    quota = max(1, limit // (cols * rows) // 2)  # half the budget spread evenly, half to the strongest
    xy = np.array([kp.pt for kp in keypoints])
    strength = np.array([kp.response for kp in keypoints])
    cell = np.minimum(cols - 1, (xy[:, 0] * cols / w).astype(int)) * rows + np.minimum(
        rows - 1, (xy[:, 1] * rows / h).astype(int)
    )
    order = np.lexsort((-strength, cell))  # by cell, strongest first within each
    sorted_cells = cell[order]
    first_of_cell = np.searchsorted(sorted_cells, sorted_cells, side="left")
    rank_in_cell = np.arange(len(order)) - first_of_cell
    spread = order[rank_in_cell < quota]
    rest = order[rank_in_cell >= quota]
    chosen = np.concatenate([spread, rest[np.argsort(-strength[rest], kind="stable")]])[:limit]
    return [keypoints[i] for i in chosen]


def _mirrored(keypoints: Sequence[cv2.KeyPoint], w: int) -> list[cv2.KeyPoint]:
    """The same corners in the mirror image: FAST and Harris do not care about left and right, so only
    the position and the orientation flip (saves detecting them again)."""
    return [
        cv2.KeyPoint(w - 1 - kp.pt[0], kp.pt[1], kp.size, (180.0 - kp.angle) % 360.0, kp.response, kp.octave)
        for kp in keypoints
    ]


def _orb() -> cv2.ORB:
    # A new detector per call: OpenCV objects are not documented as safe to share between threads.
    return cv2.ORB.create(nfeatures=DETECT, scaleFactor=1.2, nlevels=8, fastThreshold=12)


def encode_both(grey: NDArray[np.uint8], chroma: NDArray[np.uint8] | None = None) -> tuple[bytes, bytes]:
    """The features blobs of a grey picture (trimmed, at FEATURE_EDGE) and of its mirror image.

    `chroma` is the picture's Cr and Cb (h x w x 2, long edge CHROMA_EDGE), kept when the blob has room
    for it within that of MAX_FEATURES keypoints: pictures with few corners, which the dense path is for.
    """
    h, w = grey.shape
    orb = _orb()
    keypoints = _spread(orb.detect(grey, None), w, h, MAX_FEATURES)
    flipped = np.ascontiguousarray(grey[:, ::-1])
    flipped_chroma = None if chroma is None else np.ascontiguousarray(chroma[:, ::-1])
    return (
        _blob(orb, grey, keypoints, chroma),
        _blob(orb, flipped, _mirrored(keypoints, w), flipped_chroma),
    )


def encode(grey: NDArray[np.uint8], chroma: NDArray[np.uint8] | None = None) -> bytes:
    """The features blob of a grey picture (already trimmed and at FEATURE_EDGE)."""
    h, w = grey.shape
    orb = _orb()
    return _blob(orb, grey, _spread(orb.detect(grey, None), w, h, MAX_FEATURES), chroma)


def _blob(
    orb: cv2.ORB,
    grey: NDArray[np.uint8],
    keypoints: Sequence[cv2.KeyPoint],
    chroma: NDArray[np.uint8] | None = None,
) -> bytes:
    h, w = grey.shape
    scale = THUMB_EDGE / max(w, h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    thumb = cv2.resize(grey, (tw, th), interpolation=cv2.INTER_AREA)
    found, descriptors = orb.compute(grey, list(keypoints))
    n = 0 if descriptors is None or not found else len(found)
    colour = b""
    version = _VERSION
    cw, ch = _chroma_size(w, h)
    # The colour thumbnail only where it keeps the blob within the size of a fully textured picture's.
    if chroma is not None and n * (4 + _DESCRIPTOR) + cw * ch * 2 <= MAX_FEATURES * (4 + _DESCRIPTOR):
        small = cv2.resize(
            np.ascontiguousarray(chroma, dtype=np.uint8), (cw, ch), interpolation=cv2.INTER_AREA
        )
        colour = np.ascontiguousarray(small, dtype=np.uint8).tobytes()
        version |= _WITH_CHROMA
    head = _HEADER.pack(_MAGIC, version, n, w, h, tw, th)
    if n == 0:
        return head + thumb.tobytes() + colour
    xy = np.array([kp.pt for kp in found], dtype=np.float64)
    packed = np.clip(np.round(xy * _XY_SCALE), 0, 65535).astype("<u2")
    return (
        head + thumb.tobytes() + colour + packed.tobytes() + np.asarray(descriptors, dtype=np.uint8).tobytes()
    )


def _chroma_size(w: int, h: int) -> tuple[int, int]:
    scale = CHROMA_EDGE / max(1, w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def decode(blob: bytes) -> Features:
    """The keypoints, descriptors and thumbnail of a features blob; ValueError if it is not one."""
    if len(blob) < _HEADER.size:
        raise ValueError("features blob too short")
    magic, version, n, w, h, tw, th = _HEADER.unpack_from(blob)
    has_chroma = bool(version & _WITH_CHROMA)
    version &= ~_WITH_CHROMA
    if magic != _MAGIC or version not in _READABLE or (has_chroma and version < 3):
        raise ValueError("not a reuse features blob of this version")
    at = _HEADER.size
    cw, ch = _chroma_size(w, h) if has_chroma else (0, 0)
    if len(blob) != at + tw * th + cw * ch * 2 + n * (4 + _DESCRIPTOR):
        raise ValueError("features blob has the wrong length")
    thumb = np.frombuffer(blob, dtype=np.uint8, count=tw * th, offset=at).reshape(th, tw).astype(np.float32)
    at += tw * th
    chroma = None
    if cw * ch:
        chroma = (
            np.frombuffer(blob, dtype=np.uint8, count=cw * ch * 2, offset=at)
            .reshape(ch, cw, 2)
            .astype(np.float32)
        )
        at += cw * ch * 2
    xy = np.frombuffer(blob, dtype="<u2", count=n * 2, offset=at).reshape(n, 2).astype(np.float32)
    xy /= _XY_SCALE
    at += n * 4
    descriptors = np.frombuffer(blob, dtype=np.uint8, count=n * _DESCRIPTOR, offset=at).reshape(
        n, _DESCRIPTOR
    )
    return Features(xy, descriptors, (w, h), thumb, chroma)


def _hull_area(points: NDArray[np.float32]) -> float:
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))


def _high_pass(thumb: NDArray[np.float32]) -> NDArray[np.float32]:
    blurred = np.asarray(cv2.GaussianBlur(thumb, (0, 0), _HIGH_PASS_SIGMA), dtype=np.float32)
    return thumb - blurred


def _agreement(new: Features, old: Features, matrix: NDArray[np.float64]) -> tuple[float, float]:
    """(the smaller share of either picture that the other also shows, the correlation of the aligned
    thumbnails' fine structure over that overlap)."""
    nw, ow = new.size[0], old.size[0]
    nth, ntw = new.thumb.shape
    oth, otw = old.thumb.shape
    # The fit maps new keypoint coordinates to old ones; the same map between the thumbnails:
    to_new, to_old = ntw / nw, otw / ow
    thumb_map = np.empty((2, 3), np.float64)
    thumb_map[:, :2] = matrix[:, :2] * (to_old / to_new)
    thumb_map[:, 2] = matrix[:, 2] * to_old
    inverse = cv2.WARP_INVERSE_MAP
    aligned = cv2.warpAffine(_high_pass(old.thumb), thumb_map, (ntw, nth), flags=cv2.INTER_LINEAR | inverse)
    seen = cv2.warpAffine(
        np.ones((oth, otw), np.uint8), thumb_map, (ntw, nth), flags=cv2.INTER_NEAREST | inverse
    )
    seen_by_old = cv2.warpAffine(
        np.ones((nth, ntw), np.uint8), thumb_map, (otw, oth), flags=cv2.INTER_NEAREST
    )
    overlap = min(float(seen.mean()), float(seen_by_old.mean()))
    inside = cv2.erode(seen, np.ones((3, 3), np.uint8)) > 0  # interpolation at the edge is not the picture
    if inside.sum() < 16:
        return overlap, 0.0
    a = _high_pass(new.thumb)[inside]
    b = aligned[inside]
    a = a - a.mean()
    b = b - b.mean()
    norm = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return overlap, float((a * b).sum()) / norm if norm > 0 else 0.0


def match(new: Features, old: Features, *, mirrored: bool) -> Match | None:
    """Whether `new` shows the same photograph as `old` (see the module docstring); None if not."""
    if len(new.descriptors) < MIN_INLIERS or len(old.descriptors) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(new.descriptors, old.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = new.xy[[m.queryIdx for m in good]]
    dst = old.xy[[m.trainIdx for m in good]]
    fit, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=2000, confidence=0.995
    )
    if fit is None or mask is None:
        return None
    matrix = np.asarray(fit, dtype=np.float64)
    inlier = mask.ravel().astype(bool)
    inliers = int(inlier.sum())
    ratio = inliers / len(good)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    rotation = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    if (
        inliers < MIN_INLIERS
        or ratio < MIN_INLIER_RATIO
        or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]
        or abs(rotation) > MAX_ROTATION_DEG
    ):
        return None
    ow, oh = old.size
    mapped = new.xy @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
    shared = (mapped[:, 0] >= 0) & (mapped[:, 0] <= ow) & (mapped[:, 1] >= 0) & (mapped[:, 1] <= oh)
    coverage = min(1.0, _hull_area(src[inlier]) / max(1.0, _hull_area(new.xy[shared])))
    overlap, correlation = _agreement(new, old, matrix)
    if coverage < MIN_COVERAGE or overlap < MIN_OVERLAP or correlation < MIN_CORRELATION:
        return None
    score = 0.5 * correlation + 0.25 * ratio + 0.25 * min(1.0, inliers / 150)
    return Match(
        inliers=inliers,
        inlier_ratio=round(ratio, 4),
        mirrored=mirrored,
        score=round(min(1.0, max(0.0, score)), 4),
        correlation=round(correlation, 4),
        coverage=round(coverage, 4),
        rotation_deg=round(rotation, 2),
        scale=round(scale, 4),
    )
