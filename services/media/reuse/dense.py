"""Confirmation without corners: align the thumbnails densely, then compare them at several scales and in colour.

A swept yard, a repainted wall, a hazy sky or a blurred shot gives ORB too few keypoints to fit anything, so
`features.match` cannot confirm its copies. For such pictures:

1. **Align.** The similarity between the two thumbnails (a crop, a resize, a turn of a few degrees) is
   searched over a small grid of turns and scales, then finer grids around the best, the shift at each
   found by phase correlation and each judged by the correlation of the thumbnails' detail (a band-pass:
   what tells one sky from another, not the gradient every sky shares); ECC then refines the best within
   a similarity. Mirror images come through the new photo's mirror blob, as on the keypoint path.
2. **Compare at several scales.** Over the overlap (at least MIN_OVERLAP of each picture), the aligned old
   thumbnail is fitted to the new one by a gain and an offset (a brightened copy); then the middle and
   coarse detail must correlate (MIN_CORRELATION) and the smooth base must agree (BASE_RESIDUAL), as must
   the smooth part of the pictures' difference once a misregistration is fitted away (FIT_RESIDUAL: what
   keeps periodic look-alikes, two stripe patterns that some shift and scale line up, apart). Two
   different skies, walls or yards share a palette and a gradient, but not their clouds, stains and grain.
3. **Enough to go on.** Both pictures must carry some detail beyond a smooth gradient (MIN_DETAIL): two
   flawless gradients cannot be told apart, so neither is accused.
4. **Colour.** Where both blobs carry a chroma thumbnail, its aligned means and structure agree within
   CHROMA_TOLERANCE: a blue sky is not a grey one however alike their shapes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

Image32 = NDArray[np.float32]

TURNS_DEG = (-3.0, 0.0, 3.0)
SCALES = (0.8, 0.86, 0.92, 1.0, 1 / 0.92, 1 / 0.86, 1 / 0.8)  # old picture over new, crops of up to 20 %
MAX_ROTATION_DEG = 8.0
SCALE_RANGE = (0.7, 1.45)
MAX_ANISOTROPY = 0.04  # ECC fits an affine map; a reuse is a similarity
MIN_OVERLAP = 0.6
# The coarse grid's best detail correlation below which the search stops: copies reach 0.9 and more there,
# and confirmation needs MIN_CORRELATION after refining.
MIN_SEARCH_CORRELATION = 0.6
EDGE_MARGIN = 3  # thumbnail pixels left out along either picture's edge
MIN_USABLE = 0.3  # share of the new thumbnail left to compare (unsaturated, off the edges)
GAIN_RANGE = (0.75, 1.35)  # brightened or darkened by up to ~30 %
# Calibrated on bench.reuse_set (the smooth classes, their copies, and every original or copy against every
# other picture's original within 14 bits or of one look-alike family): copies reach a middle-band
# correlation of 0.99 (p50); different pictures other than stripe patterns of one family stay below 0.8,
# those reach 0.98 (aligned by the search) and are kept apart by the smooth difference below (FIT_*).
BASE_SIGMA = 4.0  # thumbnail pixels: the smooth base the bands leave
MIN_CORRELATION = 0.88  # of the middle and coarse detail (sigma 1-4 thumbnail px) over the overlap
# Periodic look-alikes (two soft stripe patterns of one family) line up under the search and their detail
# then correlates up to 0.98; what differs is the smooth part of their difference (the blotches beside the
# stripes). A copy leaves nothing there but a misregistration of a fraction of a thumbnail pixel, which a
# small affine displacement explains and which is fitted away first. What is left, blurred within the
# compared area only, must stay within FIT_RESIDUAL + FIT_RESIDUAL_PER_DETAIL x detail grey levels (RMS):
# copies 0-1.3 (a brightened one the most), stripe look-alikes 1.7 and more.
FIT_RESIDUAL = 1.2
FIT_RESIDUAL_PER_DETAIL = 0.03
MIN_DETAIL = 0.5  # RMS grey levels of the fine to coarse detail of both pictures: less is a bare gradient
BASE_RESIDUAL = 4.0  # grey levels (RMS) of the smooth base after the gain fit ...
BASE_RESIDUAL_PER_DETAIL = 0.2  # ... plus this share of the detail's RMS
CHROMA_TOLERANCE = 8.0  # Cr/Cb levels: difference of the means, and RMS difference of the structure
SATURATED = 250.0  # grey levels at which a brightened copy clips: left out of the comparison


@dataclass(frozen=True)
class DenseMatch:
    correlation: float  # of the detail bands over the overlap
    residual: float  # largest band residual, grey levels
    overlap: float
    rotation_deg: float
    scale: float
    gain: float


def _blur(a: Image32, sigma: float) -> Image32:
    if sigma <= 0:
        return a
    return np.asarray(cv2.GaussianBlur(a, (0, 0), sigma), dtype=np.float32)


def _similarity(
    scale: float, degrees: float, new_centre: tuple[float, float], old_centre: tuple[float, float]
) -> NDArray[np.float32]:
    a = math.radians(degrees)
    c, s = scale * math.cos(a), scale * math.sin(a)
    m = np.array([[c, -s, 0.0], [s, c, 0.0]], dtype=np.float32)
    m[:, 2] = np.array(old_centre, np.float32) - m[:, :2] @ np.array(new_centre, np.float32)
    return m


def _aligned(old: Image32, matrix: NDArray[np.float32], size: tuple[int, int]) -> Image32:
    """`old` resampled into the new picture's frame (`matrix` maps new coordinates to old ones)."""
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return np.asarray(cv2.warpAffine(old, matrix, size, flags=flags, borderValue=0.0), dtype=np.float32)


