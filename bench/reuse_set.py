"""The reuse evaluation set: real pictures that packages ship, smooth pictures derived from them or drawn,
and ten kinds of reused copy of each. Built reproducibly into a cache folder, never committed.

    uv run python -m bench.reuse_set [--dir DIR] [--workers 2]

DIR defaults to $HUANZHI_REUSE_SET or ~/.cache/huanzhi-reuse-set. The sources are Debian packages fetched
with `apt-get download` (run `apt-get update` once first on a fresh machine) and unpacked with
`dpkg-deb -x` into DIR/debs; nothing is installed:

- `python3-skimage` (scikit-image 0.19 sample data, `skimage/data`): astronaut, camera, coffee, chelsea,
  rocket, brick, gravel, ... Each picture's licence is in the docstring of its loader in
  `skimage/data/_fetchers.py`: CC0 or public domain (NASA, SpaceX, the photographers' dedications);
  scikit-image itself is BSD-3-Clause (the package's `copyright` file).
- `opencv-doc` (OpenCV 4.6 samples, `examples/data`, `examples/text`, ...): fruits, baboon, building,
  home, messi5, ... shipped with OpenCV's samples under the terms in the package's `copyright` file
  (BSD-3-Clause / Apache-2.0 for OpenCV; several classic test pictures, e.g. baboon and fruits from the
  USC-SIPI collection, are distributed for research and testing). Used here only to measure, never
  redistributed: the set is built on each machine and not committed.

Desktop-wallpaper packages are NOT used: they are kept apart as a held-out check.

Pictures (`manifest.json`, one entry per distinct picture, with its `source` family and texture `class`):

- `photo`: each real photograph, long edge scaled to 1600, stored as a camera JPEG (q92);
- derived from each photograph (same source family, so never counted as a *different* picture of it):
  `blur` (a heavy Gaussian blur: a shaky or out-of-focus shot), `fog` (the photograph under 65-80 % haze
  with a soft gradient), `smooth-crop` (the least textured 3/10 x 3/10 window of the photograph whose
  detail reaches DETAIL_FLOOR, enlarged: a patch of sky, wall or road);
- `featureless`, apart: where the least textured window of a photograph falls under DETAIL_FLOOR, that
  window too, and a look-alike of it (`featureless-twin`, its own source, the same family): the same colour
  and light with other faint detail of the same spectrum. A copy of a featureless picture keeps nothing
  that tells it from such a plain patch, so these are reported apart and their look-alike pairs are
  checked for false alarms like the drawn families';
- drawn (each its own source): `sky` (a gradient with faint clouds), `wall` (plain paint under uneven
  light, with faint plaster grain), `gradient`, `stripes` (soft, low contrast), `shapes` (a few big soft
  blobs). Every drawn kind comes in look-alike families (same palette and layout, other random detail),
  so two skies or two white walls are the hardest different pairs there are.

Copies (`copies/`): each picture reused in the ten ways of KINDS, parameters drawn from its seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from services.media.reuse import dense
from services.media.reuse.features import THUMB_EDGE
from tests.media import photos

DEBS = ("python3-skimage", "opencv-doc")
SKIMAGE = "usr/lib/python3/dist-packages/skimage/data"
OPENCV = "usr/share/doc/opencv-doc/examples"

# Real photographs (or scans of real things). Left out: near-duplicate frames of the same scene (stereo
# right views, the second optical-flow frame, leuvenB, graf3, aero3, ela_modified, the chessboard series),
# renders, drawings and charts.
PHOTOGRAPHS: tuple[str, ...] = (
    *(
        f"{SKIMAGE}/{name}"
        for name in (
            "astronaut.png",
            "brick.png",
            "camera.png",
            "cell.png",
            "chelsea.png",
            "clock_motion.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "gravel.png",
            "hubble_deep_field.jpg",
            "ihc.png",
            "moon.png",
            "motorcycle_left.png",
            "page.png",
            "retina.jpg",
            "rocket.jpg",
        )
    ),
    *(
        f"{OPENCV}/{name}"
        for name in (
            "alphamat/input_images/plant.jpg",
            "data/aero1.jpg",
            "data/aloeL.jpg",
            "data/apple.jpg",
            "data/baboon.jpg",
            "data/basketball1.png",
            "data/board.jpg",
            "data/box_in_scene.png",
            "data/building.jpg",
            "data/butterfly.jpg",
            "data/ela_original.jpg",
            "data/fruits.jpg",
            "data/graf1.png",
            "data/home.jpg",
            "data/left.jpg",
            "data/left01.jpg",
            "data/leuvenA.jpg",
            "data/licenseplate_motion.jpg",
            "data/messi5.jpg",
            "data/orange.jpg",
            "data/pca_test1.jpg",
            "data/rubberwhale1.png",
            "data/smarties.png",
            "data/squirrel_cls.jpg",
            "data/starry_night.jpg",
            "data/stuff.jpg",
            "data/sudoku.png",
            "data/text_defocus.jpg",
            "data/text_motion.jpg",
            "hfs/data/000.jpg",
            "text/scenetext01.jpg",
            "text/scenetext02.jpg",
            "text/scenetext03.jpg",
            "text/scenetext04.jpg",
            "text/scenetext05.jpg",
            "text/scenetext06.jpg",
            "ximgproc/stanford.png",
        )
    ),
)

DRAWN: dict[str, tuple[int, int]] = {  # kind: (families, pictures per family)
    "sky": (5, 4),
    "wall": (5, 4),
    "gradient": (3, 3),
    "stripes": (3, 3),
    "shapes": (3, 3),
}
SMOOTH_CLASSES = ("blur", "fog", "smooth-crop", *DRAWN)
# Pictures without detail to tell a copy from another plain patch of that colour (DETAIL_FLOOR): reported
# apart, and not counted in the recall the target applies to.
FEATURELESS_CLASSES = ("featureless", "featureless-twin")
LONG_EDGE = 1600


def _turned(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    return photos.jpeg(photos.rotate(im, (1 if rng.random() < 0.5 else -1) * 3.0, fill=False), 90)


def _side(rng: np.random.Generator) -> str:
    return str(rng.choice(["left", "right", "top", "bottom"]))


def _screenshot(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    # Shown at the screen's width first (photos.screenshot rounds some proportions 1 px too wide).
    im = im.resize((1080, round(im.height * 1080 / im.width)), Image.Resampling.BILINEAR)
    return photos.png(
        photos.screenshot(im, chrome=True, dark=bool(rng.random() < 0.5), seed=int(rng.integers(1 << 30)))
    )


def _chain(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    cropped = photos.crop_side(im, _side(rng), float(rng.uniform(0.05, 0.10)))
    return photos.wechat(photos.brightness(cropped, 1.1))


# The ten kinds of reuse (name: transform of the stored original, with its random parameters).
KINDS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "q60": lambda im, rng: photos.jpeg(im, 60),
    "wechat": lambda im, rng: photos.wechat(im),
    "half": lambda im, rng: photos.jpeg(photos.resized(im, 0.5), 85),
    "crop5": lambda im, rng: photos.jpeg(photos.crop_edges(im, 0.05), 90),
    "crop10-side": lambda im, rng: photos.jpeg(photos.crop_side(im, _side(rng), 0.10), 90),
    "brighter": lambda im, rng: photos.jpeg(photos.brightness(im, 1.15), 90),
    "screenshot": _screenshot,
    "turn3": _turned,
    "mirror": lambda im, rng: photos.jpeg(photos.mirror(im), 90),
    "chain": _chain,
}


@dataclass(frozen=True)
class Picture:
    name: str
    source: str  # pictures of one source are never counted as different pictures of each other
    texture: str  # photo, blur, fog, smooth-crop, or a drawn kind
    family: str  # look-alike family (drawn kinds); "" otherwise
    origin: str  # where the pixels come from


def default_dir() -> Path:
    return Path(os.environ.get("HUANZHI_REUSE_SET") or Path.home() / ".cache" / "huanzhi-reuse-set")


def fetch(root: Path) -> Path:
    """The unpacked Debian packages under root/debs (fetched once)."""
    unpacked = root / "debs"
    if (unpacked / SKIMAGE).is_dir() and (unpacked / OPENCV).is_dir():
        return unpacked
    unpacked.mkdir(parents=True, exist_ok=True)  # dpkg-deb -x makes the last folder only
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *DEBS], cwd=tmp, check=True, capture_output=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    return unpacked


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def _to_long_edge(im: Image.Image, edge: int = LONG_EDGE) -> Image.Image:
    scale = edge / max(im.size)
    size = (round(im.width * scale), round(im.height * scale))
    return im.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def _load(path: Path) -> Image.Image:
    with Image.open(path) as im:
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            back = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(back, im)
        return im.convert("RGB")


def _blur(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(im, dtype=np.float32)
    sigma = float(rng.uniform(0.012, 0.025)) * max(im.size)
    out = cv2.GaussianBlur(a, (0, 0), sigma)
    return Image.fromarray(_with_grain(out, rng))


def _fog(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(im, dtype=np.float32)
    h = a.shape[0]
    haze = float(rng.uniform(0.65, 0.8))
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    density = np.clip(haze + 0.15 * (0.5 - ramp), 0, 0.95)  # denser towards the top
    fog_colour = np.array(rng.uniform(200, 240, 3), dtype=np.float32)
    out = a * (1 - density) + fog_colour * density
    return Image.fromarray(_with_grain(out, rng))


# The least detail a smooth crop must keep, as the dense path measures it (`thumb_detail`: RMS grey levels
# of the fine to coarse bands of the 64 px thumbnail, its smooth light taken out, over the part every copy
# keeps). Rounding to whole grey levels alone leaves 0.29 there, and copying (re-encoding, resizing) about
# as much again, so under ~1 level what a copy keeps of its original's detail is largely that noise. On
# this set the floor sits in a gap: the four least textured windows under it measure 0.00-0.71, the
# windows chosen above it 1.09 and more, and the least textured windows of the 50 other photographs 1.13
# and more (whole thumbnails: 0.29-0.94 against 1.2 and more for every other picture of the set).
DETAIL_FLOOR = 1.0
INTERIOR = 0.1  # a copy cropped 10 % off one side keeps the rest


def thumb_detail(im: Image.Image) -> float:
    """The detail the dense path has to go on in `im` and in any copy of it: RMS grey levels of its 64 px
    thumbnail's fine to coarse bands, once the quadratic surface closest to it (its smooth light) is taken
    out, over the part every kind of copy keeps and the comparison uses (INTERIOR of each dimension in from
    every edge, beyond the dense path's edge margin); detail only along an edge of the window is cropped
    off or left out by the copies and does not count."""
    grey = np.asarray(im.convert("L"), dtype=np.float32)
    h, w = grey.shape
    scale = THUMB_EDGE / max(w, h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    thumb = np.asarray(cv2.resize(grey, (tw, th), interpolation=cv2.INTER_AREA), dtype=np.float32)
    bands = dense._bands(dense._detrended(thumb))
    detail = bands[0] + bands[1] + bands[2]
    my, mx = dense.EDGE_MARGIN + round(INTERIOR * th), dense.EDGE_MARGIN + round(INTERIOR * tw)
    return float(detail[my : th - my, mx : tw - mx].std())


def _windows(im: Image.Image) -> list[tuple[int, int, int, int]]:
    """The 3/10 x 3/10 windows of the photograph on a 40 x 40 grid, least textured first (Laplacian energy)."""
    grey = np.asarray(im.convert("L"), dtype=np.float32)
    h, w = grey.shape
    cw, ch = round(w * 0.3), round(h * 0.3)
    energy = np.abs(cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 1.5), cv2.CV_32F))
    integral = cv2.integral(energy)
    scored: list[tuple[float, tuple[int, int, int, int]]] = []
    for y in range(0, h - ch + 1, max(1, h // 40)):
        for x in range(0, w - cw + 1, max(1, w // 40)):
            s = integral[y + ch, x + cw] - integral[y, x + cw] - integral[y + ch, x] + integral[y, x]
            scored.append((float(s), (x, y, x + cw, y + ch)))
    scored.sort(key=lambda item: item[0])
    return [box for _, box in scored]


def _smooth_crop(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The least textured window (3/10 of each dimension) of the photograph whose detail reaches
    DETAIL_FLOOR, enlarged: a patch of sky, wall or road."""
    windows = _windows(im)
    box = next((b for b in windows if thumb_detail(im.crop(b)) >= DETAIL_FLOOR), windows[-1])
    return Image.fromarray(_with_grain(np.asarray(_to_long_edge(im.crop(box)), dtype=np.float32), rng))


def _featureless_window(im: Image.Image) -> tuple[int, int, int, int] | None:
    """The least textured window of the photograph if its detail is under DETAIL_FLOOR, else None."""
    box = _windows(im)[0]
    return box if thumb_detail(im.crop(box)) < DETAIL_FLOOR else None


def _featureless(im: Image.Image, rng: np.random.Generator, twin: bool) -> Image.Image:
    """The least textured window, under DETAIL_FLOOR, enlarged (`featureless`); or its look-alike
    (`featureless-twin`): the same smooth light (colour, gradient, vignette) and the same spectrum of
    faint detail, with other detail (the detail's Fourier phases replaced by those of white noise)."""
    box = _featureless_window(im)
    assert box is not None
    a = np.asarray(_to_long_edge(im.crop(box)), dtype=np.float32)
    if twin:
        smooth = cv2.GaussianBlur(a, (0, 0), LONG_EDGE / 16)  # 4 px of the 64 px thumbnail
        faint = a - smooth
        noise = np.fft.rfft2(np.random.default_rng([_seed("twin"), *box]).normal(size=a.shape[:2]))
        phase = np.exp(1j * np.angle(noise))
        other = np.stack(
            [np.fft.irfft2(np.fft.rfft2(faint[:, :, c]) * phase, s=a.shape[:2]) for c in range(3)], axis=-1
        )
        a = smooth + other.astype(np.float32)
    return Image.fromarray(_with_grain(a, rng))


def _field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random field in about -1..1 with `cells` random values across."""
    grid = rng.normal(0, 1, (max(2, round(cells * h / w)), cells)).astype(np.float32)
    return np.asarray(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), dtype=np.float32)


def _with_grain(a: np.ndarray, rng: np.random.Generator, sigma: float = 1.5) -> np.ndarray:
    """Sensor grain and a light vignette, as every camera picture has; uint8."""
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    vignette = 1 - 0.08 * r2
    out = a * vignette[:, :, None] + rng.normal(0, sigma, a.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _drawn(kind: str, family: int, seed: int) -> Image.Image:
    """A drawn smooth picture of `kind`: `family` fixes palette and layout, `seed` the rest."""
    frng = np.random.default_rng([family, 31, len(kind)])
    rng = np.random.default_rng([seed, 37])
    w, h = LONG_EDGE, 1200
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    if kind == "sky":
        top = frng.uniform([40, 90, 160], [110, 150, 230]) + rng.normal(0, 6, 3)
        bottom = frng.uniform([170, 190, 210], [225, 230, 250]) + rng.normal(0, 6, 3)
        base = top * (1 - yy) + bottom * yy
        clouds = np.clip(_field(rng, h, w, 6) + 0.5 * _field(rng, h, w, 14), 0, None)[:, :, None]
        amount = float(frng.uniform(6, 22))
        a = base + amount * clouds * np.array([1.0, 1.0, 0.9])
    elif kind == "wall":
        paint = frng.uniform([190, 185, 175], [245, 240, 235])
        light = 1 + 0.12 * (xx - float(rng.uniform(0.2, 0.8))) + 0.06 * (yy - 0.5) * float(rng.normal())
        grain = 2.5 * _field(rng, h, w, 120)[:, :, None] + 3.0 * _field(rng, h, w, 25)[:, :, None]
        a = paint * light + grain
    elif kind == "gradient":
        c1, c2 = frng.uniform(30, 230, 3), frng.uniform(30, 230, 3)
        angle = float(frng.uniform(0, math.pi)) + float(rng.normal(0, 0.15))
        t = np.clip(0.5 + (xx - 0.5) * math.cos(angle) * 1.3 + (yy - 0.5) * math.sin(angle) * 1.3, 0, 1)
        a = c1 * (1 - t) + c2 * t + 4 * _field(rng, h, w, 8)[:, :, None]
    elif kind == "stripes":
        c1, c2 = frng.uniform(60, 200, 3), frng.uniform(60, 200, 3)
        period = float(frng.uniform(0.08, 0.25)) * float(rng.uniform(0.85, 1.15))
        angle = float(frng.uniform(0, math.pi)) + float(rng.normal(0, 0.2))
        phase = float(rng.uniform(0, 2 * math.pi))
        u = (xx * math.cos(angle) * w + yy * math.sin(angle) * h) / w
        t = 0.5 + 0.5 * np.sin(2 * math.pi * u / period + phase)
        a = c1 * (1 - t) + c2 * t + 3 * _field(rng, h, w, 10)[:, :, None]
    else:  # shapes
        back = frng.uniform(80, 220, 3)
        a = np.broadcast_to(back, (h, w, 3)).astype(np.float32).copy()
        for _ in range(int(frng.integers(2, 5))):
            mask = np.zeros((h, w), np.float32)
            centre = (int(rng.uniform(0.15, 0.85) * w), int(rng.uniform(0.15, 0.85) * h))
            axes = (int(rng.uniform(0.08, 0.25) * w), int(rng.uniform(0.08, 0.25) * h))
            cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            mask = cv2.GaussianBlur(mask, (0, 0), 40)[:, :, None]
            a = a * (1 - mask) + frng.uniform(40, 240, 3) * mask
    return Image.fromarray(_with_grain(a.astype(np.float32), rng))


def pictures(debs: Path) -> list[Picture]:
    out: list[Picture] = []
    for rel in PHOTOGRAPHS:
        stem = Path(rel).stem.replace("_", "-")
        for texture in ("photo", "blur", "fog", "smooth-crop"):
            out.append(Picture(f"{stem}.{texture}", stem, texture, "", rel))
        if _featureless_window(_to_long_edge(_load(debs / rel))) is not None:
            # Its look-alike is another picture (its own source): a plain patch of the same colour and light.
            family = f"featureless-{stem}"
            out.append(Picture(f"{stem}.featureless", stem, "featureless", family, rel))
            out.append(Picture(f"{stem}.featureless-twin", f"{stem}-twin", "featureless-twin", family, rel))
    for kind, (families, per_family) in DRAWN.items():
        for family in range(families):
            for k in range(per_family):
                name = f"{kind}{family}-{k}"
                out.append(Picture(name, name, kind, f"{kind}{family}", "drawn"))
    return out


def original(picture: Picture, debs: Path) -> Image.Image:
    rng = np.random.default_rng([_seed(picture.name), 1])
    if picture.origin == "drawn":
        family = int(picture.family[len(picture.texture) :])
        return _drawn(picture.texture, family, _seed(picture.name))
    photo = _to_long_edge(_load(debs / picture.origin))
    if picture.texture == "blur":
        return _blur(photo, rng)
    if picture.texture == "fog":
        return _fog(photo, rng)
    if picture.texture == "smooth-crop":
        return _smooth_crop(photo, rng)
    if picture.texture in FEATURELESS_CLASSES:
        return _featureless(photo, rng, twin=picture.texture == "featureless-twin")
    return photo


def _build_one(job: tuple[Picture, str]) -> str:
    picture, root = job
    folder = Path(root)
    first = folder / "originals" / f"{picture.name}.jpg"
    if first.exists() and all((folder / "copies" / f"{picture.name}__{k}.jpg").exists() for k in KINDS):
        return picture.name
    stored = photos.jpeg(original(picture, folder / "debs"), 92)
    stored.save(first, "JPEG", quality=92)
    for kind, reuse in KINDS.items():
        copy = reuse(stored, np.random.default_rng([_seed(picture.name), 2, len(kind)]))
        # Stored losslessly as what the reuser would upload (a screenshot is a PNG, the rest JPEG) ...
        # ... except that the copy already went through its own JPEG round trip: q100 adds no loss to speak
        # of and keeps the set small.
        copy.save(folder / "copies" / f"{picture.name}__{kind}.jpg", "JPEG", quality=100)
    return picture.name


def build(root: Path, workers: int = 2) -> list[Picture]:
    debs = fetch(root)
    (root / "originals").mkdir(parents=True, exist_ok=True)
    (root / "copies").mkdir(parents=True, exist_ok=True)
    listed = pictures(debs)
    with Pool(workers) as pool:
        for _ in pool.imap_unordered(_build_one, [(p, str(root)) for p in listed], chunksize=2):
            pass
    (root / "manifest.json").write_text(
        json.dumps({"kinds": list(KINDS), "pictures": [asdict(p) for p in listed]}, indent=1)
    )
    return listed


def load(root: Path | None = None) -> list[Picture]:
    """The pictures of a built set (build it first)."""
    folder = root or default_dir()
    data = json.loads((folder / "manifest.json").read_text())
    return [Picture(**p) for p in data["pictures"]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="remove the built pictures first")
    args = parser.parse_args()
    root = args.dir or default_dir()
    if args.fresh:
        shutil.rmtree(root / "originals", ignore_errors=True)
        shutil.rmtree(root / "copies", ignore_errors=True)
    listed = build(root, args.workers)
    counts: dict[str, int] = {}
    for p in listed:
        counts[p.texture] = counts.get(p.texture, 0) + 1
    print(f"{len(listed)} pictures x {len(KINDS)} kinds of reuse in {root}: {counts}")


if __name__ == "__main__":
    main()
