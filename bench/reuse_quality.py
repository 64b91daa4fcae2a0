"""Reuse detection on the photo-like fixtures: recall per kind of reuse, false alarms, timings.

    uv run python -m bench.reuse_quality [--originals 200] [--scenes 300] [--workers 2]

Positives: every original (a 1600x1200 camera JPEG) reused in every way of `tests.media.photos.REUSE_RANGES`,
with random parameters; "found" means the band lookup would return it (`lookup_distance`, the database's
probe modelled on one stored photo, <= CANDIDATE_MAX_DISTANCE); "flagged" means found and confirmed.
The reverse direction (the reused copy stored first, the original uploaded later) is measured too.

Negatives: all ordered pairs of distinct scenes, near-miss scenes (same palette and layout family), pairs of
different scenes showing the same printed sign, for the candidate stage; confirm() is then run on every
candidate pair and on a sample of the rest. "Same place re-shot" (the backdrop photographed again from a
slightly different viewpoint, in other light, with other objects) is reported apart: it is a different
photograph of the same place, which geometric matching can legitimately find similar.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from bench import reuse_set
from services.media.imaging.pipeline import process
from services.media.reuse import (
    CANDIDATE_MAX_DISTANCE,
    NEAR_DISTANCE,
    PROBE_GUARANTEE,
    PROBE_RADIUS,
    Fingerprint,
    candidate_distance,
    confirm,
    fingerprint,
    hash_agreement,
    lookup_distance,
    probe_keys,
)
from services.media.reuse import dense as reuse_dense
from services.media.reuse import features as reuse_features
from services.media.settings import MediaSettings
from tests.media import photos


@dataclass
class Positive:
    kind: str
    distance: int
    reverse_distance: int
    flagged: bool
    reverse_flagged: bool
    score: float


def _timed_fingerprint(image: object, times: list[float]) -> Fingerprint:
    t = time.perf_counter()
    fp = fingerprint(image)  # type: ignore[arg-type]
    times.append(time.perf_counter() - t)
    return fp


def positives_for(seed: int) -> tuple[list[Positive], list[float], list[float], list[int]]:
    """Every kind of reuse of original `seed`: distances both ways and confirmations."""
    fp_times: list[float] = []
    confirm_times: list[float] = []
    original = photos.camera(seed)
    stored = _timed_fingerprint(original, fp_times)
    out = []
    for k, kind in enumerate(photos.REUSE_RANGES):
        copy = photos.reuse(kind, original, seed * 100 + k)
        new = fingerprint(copy)
        d = lookup_distance(new, stored.index_hashes)
        rd = lookup_distance(stored, new.index_hashes)
        t = time.perf_counter()
        match = confirm(new, stored)
        confirm_times.append(time.perf_counter() - t)
        reverse = confirm(stored, new)
        out.append(
            Positive(
                kind,
                d,
                rd,
                d <= CANDIDATE_MAX_DISTANCE and match is not None,
                rd <= CANDIDATE_MAX_DISTANCE and reverse is not None,
                match.score if match else 0.0,
            )
        )
    return out, fp_times, confirm_times, [len(stored.features)]


@dataclass
class Scene:
    group: str  # "distinct", "near-miss:<family>", "sign:<sign>", "place:<seed>", "reshot:<seed>"
    fp: Fingerprint


def scenes_for(job: tuple[str, int]) -> Scene:
    kind, n = job
    if kind == "distinct":
        return Scene("distinct", fingerprint(photos.camera(10_000 + n)))
    if kind == "near-miss":
        family = n // 3
        image = photos.camera(30_000 + n, style=photos.style_of(20_000 + family))
        return Scene(f"near-miss:{family}", fingerprint(image))
    if kind == "sign":
        sign = n // 2
        fraction = 0.1 + 0.35 * ((sign * 5) % 8) / 7  # the sign covers 10-45 % of the picture
        image = photos.jpeg(
            photos.with_sign(photos.scene(40_000 + n), sign, place_seed=n, fraction=fraction), 92
        )
        return Scene(f"sign:{sign}", fingerprint(image))
    if kind == "place":
        return Scene(f"place:{n}", fingerprint(photos.camera(50_000 + n)))
    return Scene(f"reshot:{n}", fingerprint(photos.jpeg(photos.reshot(50_000 + n), 92)))


def _as_array(hashes: Sequence[int], width: int) -> np.ndarray:
    padded = list(hashes) + [hashes[0]] * (width - len(hashes))  # repeats do not change a minimum
    return np.array([h & (2**64 - 1) for h in padded], dtype=np.uint64)


def pair_distances(fps: list[Fingerprint]) -> np.ndarray:
    """candidate_distance for every ordered pair (row: the new photo, column: the stored one)."""
    q_width = max(len(f.query_hashes) for f in fps)
    i_width = max(len(f.index_hashes) for f in fps)
    queries = np.stack([_as_array(f.query_hashes, q_width) for f in fps])
    stored = np.stack([_as_array(f.index_hashes, i_width) for f in fps])
    out = np.empty((len(fps), len(fps)), dtype=np.int64)
    for a in range(len(fps)):
        x = queries[a][None, :, None] ^ stored[:, None, :]
        out[a] = np.bitwise_count(x).min(axis=(1, 2))
    np.fill_diagonal(out, 99)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--originals", type=int, default=200)
    parser.add_argument("--scenes", type=int, default=300, help="distinct scenes for all-pairs negatives")
    parser.add_argument("--families", type=int, default=40, help="near-miss families of 3 scenes")
    parser.add_argument("--signs", type=int, default=40, help="pairs of scenes sharing a printed sign")
    parser.add_argument("--places", type=int, default=40, help="places photographed twice")
    parser.add_argument("--confirm-sample", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--set",
        action="store_true",
        help="measure on the evaluation set of bench.reuse_set (real and smooth pictures) instead",
    )
    parser.add_argument("--set-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.set:
        evaluate_set(args.set_dir or reuse_set.default_dir(), args.workers)
        return
    started = time.perf_counter()

    with Pool(args.workers) as pool:
        results = pool.map(positives_for, range(args.originals), chunksize=1)
        jobs = (
            [("distinct", n) for n in range(args.scenes)]
            + [("near-miss", n) for n in range(3 * args.families)]
            + [("sign", n) for n in range(2 * args.signs)]
            + [("place", n) for n in range(args.places)]
            + [("reshot", n) for n in range(args.places)]
        )
        scenes = pool.map(scenes_for, jobs, chunksize=4)

    by_kind: dict[str, list[Positive]] = defaultdict(list)
    fp_times: list[float] = []
    confirm_times: list[float] = []
    sizes: list[int] = []
    for rows, ft, ct, sz in results:
        for row in rows:
            by_kind[row.kind].append(row)
        fp_times += ft
        confirm_times += ct
        sizes += sz

    print(
        f"Reuse detection on {args.originals} originals (1600x1200 camera JPEG) x {len(by_kind)} kinds of reuse"
    )
    print(
        f"found: the band lookup (radius {PROBE_RADIUS}, sure within {PROBE_GUARANTEE} bits) fetches a stored "
        f"hash within {CANDIDATE_MAX_DISTANCE} bits of a query hash (lookup_distance); flagged: found and "
        "confirmed.\nrev: the altered copy was stored first and the original is the new upload; "
        "dist: lookup_distance, both ways.\n"
    )
    header = (
        f"{'kind of reuse':34} {'found':>7} {'flagged':>8} {'rev found':>10} {'rev flagged':>12} "
        f"{'dist mean/max':>14} {'score p5':>9}"
    )
    print(header)
    print("-" * len(header))
    total = flagged = reverse = 0
    for kind, rows in by_kind.items():
        n = len(rows)
        found = sum(r.distance <= CANDIDATE_MAX_DISTANCE for r in rows)
        rev_found = sum(r.reverse_distance <= CANDIDATE_MAX_DISTANCE for r in rows)
        ok = sum(r.flagged for r in rows)
        rev = sum(r.reverse_flagged for r in rows)
        dists = [r.distance for r in rows] + [r.reverse_distance for r in rows]
        scores = sorted(r.score for r in rows)
        total += n
        flagged += ok
        reverse += rev
        print(
            f"{kind:34} {found / n:7.1%} {ok / n:8.1%} {rev_found / n:10.1%} {rev / n:12.1%} "
            f"{statistics.mean(dists):8.1f} / {max(dists):2d}   {scores[len(scores) // 20]:8.2f}"
        )
    print("-" * len(header))
    print(
        f"{'all kinds':34} {'':7} {flagged / total:8.2%} {'':10} {reverse / total:12.2%}   ({total} pairs each way)\n"
    )

    groups = [s.group for s in scenes]
    fps = [s.fp for s in scenes]
    different = [i for i, g in enumerate(groups) if not g.startswith(("place:", "reshot:"))]
    sub = [fps[i] for i in different]
    dist = pair_distances(sub)
    n = len(sub)
    pairs = n * (n - 1)
    candidates = [(a, b) for a, b in zip(*np.nonzero(dist <= CANDIDATE_MAX_DISTANCE), strict=True)]
    sub_groups = [groups[i] for i in different]
    same_family = [
        (a, b)
        for a in range(n)
        for b in range(n)
        if a != b and sub_groups[a] == sub_groups[b] and sub_groups[a] != "distinct"
    ]
    rng = random.Random(7)
    sample = [(a, b) for a, b in (rng.sample(range(n), 2) for _ in range(args.confirm_sample))]
    t_neg: list[float] = []

    def confirmed(pairs_: list[tuple[int, int]]) -> int:
        hits = 0
        for a, b in pairs_:
            t = time.perf_counter()
            hits += confirm(sub[a], sub[b]) is not None
            t_neg.append(time.perf_counter() - t)
        return hits

    cand_hits = confirmed(candidates)
    fam_hits = confirmed(same_family)
    sample_hits = confirmed(sample)
    near = [d for (a, b), d in zip(same_family, (dist[a, b] for a, b in same_family), strict=True)]
    print(
        f"Different photos: {n} scenes ({args.scenes} distinct, {args.families} near-miss families of 3 with one "
        f"palette and layout, {args.signs} pairs sharing a printed sign), {pairs} ordered pairs"
    )
    print(
        f"  candidate stage: {len(candidates)} pairs within {CANDIDATE_MAX_DISTANCE} bits "
        f"= {len(candidates) / pairs:.2e} per pair; smallest distance {int(dist.min())}, "
        f"1st percentile {np.percentile(dist[dist < 99], 1):.0f}"
    )
    print(
        f"  near-miss and shared-sign pairs: smallest distance {min(near)}, "
        f"within {CANDIDATE_MAX_DISTANCE}: {sum(d <= CANDIDATE_MAX_DISTANCE for d in near)} of {len(near)}"
    )
    print(
        f"  confirmed false alarms: {cand_hits} of {len(candidates)} candidates, "
        f"{fam_hits} of {len(same_family)} near-miss/shared-sign pairs (confirm run regardless of hashes), "
        f"{sample_hits} of {len(sample)} random pairs\n"
    )

    place = {g.split(":")[1]: fps[i] for i, g in enumerate(groups) if g.startswith("place:")}
    reshot = {g.split(":")[1]: fps[i] for i, g in enumerate(groups) if g.startswith("reshot:")}
    re_found = sum(
        candidate_distance(reshot[k], place[k].index_hashes) <= CANDIDATE_MAX_DISTANCE for k in place
    )
    re_conf = sum(confirm(reshot[k], place[k]) is not None for k in place)
    print(
        f"Same place re-shot (another photograph: viewpoint, light, objects changed), {len(place)} pairs: "
        f"{re_found} found by hashes, {re_conf} confirmed by features (not counted as reuse above)\n"
    )

    probes = [len(set(probe_keys_all(f))) for f in fps[:50]]
    ms = [t * 1000 for t in fp_times]
    cm = [t * 1000 for t in confirm_times]
    nm = [t * 1000 for t in t_neg]
    print("Costs (this machine, one core each)")
    print(
        f"  fingerprint(1600x1200): median {statistics.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"
    )
    print(
        f"  confirm(): median {statistics.median(cm):.2f} ms on a reuse pair, {statistics.median(nm):.2f} ms "
        f"on different photos (p95 {np.percentile(nm, 95):.2f})"
    )
    print(
        f"  features blob: mean {statistics.mean(sizes) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB; "
        f"hashes stored per photo: {statistics.mean(len(f.index_hashes) for f in fps):.1f}, "
        f"queried: {statistics.mean(len(f.query_hashes) for f in fps):.1f} "
        f"({statistics.median(probes):.0f} distinct band keys to look up)"
    )
    print(f"  bench wall time {time.perf_counter() - started:.0f} s with {args.workers} workers")


MAX_PIXELS = MediaSettings.model_fields["max_pixels"].default


@dataclass
class SetResult:
    picture: reuse_set.Picture
    keypoints: int
    original: Fingerprint
    copies: dict[str, Fingerprint]
    distance: dict[str, int]
    flagged: dict[str, bool]
    fp_seconds: float
    blob: int


def _fingerprint(path: Path) -> Fingerprint:
    """The fingerprint the service makes of an uploaded file (from its display copy)."""
    return process(path, max_pixels=MAX_PIXELS).fingerprint


def _set_one(job: tuple[reuse_set.Picture, str]) -> SetResult:
    picture, root = job
    folder = Path(root)
    t = time.process_time()
    stored = _fingerprint(folder / "originals" / f"{picture.name}.jpg")
    spent = time.process_time() - t
    copies: dict[str, Fingerprint] = {}
    distance: dict[str, int] = {}
    flagged: dict[str, bool] = {}
    for kind in reuse_set.KINDS:
        new = _fingerprint(folder / "copies" / f"{picture.name}__{kind}.jpg")
        d = lookup_distance(new, stored.index_hashes)
        copies[kind] = new
        distance[kind] = d
        flagged[kind] = d <= CANDIDATE_MAX_DISTANCE and confirm(new, stored) is not None
    keypoints = len(reuse_features.decode(stored.features).descriptors)
    return SetResult(picture, keypoints, stored, copies, distance, flagged, spent, len(stored.features))


def _confirm_pair(job: tuple[Fingerprint, Fingerprint]) -> bool:
    return confirm(job[0], job[1]) is not None


def _confirm_timed(job: tuple[Fingerprint, Fingerprint]) -> tuple[bool, float]:
    t = time.process_time()
    hit = confirm(job[0], job[1]) is not None
    return hit, time.process_time() - t


_FIGURE = re.compile(r"(detail|mid|fit) (-?[0-9.]+)")


def _dense_figures(job: tuple[Fingerprint, Fingerprint]) -> dict[str, float]:
    """What the detector makes of (new, old): hash distance, whether confirm() flags it, and the dense
    path's figures for the view (upright or mirrored) whose detail correlates best (-1 where it refuses
    before comparing)."""
    new, old = job
    stored = reuse_features.decode(old.features)
    out = {"distance": float(lookup_distance(new, old.index_hashes)), "flagged": 0.0, "mid": -1.0}
    out["flagged"] = float(confirm(new, old) is not None)
    for blob in (new.features, new.mirror_features):
        if not blob:
            continue
        view = reuse_features.decode(blob)
        _, figures = reuse_dense.assess(view.thumb, stored.thumb, view.chroma, stored.chroma)
        found = {k: float(v) for k, v in _FIGURE.findall(figures)}
        if found.get("mid", -1.0) > out["mid"]:
            out.update(found)
    return out


def _featureless_report(results: list[SetResult], workers: int) -> None:
    """Copies of each featureless picture against their own original and against its look-alike."""
    by_family: dict[str, dict[str, SetResult]] = defaultdict(dict)
    for r in results:
        if r.picture.texture in reuse_set.FEATURELESS_CLASSES:
            by_family[r.picture.family][r.picture.texture] = r
    jobs: list[tuple[Fingerprint, Fingerprint]] = []
    rows: list[tuple[str, str]] = []
    for members in by_family.values():
        if len(members) != 2:
            continue
        for own, other in (("featureless", "featureless-twin"), ("featureless-twin", "featureless")):
            for copy in members[own].copies.values():
                jobs += [(copy, members[own].original), (copy, members[other].original)]
            rows.append((members[own].picture.name, members[other].picture.name))
    if not jobs:
        return
    with Pool(workers) as pool:
        figures = pool.map(_dense_figures, jobs, chunksize=4)
    print(
        "Featureless pictures: each one's 10 copies against its own original and against its look-alike "
        "(medians; mid = the dense path's middle-band detail correlation, best view; fit = its smooth "
        "difference; -1: refused before comparing)"
    )
    print(
        f"{'copies of':34} {'detail':>6} {'dist own/other':>14} {'mid own/other':>15} "
        f"{'fit own/other':>15} {'flagged own/other':>17}"
    )
    k = len(reuse_set.KINDS)
    for i, (own, other) in enumerate(rows):
        block = figures[2 * k * i : 2 * k * (i + 1)]
        mine, theirs = block[0::2], block[1::2]

        def med(items: list[dict[str, float]], key: str) -> float:
            return statistics.median(f.get(key, -1.0) for f in items)

        detail = statistics.median(f.get("detail", 0.0) for f in mine)
        print(
            f"{own + ' vs ' + other.split('.')[-1]:34} {detail:6.2f} "
            f"{med(mine, 'distance'):6.0f} /{med(theirs, 'distance'):6.0f} "
            f"{med(mine, 'mid'):7.2f} /{med(theirs, 'mid'):6.2f} "
            f"{med(mine, 'fit'):7.2f} /{med(theirs, 'fit'):6.2f} "
            f"{sum(f['flagged'] for f in mine):8.0f} /{sum(f['flagged'] for f in theirs):7.0f}"
        )
    print()


FAR_LIMIT = MediaSettings.model_fields["reuse_far_candidates"].default


def _far_bound(results: list[SetResult]) -> None:
    """Apply the service's bound on candidates beyond NEAR_DISTANCE (6 bits; `reuse.for_confirm`) in an
    archive holding every picture's original: a copy found only beyond it stays flagged only if its
    original ranks among the first FAR_LIMIT such candidates. Competitors are the other pictures'
    originals within CANDIDATE_MAX_DISTANCE by candidate_distance (at most the lookup's distance:
    pessimistic), and a tie on (distance, agreement) counts as lost (the service breaks it by random
    photo id). Prints what it cost and what it saves; the copies it drops are marked not flagged."""
    originals = [r.original for r in results]
    sources = [r.picture.source for r in results]
    width = max(len(f.index_hashes) for f in originals)
    stored = np.stack([_as_array(f.index_hashes, width) for f in originals])
    far_counts: list[int] = []
    own_far: list[tuple[int, int, str]] = []  # a true copy beyond NEAR_DISTANCE: its agreement, rank, name
    honest_far: list[int] = []
    lost: list[str] = []
    for i, r in enumerate(results):
        for fp, kind in [(r.original, None), *((r.copies[k], k) for k in reuse_set.KINDS)]:
            queries = _as_array(fp.query_hashes, len(fp.query_hashes))
            d = np.bitwise_count(queries[None, :, None] ^ stored[:, None, :]).min(axis=(1, 2))
            keys = [
                (int(d[j]), hash_agreement(fp, originals[j].index_hashes))
                for j in np.nonzero((d > NEAR_DISTANCE) & (d <= CANDIDATE_MAX_DISTANCE))[0]
                if sources[j] != sources[i]
            ]
            far_counts.append(len(keys))
            honest_far += [a for _, a in keys]
            if kind is None or not NEAR_DISTANCE < r.distance[kind] <= CANDIDATE_MAX_DISTANCE:
                continue
            mine = (r.distance[kind], hash_agreement(fp, r.original.index_hashes))
            rank = sum(1 for k in keys if k <= mine)
            own_far.append((mine[1], rank, f"{r.picture.name}:{kind}"))
            if rank >= FAR_LIMIT and r.flagged[kind]:
                r.flagged[kind] = False
                lost.append(f"{r.picture.name}:{kind}")
    n = len(far_counts)
    met = sum(1 for c in far_counts if c)
    print(
        f"Candidates beyond {NEAR_DISTANCE} bits (up to {CANDIDATE_MAX_DISTANCE}), at most {FAR_LIMIT} "
        f"confirmed per upload (reuse_far_candidates): in this archive ({len(results)} originals) {met} of "
        f"{n} uploads ({met / n:.1%}) meet another picture's original there, {sum(far_counts)} in all (max "
        f"{max(far_counts)} for one upload); confirmed under the bound {sum(min(c, FAR_LIMIT) for c in far_counts)}"
    )
    if honest_far:
        q = np.percentile(honest_far, [0, 5, 50])
        print(
            f"  hash agreement (sum over stored hashes of the nearest query hash's distance; lower first) of "
            f"those: min {q[0]:.0f}, p5 {q[1]:.0f}, median {q[2]:.0f}"
        )
    print(
        f"  copies found only beyond {NEAR_DISTANCE} bits: {len(own_far)}, agreement, rank among the far "
        f"candidates (0 = first): {sorted(own_far)}; flagged before, dropped by the bound: {len(lost)} {lost}"
    )
    shares = {a: sum(1 for h in honest_far if h <= a) / max(1, len(honest_far)) for a, _, _ in own_far}
    print(
        "  share of those other pictures' originals agreeing at least as well as such a copy's own (what "
        f"it may lose to in a larger archive), by agreement: "
        f"{ {a: round(v, 4) for a, v in sorted(shares.items())} }\n"
    )


def evaluate_set(root: Path, workers: int) -> None:
    """Recall per kind of reuse and per texture class, false alarms over every pair of distinct pictures."""
    started = time.perf_counter()
    listed = reuse_set.load(root)
    with Pool(workers) as pool:
        results = pool.map(_set_one, [(p, str(root)) for p in listed], chunksize=1)
    kinds = list(reuse_set.KINDS)
    _far_bound(results)
    print(
        f"Evaluation set ({root.name}): {len(results)} distinct pictures x {len(kinds)} kinds of reuse; "
        f"found: lookup_distance <= {CANDIDATE_MAX_DISTANCE}; flagged: found and confirmed\n"
    )
    classes = sorted({r.picture.texture for r in results}, key=lambda c: (c != "photo", c))
    groups: dict[str, list[SetResult]] = {c: [r for r in results if r.picture.texture == c] for c in classes}
    apart = reuse_set.FEATURELESS_CLASSES
    groups["smooth (not photo)"] = [r for r in results if r.picture.texture not in ("photo", *apart)]
    groups["< 20 keypoints"] = [r for r in results if r.keypoints < 20 and r.picture.texture not in apart]
    groups["all but featureless"] = [r for r in results if r.picture.texture not in apart]
    groups["featureless (apart)"] = [r for r in results if r.picture.texture in apart]
    groups["all"] = results
    header = f"{'pictures':24} {'n':>4} " + " ".join(f"{k[:11]:>11}" for k in kinds) + f" {'all':>7}"
    print("flagged (found)")
    print(header)
    print("-" * len(header))
    for name, rows in groups.items():
        if not rows:
            continue
        cells = []
        for k in kinds:
            flagged = sum(r.flagged[k] for r in rows) / len(rows)
            found = sum(r.distance[k] <= CANDIDATE_MAX_DISTANCE for r in rows) / len(rows)
            cells.append(f"{flagged:5.1%} {found:4.0%}"[-11:].rjust(11))
        total = sum(r.flagged[k] for r in rows for k in kinds) / (len(rows) * len(kinds))
        print(f"{name:24} {len(rows):4d} " + " ".join(cells) + f" {total:7.1%}")
    misses = [(r, k) for r in results for k in kinds if not r.flagged[k]]
    unfound = [(r, k) for r, k in misses if r.distance[k] > CANDIDATE_MAX_DISTANCE]
    print(
        f"\nmisses: {len(misses)}, of which {len(unfound)} not found by the hashes and "
        f"{len(misses) - len(unfound)} found but not confirmed; by texture class (picture:kind:distance):"
    )
    for texture in classes:
        listed = [
            f"{r.picture.source}:{k}:{r.distance[k]}" for r, k in misses if r.picture.texture == texture
        ]
        if listed:
            print(f"  {texture} ({len(listed)}): {' '.join(listed)}")
    print()

    # Different pictures: every pair of distinct sources, originals and copies alike as the new upload
    # against each other picture's original (what one county holding all of them would compare).
    originals = [r.original for r in results]
    sources = [r.picture.source for r in results]
    news: list[tuple[int, Fingerprint]] = [(i, r.original) for i, r in enumerate(results)]
    news += [(i, fp) for i, r in enumerate(results) for fp in r.copies.values()]
    i_width = max(len(f.index_hashes) for f in originals)
    stored = np.stack([_as_array(f.index_hashes, i_width) for f in originals])
    candidates: list[tuple[int, int]] = []  # (index into news, index of the stored original)
    candidate_bits: list[int] = []
    pairs = 0
    for n, (owner, fp) in enumerate(news):
        queries = _as_array(fp.query_hashes, len(fp.query_hashes))
        d = np.bitwise_count(queries[None, :, None] ^ stored[:, None, :]).min(axis=(1, 2))
        for j in np.nonzero(d <= CANDIDATE_MAX_DISTANCE)[0]:
            if sources[j] != sources[owner]:
                candidates.append((n, int(j)))
                candidate_bits.append(int(d[j]))
        pairs += sum(1 for s in sources if s != sources[owner])
    families: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        if r.picture.family:
            families[r.picture.family].append(i)
    lookalike = [(a, b) for members in families.values() for a in members for b in members if a != b]
    # Every copy of a family member too, as the new upload against the other members' originals.
    look_jobs = [(originals[a], originals[b]) for a, b in lookalike]
    look_jobs += [(fp, originals[b]) for a, b in lookalike for fp in results[a].copies.values()]
    with Pool(workers) as pool:
        timed = pool.map(_confirm_timed, [(news[n][1], originals[j]) for n, j in candidates], chunksize=8)
        look_hits = pool.map(_confirm_pair, look_jobs, chunksize=8)
    cand_hits = [hit for hit, _ in timed]
    look_false = [
        (results[a].picture.name, results[b].picture.name)
        for (a, b), hit in zip(
            [*lookalike, *(p for p in lookalike for _ in reuse_set.KINDS)], look_hits, strict=True
        )
        if hit
    ]
    false_pairs = [
        (results[news[n][0]].picture.name, results[j].picture.name)
        for (n, j), hit in zip(candidates, cand_hits, strict=True)
        if hit
    ]
    distinct_pairs = len(results) * (len(results) - 1) // 2 - sum(
        1 for a in range(len(results)) for b in range(a) if sources[a] == sources[b]
    )
    print(
        f"Different pictures: {distinct_pairs} unordered pairs of distinct originals; {pairs} (upload, other "
        f"picture's original) pairs counting every copy as an upload"
    )
    by_bits = {b: candidate_bits.count(b) for b in sorted(set(candidate_bits))}
    textures = Counter(
        "/".join(sorted((results[news[n][0]].picture.texture, results[j].picture.texture)))
        for n, j in candidates
    )
    print(
        f"  candidates within {CANDIDATE_MAX_DISTANCE} bits: {len(candidates)} (by distance {by_bits}; "
        f"by texture classes {dict(textures.most_common())})"
    )
    print(f"  confirmed false alarms: {sum(cand_hits)} of {len(candidates)} candidates {false_pairs[:10]}")
    with_candidate = {n for n, _ in candidates}
    honest = sum(1 for n in with_candidate if n < len(results))
    spent = sorted(t * 1000 for _, t in timed)
    if spent:
        print(
            f"  cost: {honest} of {len(results)} originals ({honest / len(results):.1%}) and "
            f"{len(with_candidate)} of {len(news)} uploads ({len(with_candidate) / len(news):.1%}) meet "
            f"another picture's original as a candidate; confirm() on those pairs: CPU median "
            f"{statistics.median(spent):.1f} ms, p95 {np.percentile(spent, 95):.1f} ms, total {sum(spent):.0f} ms"
        )
    print(
        f"  look-alike pairs (one family: two skies, two walls, a featureless patch and its look-alike, ...), "
        f"confirm() run regardless of hashes: {sum(look_hits[: len(lookalike)])} of {len(lookalike)} "
        f"originals, {sum(look_hits[len(lookalike) :])} of {len(look_hits) - len(lookalike)} copies against "
        f"the other members' originals confirmed {look_false[:10]}\n"
    )
    _featureless_report(results, workers)
    ms = [r.fp_seconds * 1000 for r in results]
    blobs = [r.blob for r in results]
    print(
        f"Costs: upload image work (pipeline.process: decode, variants, fingerprint) of an original CPU median {statistics.median(ms):.1f} ms; features blob "
        f"mean {statistics.mean(blobs) / 1024:.1f} KiB, max {max(blobs) / 1024:.1f} KiB; "
        f"wall time {time.perf_counter() - started:.0f} s with {workers} workers"
    )


def probe_keys_all(fp: Fingerprint) -> list[tuple[int, int]]:
    return [key for h in fp.query_hashes for key in probe_keys(h, PROBE_RADIUS)]


if __name__ == "__main__":
    main()