@functools.cache
def _grid(h: int, w: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Row and column coordinates of every pixel of an h x w picture (read-only)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def _inside(
    matrix: NDArray[np.float32], new_shape: tuple[int, int], old_shape: tuple[int, int], margin: int = 1
) -> NDArray[np.bool_]:
    """New-frame pixels at least `margin` pixels inside the new picture whose old counterpart lies at least
    as far inside the old one (edge pixels of a thumbnail average a part of a cell; interpolation there
    reads outside)."""
    nh, nw = new_shape
    oh, ow = old_shape
    ys, xs = _grid(nh, nw)
    ox = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    oy = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    inside = (ox >= margin) & (ox <= ow - 1 - margin) & (oy >= margin) & (oy <= oh - 1 - margin)
    inside &= (xs >= margin) & (xs <= nw - 1 - margin) & (ys >= margin) & (ys <= nh - 1 - margin)
    return np.asarray(inside)


def _ncc(a: Image32, b: Image32) -> float:
    a = a - a.mean()
    b = b - b.mean()
    norm = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / norm if norm > 0 else 0.0


def _shifted(
    soft_new: Image32, soft_old: Image32, scale: float, degrees: float, window: Image32
) -> tuple[float, NDArray[np.float32]]:
    """The similarity of `scale` and `degrees` (new -> old coordinates) with its shift found by phase
    correlation, and the correlation of the smoothed thumbnails under it (-2 if they hardly overlap)."""
    nh, nw = soft_new.shape
    oh, ow = soft_old.shape
    m = _similarity(scale, degrees, ((nw - 1) / 2, (nh - 1) / 2), ((ow - 1) / 2, (oh - 1) / 2))
    warped = _aligned(soft_old, m, (nw, nh))
    # phaseCorrelate windows its inputs in place: it gets a copy of the new thumbnail.
    (dx, dy), _ = cv2.phaseCorrelate(soft_new.copy(), warped, window)
    best: tuple[float, NDArray[np.float32]] = (-2.0, m)
    for shift in ((dx, dy), (-dx, -dy), (0.0, 0.0)):
        shifted = m.copy()
        shifted[:, 2] += m[:, :2] @ np.array(shift, np.float32)
        inside = _inside(shifted, (nh, nw), (oh, ow))
        if inside.mean() < MIN_OVERLAP:
            continue
        score = _ncc(soft_new[inside], _aligned(soft_old, shifted, (nw, nh))[inside])
        if score > best[0]:
            best = (score, shifted)
    return best


def _search(new: Image32, old: Image32) -> tuple[NDArray[np.float32], float]:
    """The similarity (new -> old coordinates) under which the smoothed thumbnails agree best, and how well:
    a grid of turns and scales, then a finer one around the best; shifts by phase correlation."""
    nh, nw = new.shape
    window = np.asarray(cv2.createHanningWindow((nw, nh), cv2.CV_32F), dtype=np.float32)
    # Judged on the detail (what tells one sky from another), not on the gradient every sky shares.
    soft_new, soft_old = _blur(new, 1.0) - _blur(new, 5.0), _blur(old, 1.0) - _blur(old, 5.0)
    tried: dict[tuple[float, float], tuple[float, NDArray[np.float32]]] = {}

    def at(scale: float, degrees: float) -> tuple[float, NDArray[np.float32]]:
        key = (round(scale, 4), round(degrees, 3))
        if key not in tried:
            tried[key] = _shifted(soft_new, soft_old, scale, degrees, window)
        return tried[key]

    best = max(((d, s) for d in TURNS_DEG for s in SCALES), key=lambda p: at(p[1], p[0])[0])
    degrees, scale = best
    if at(scale, degrees)[0] < MIN_SEARCH_CORRELATION:
        return at(scale, degrees)[1], at(scale, degrees)[0]  # nothing lines up: not worth refining
    for step_deg, step_scale in ((1.5, 0.03), (0.75, 0.015), (0.35, 0.007)):
        candidates = [
            (degrees + dd * step_deg, scale * (1 + ds * step_scale)) for dd in (-1, 0, 1) for ds in (-1, 0, 1)
        ]
        degrees, scale = max(candidates, key=lambda p: at(p[1], p[0])[0])
    score, matrix = at(scale, degrees)
    # ECC from there, on the detail too: finer than the grid, and free to absorb the pixel or so by which
    # the two thumbnails' proportions differ after rounding. Kept only if it agrees better and stays a
    # similarity. The mask marks the valid pixels of the input picture (the old one, which ECC warps): with
    # a mask the new one's size, OpenCV refuses every pair of thumbnails of different sizes (every crop).
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-4)
    everywhere = np.ones(soft_old.shape, np.uint8)
    try:
        _, found = cv2.findTransformECC(
            soft_new, soft_old, matrix.copy(), cv2.MOTION_AFFINE, criteria, everywhere, 1
        )
    except cv2.error:
        return matrix, score
    warp = np.asarray(found, dtype=np.float32)
    inside = _inside(warp, (nh, nw), soft_old.shape)
    if _decompose(warp)[2] <= MAX_ANISOTROPY and inside.mean() >= MIN_OVERLAP:
        refined = _ncc(soft_new[inside], _aligned(soft_old, warp, (nw, nh))[inside])
        if refined > score:
            return warp, refined
    return matrix, score


def _decompose(m: NDArray[np.float32]) -> tuple[float, float, float]:
    """(scale, rotation in degrees, anisotropy) of the linear part of an affine map."""
    a = m[:, :2].astype(np.float64)
    sx, sy = math.hypot(a[0, 0], a[1, 0]), math.hypot(a[0, 1], a[1, 1])
    rotation = math.degrees(math.atan2(a[1, 0], a[0, 0]))
    shear = abs(a[0, 0] * a[0, 1] + a[1, 0] * a[1, 1]) / max(1e-9, sx * sy)
    return math.sqrt(abs(np.linalg.det(a))), rotation, max(abs(sx / sy - 1), shear)


def _bands(a: Image32) -> list[Image32]:
    """Fine, middle and coarse detail (differences of Gaussians) and the base (BASE_SIGMA blur)."""
    levels = [_blur(a, s) for s in (0.0, 1.0, 2.0, 4.0)]
    return [levels[i] - levels[i + 1] for i in range(3)] + [levels[3]]


@functools.cache
def _surface(h: int, w: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The design matrix of a quadratic surface over an h x w picture, and its pseudo-inverse."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = (xs / max(1, w - 1)) * 2 - 1, (ys / max(1, h - 1)) * 2 - 1
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    return design, np.linalg.pinv(design)


def _detrended(a: Image32) -> Image32:
    """`a` less the quadratic surface closest to it: the smooth light every sky or wall has, which would
    otherwise leave detail at the picture's edges (where a blur meets the border) that any two share."""
    design, inverse = _surface(*a.shape)
    flat = a.astype(np.float64).ravel()
    return (flat - design @ (inverse @ flat)).reshape(a.shape).astype(np.float32)


def match(
    new_thumb: Image32,
    old_thumb: Image32,
    new_chroma: Image32 | None,
    old_chroma: Image32 | None,
) -> DenseMatch | None:
    """Whether two grey thumbnails (and their chroma, when both have one) show the same picture."""
    return assess(new_thumb, old_thumb, new_chroma, old_chroma)[0]


def assess(
    new_thumb: Image32,
    old_thumb: Image32,
    new_chroma: Image32 | None,
    old_chroma: Image32 | None,
) -> tuple[DenseMatch | None, str]:
    """`match` with the reason of a refusal (for bench/reuse_quality.py)."""
    nh, nw = new_thumb.shape
    oh, ow = old_thumb.shape
    if min(nh, nw, oh, ow) < 16:
        return None, "small"
    matrix, _ = _search(new_thumb, old_thumb)
    scale, rotation, anisotropy = _decompose(matrix)
    if (
        abs(rotation) > MAX_ROTATION_DEG
        or anisotropy > MAX_ANISOTROPY
        or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]
    ):
        return None, f"geometry s={scale:.2f} r={rotation:.1f} an={anisotropy:.3f}"
    inside = _inside(matrix, (nh, nw), (oh, ow))
    seen_by_old = cv2.warpAffine(np.ones((nh, nw), np.uint8), matrix, (ow, oh), flags=cv2.INTER_NEAREST)
    overlap = min(float(inside.mean()), float(seen_by_old.mean()))
    aligned = _aligned(old_thumb, matrix, (nw, nh))
    # Compared away from either picture's edge, where the blurs of the bands meet the border.
    usable = (
        _inside(matrix, (nh, nw), (oh, ow), margin=EDGE_MARGIN)
        & (new_thumb < SATURATED)
        & (aligned < SATURATED)
    )
    if overlap < MIN_OVERLAP or usable.sum() < MIN_USABLE * nw * nh:
        return None, f"overlap {overlap:.2f} usable {usable.mean():.2f}"
    # Gain and offset: a brightened or darkened copy.
    x, y = aligned[usable].astype(np.float64), new_thumb[usable].astype(np.float64)
    vx = float(x.var())
    gain = float(((x - x.mean()) * (y - y.mean())).mean()) / vx if vx > 1e-6 else 1.0
    offset = float(y.mean() - gain * x.mean())
    # The bands of each picture in its own frame (the old one's then aligned), without its smooth light.
    new_bands = _bands(_detrended(new_thumb))
    old_bands = [_aligned(b, matrix, (nw, nh)) * gain for b in _bands(_detrended(old_thumb))]
    new_base = _blur(new_thumb, BASE_SIGMA)
    old_base = _aligned(_blur(old_thumb, BASE_SIGMA), matrix, (nw, nh)) * gain + offset
    residuals = [
        float(np.sqrt(np.mean((a[usable] - b[usable]) ** 2)))
        for a, b in zip([*new_bands[:3], new_base], [*old_bands[:3], old_base], strict=True)
    ]
    # The smooth part of the difference of the two pictures in the new one's frame, once the part that a
    # small affine displacement of the new picture explains (first order: displacement . gradient) is
    # fitted away, blurred within the compared area only (a normalised convolution: no edge of either
    # picture leaks into it).
    difference = new_thumb - (aligned * gain + offset)
    soft = _blur(new_thumb, 1.0)
    gx = cv2.Sobel(soft, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    gy = cv2.Sobel(soft, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    ys, xs = _grid(nh, nw)
    u, v = xs / max(1, nw - 1) * 2 - 1, ys / max(1, nh - 1) * 2 - 1
    terms = np.stack([gx, gy, u * gx, v * gx, u * gy, v * gy, np.ones_like(gx)], axis=-1)[usable]
    coefficients = _least_squares(terms, difference[usable])
    left = np.zeros_like(difference)
    left[usable] = difference[usable] - (terms * coefficients).sum(axis=1)
    weight = usable.astype(np.float32)
    smooth_left = _blur(left, BASE_SIGMA)[usable] / np.maximum(_blur(weight, BASE_SIGMA)[usable], 1e-3)
    fit = float(np.sqrt(np.mean(smooth_left**2)))
    detail_new = (new_bands[0] + new_bands[1] + new_bands[2])[usable]
    detail_old = (old_bands[0] + old_bands[1] + old_bands[2])[usable]
    detail = min(float(detail_new.std()), float(detail_old.std()))
    correlation = _ncc(detail_new, detail_old)
    middle = _ncc((new_bands[1] + new_bands[2])[usable], (old_bands[1] + old_bands[2])[usable])
    chroma = (
        _chroma_disagreement(new_chroma, old_chroma, matrix, (nw, nh), (ow, oh))
        if new_chroma is not None and old_chroma is not None
        else (0.0, 0.0)
    )
    figures = (
        f"gain {gain:.2f} bands {' '.join(f'{r:.2f}' for r in residuals)} detail {detail:.2f} "
        f"corr {correlation:.2f} mid {middle:.3f} chroma {chroma[0]:.1f}/{chroma[1]:.1f} fit {fit:.2f}"
    )
    if (
        not GAIN_RANGE[0] <= gain <= GAIN_RANGE[1]
        or detail < MIN_DETAIL
        or middle < MIN_CORRELATION
        or fit > FIT_RESIDUAL + FIT_RESIDUAL_PER_DETAIL * detail
        or residuals[3] > BASE_RESIDUAL + BASE_RESIDUAL_PER_DETAIL * detail
        or max(chroma) > CHROMA_TOLERANCE
    ):
        return None, figures
    return DenseMatch(
        correlation=middle,
        residual=max(residuals[:3]),
        overlap=overlap,
        rotation_deg=rotation,
        scale=scale,
        gain=gain,
    ), figures


def _least_squares(terms: NDArray[np.float32], target: NDArray[np.float32]) -> NDArray[np.float32]:
    """The coefficients of the columns of `terms` (n x k, k small) closest to `target` in least squares.

    By the normal equations, summed with einsum and solved by hand: numpy's LAPACK and BLAS, and OpenCV's
    solver built on them, start threads of their own that spin on the service's worker threads, costing
    more CPU than the whole comparison (measured: system time tripled the dense path's CPU).
    """
    t = terms.astype(np.float64)
    normal = np.einsum("ij,ik->jk", t, t)
    rhs = np.einsum("ij,i->j", t, target.astype(np.float64))
    k = len(rhs)
    a = [[float(normal[r, c]) for c in range(k)] + [float(rhs[r])] for r in range(k)]
    ridge = 1e-9 * (1.0 + sum(a[r][r] for r in range(k)))  # a flat picture has no gradient to fit
    for r in range(k):
        a[r][r] += ridge
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, k):
            factor = a[r][col] / a[col][col]
            for c in range(col, k + 1):
                a[r][c] -= factor * a[col][c]
    x = [0.0] * k
    for r in reversed(range(k)):
        x[r] = (a[r][k] - sum(a[r][c] * x[c] for c in range(r + 1, k))) / a[r][r]
    return np.array(x, dtype=np.float32)


def _chroma_disagreement(
    new: Image32,
    old: Image32,
    matrix: NDArray[np.float32],
    new_thumb_size: tuple[int, int],
    old_thumb_size: tuple[int, int],
) -> tuple[float, float]:
    """How far Cr and Cb (h x w x 2, at their own smaller size) differ once aligned like the grey
    thumbnails: (largest difference of their means, largest RMS difference of their structure), levels.

    A brightened copy stretches chroma away from grey (128) by the factor it stretched the grey values,
    so the old chroma is stretched to the new one's spread about 128 first.
    """
    ch, cw = new.shape[:2]
    oh, ow = old.shape[:2]
    to_new, to_old = cw / new_thumb_size[0], ow / old_thumb_size[0]
    m = np.empty((2, 3), np.float32)
    m[:, :2] = matrix[:, :2] * (to_old / to_new)
    m[:, 2] = matrix[:, 2] * to_old
    inside = _inside(m, (ch, cw), (oh, ow))
    if inside.sum() < 16:
        return 99.0, 99.0
    worst_mean = worst_structure = 0.0
    for c in range(2):
        a = new[:, :, c][inside] - 128.0
        b = _aligned(np.ascontiguousarray(old[:, :, c]), m, (cw, ch))[inside] - 128.0
        stretch = float(np.clip((abs(float(a.mean())) + 2) / (abs(float(b.mean())) + 2), 0.8, 1.25))
        b = b * stretch
        worst_mean = max(worst_mean, abs(float(a.mean() - b.mean())))
        worst_structure = max(
            worst_structure, float(np.sqrt(np.mean(((a - a.mean()) - (b - b.mean())) ** 2)))
        )
    return worst_mean, worst_structure
