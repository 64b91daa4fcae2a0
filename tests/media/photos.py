"""Photo-like scenes and the ways a picture gets reused, for the reuse-detection tests and benchmark.

A scene is a sky-and-ground backdrop (smooth gradients plus multi-octave blurred noise, roughly the 1/f
spectrum of real photos) with textured objects on it: houses with windows, walls, bushes, rocks, bins,
poles. Everything is drawn from seeded generators, so a seed always gives the same picture. Flat synthetic
stripes are avoided on purpose: they hash and match unlike photos.

`Style` holds what two photos of "the same kind of place" share (palette, horizon, kinds of objects):
`scene(seed, style=style_of(s))` with different seeds gives honest near-miss pairs.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

Transform = Callable[[Image.Image], Image.Image]


@dataclass(frozen=True)
class Style:
    """What a family of scenes has in common: palette, horizon, how busy it is."""

    sky_top: tuple[float, float, float]
    sky_bottom: tuple[float, float, float]
    ground_near: tuple[float, float, float]
    ground_far: tuple[float, float, float]
    horizon: float  # fraction of the height
    tilt: float  # horizon slope, fraction of the height across the width
    object_colours: tuple[tuple[float, float, float], ...]
    objects: int
    flat_sky: bool  # an overcast, almost uniform sky (tests that border trimming leaves photos alone)


def _colour(rng: np.random.Generator, low: float, high: float) -> tuple[float, float, float]:
    c = rng.uniform(low, high, size=3)
    return (float(c[0]), float(c[1]), float(c[2]))


def style_of(seed: int) -> Style:
    """The style family `seed`: scenes drawn with it look like the same kind of place."""
    rng = np.random.default_rng([seed, 7])
    sky = _colour(rng, 120, 235)
    return Style(
        sky_top=sky,
        sky_bottom=tuple(min(255.0, v + rng.uniform(5, 40)) for v in sky),  # type: ignore[arg-type]
        ground_near=_colour(rng, 30, 130),
        ground_far=_colour(rng, 60, 170),
        horizon=float(rng.uniform(0.25, 0.6)),
        tilt=float(rng.uniform(-0.08, 0.08)),
        object_colours=tuple(_colour(rng, 20, 230) for _ in range(4)),
        objects=int(rng.integers(6, 14)),
        flat_sky=bool(rng.random() < 0.2),
    )


def _octaves(
    rng: np.random.Generator, width: int, height: int, first: int, last: int, falloff: float = 0.6
) -> np.ndarray:
    """Blurred noise: random grids with 2**k cells across for k in [first, last], each enlarged smoothly.

    Built coarse to fine like a Laplacian pyramid, so the cost is about one full-size enlargement.
    """
    last = max(first, min(last, int(math.log2(max(2, width)))))
    field: np.ndarray | None = None
    amplitude = 1.0
    for k in range(first, last + 1):
        cells_x = 2**k
        cells_y = max(2, round(cells_x * height / width))
        noise = amplitude * rng.standard_normal((cells_y, cells_x)).astype(np.float32)
        if field is not None:
            noise += cv2.resize(field, (cells_x, cells_y), interpolation=cv2.INTER_CUBIC)
        field = noise
        amplitude *= falloff
    assert field is not None
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)


def _backdrop(rng: np.random.Generator, style: Style, width: int, height: int) -> np.ndarray:
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    horizon = style.horizon + float(rng.uniform(-0.08, 0.08))
    line = horizon + style.tilt * (xs - 0.5) + 0.03 * _octaves(rng, width, 1, 2, 4)[0][None, :]
    ground = np.clip((ys - line) * 12.0 + 0.5, 0.0, 1.0)  # soft horizon edge
    depth = np.clip((ys - line) / np.maximum(1e-3, 1.0 - line), 0.0, 1.0)
    img = np.empty((height, width, 3), np.float32)
    luma = _octaves(rng, width, height, 1, 7)
    detail = _octaves(rng, width, height, 6, 9, falloff=0.8)
    sky_luma = _octaves(rng, width, height, 1, 4)
    for c in range(3):
        sky = style.sky_top[c] + (style.sky_bottom[c] - style.sky_top[c]) * ys
        earth = style.ground_far[c] + (style.ground_near[c] - style.ground_far[c]) * depth
        sky_noise = (2.0 if style.flat_sky else 14.0) * sky_luma
        earth_noise = 22.0 * luma + 16.0 * detail * (0.4 + depth)
        img[:, :, c] = (1 - ground) * (sky + sky_noise) + ground * (earth + earth_noise)
    chroma = _octaves(rng, width // 4, height // 4, 1, 5)
    img[:, :, 0] += 6.0 * cv2.resize(chroma, (width, height))
    img[:, :, 2] -= 6.0 * cv2.resize(chroma, (width, height))
    return img


def _textured(
    rng: np.random.Generator, width: int, height: int, colour: tuple[float, float, float], strength: float
) -> np.ndarray:
    tex = _octaves(rng, width, height, int(rng.integers(4, 7)), 9, falloff=0.75)
    shade = np.linspace(float(rng.uniform(0.75, 1.0)), float(rng.uniform(1.0, 1.2)), width, dtype=np.float32)
    out = np.empty((height, width, 3), np.float32)
    for c in range(3):
        out[:, :, c] = colour[c] * shade[None, :] + strength * tex
    return out


def _paste(img: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend `patch` through `mask` (0..1) at (x, y), clipped to the picture."""
    h, w = img.shape[:2]
    ph, pw = mask.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
    if x0 >= x1 or y0 >= y1:
        return
    m = mask[y0 - y : y1 - y, x0 - x : x1 - x, None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - m) + patch[y0 - y : y1 - y, x0 - x : x1 - x] * m


def _house(
    rng: np.random.Generator, colour: tuple[float, float, float], w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    patch = _textured(rng, w, h, colour, 14.0)
    mask = np.zeros((h, w), np.float32)
    roof = int(h * rng.uniform(0.2, 0.35))
    cv2.rectangle(mask, (0, roof), (w - 1, h - 1), 1.0, -1)
    apex = int(w * rng.uniform(0.3, 0.7))
    cv2.fillConvexPoly(mask, np.array([[0, roof], [apex, 0], [w - 1, roof]], np.int32), 1.0, cv2.LINE_AA)
    roof_colour = np.array(_colour(rng, 40, 160), np.float32)
    patch[:roof] = patch[:roof] * 0.3 + roof_colour * 0.7
    # Windows and a door: dark holes with light frames, at irregular spacing like real facades.
    cols = int(rng.integers(2, 5))
    for i in range(cols):
        if rng.random() < 0.2:
            continue
        cx = int((i + 0.5 + rng.uniform(-0.15, 0.15)) * w / cols)
        ww, wh = int(w / cols * rng.uniform(0.3, 0.5)), int((h - roof) * rng.uniform(0.2, 0.35))
        cy = roof + int((h - roof) * rng.uniform(0.2, 0.45))
        shade = float(rng.uniform(15, 70))
        cv2.rectangle(patch, (cx - ww // 2 - 3, cy - 3), (cx + ww // 2 + 3, cy + wh + 3), (220, 215, 205), -1)
        cv2.rectangle(patch, (cx - ww // 2, cy), (cx + ww // 2, cy + wh), (shade, shade, shade * 1.1), -1)
        cv2.line(patch, (cx, cy), (cx, cy + wh), (200, 200, 200), 2)
    return patch, mask


def _blob(
    rng: np.random.Generator, colour: tuple[float, float, float], w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """A bush, rock or heap: an irregular polygon with a coarse texture."""
    patch = _textured(rng, w, h, colour, 30.0)
    mask = np.zeros((h, w), np.float32)
    n = int(rng.integers(6, 12))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = rng.uniform(0.6, 1.0, n)
    pts = np.stack(
        [w / 2 + np.cos(angles) * radii * (w / 2 - 1), h / 2 + np.sin(angles) * radii * (h / 2 - 1)], 1
    )
    cv2.fillPoly(mask, [pts.astype(np.int32)], 1.0, cv2.LINE_AA)
    return patch, mask


def _box(
    rng: np.random.Generator, colour: tuple[float, float, float], w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """A bin, sign, wall segment or pole: a rectangle with a stripe or label on it."""
    patch = _textured(rng, w, h, colour, 10.0)
    mask = np.ones((h, w), np.float32)
    if rng.random() < 0.6:
        y = int(h * rng.uniform(0.1, 0.6))
        band = (float(rng.uniform(180, 250)), float(rng.uniform(180, 250)), float(rng.uniform(30, 250)))
        cv2.rectangle(patch, (int(w * 0.1), y), (int(w * 0.9), y + max(3, h // 6)), band, -1)
    return patch, mask


_MAKERS = (_house, _blob, _blob, _box)


def objects_into(img: np.ndarray, rng: np.random.Generator, style: Style, count: int) -> None:
    """Draw `count` textured objects of `style` at random places on the ground half of `img`."""
    height, width = img.shape[:2]
    placed = sorted(float(rng.uniform(style.horizon - 0.1, 0.95)) for _ in range(count))  # far ones first
    for base in placed:
        scale = 0.35 + base  # nearer (lower) objects are bigger
        maker = _MAKERS[int(rng.integers(0, len(_MAKERS)))]
        w = int(width * rng.uniform(0.06, 0.22) * scale)
        h = int(w * rng.uniform(0.5, 1.6))
        colour = style.object_colours[int(rng.integers(0, len(style.object_colours)))]
        colour = tuple(float(np.clip(v + rng.uniform(-25, 25), 0, 255)) for v in colour)  # type: ignore[assignment]
        patch, mask = maker(rng, colour, max(8, w), max(8, h))
        _paste(img, patch, mask, int(rng.uniform(-0.05, 0.95) * width), int(base * height) - h)


def scene(
    seed: int, size: tuple[int, int] = (1600, 1200), *, style: Style | None = None, objects: int | None = None
) -> Image.Image:
    """A photo-like RGB scene; `style` (default: the seed's own) fixes palette and layout family."""
    width, height = size
    style = style or style_of(seed)
    rng = np.random.default_rng([seed, 1])
    # Drawn at half size and enlarged (like a phone's soft optics), then sensor grain at full size: 4x faster.
    half = width > 800
    w, h = (width // 2, height // 2) if half else (width, height)
    img = _backdrop(rng, style, w, h)
    objects_into(img, rng, style, style.objects if objects is None else objects)
    if half:
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((height // 2, width // 2)).astype(np.float32)
    img += 3.0 * cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR)[:, :, None]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def with_sign(img: Image.Image, sign_seed: int, *, place_seed: int, fraction: float = 0.12) -> Image.Image:
    """`img` with the same printed sign (a poster, a standard bin label) on it: a shared object, not reuse."""
    rng = np.random.default_rng([sign_seed, 3])
    side = int(min(img.size) * math.sqrt(fraction))
    w, h = side, int(side * rng.uniform(0.6, 0.9))
    sign = np.asarray(scene(sign_seed, (w, h), objects=6), np.float32)
    cv2.rectangle(sign, (0, 0), (w - 1, h - 1), (240, 240, 240), max(2, w // 40))
    where = np.random.default_rng([place_seed, 4])
    out = np.asarray(img, np.float32).copy()
    x = int(where.uniform(0.02, 0.98) * (img.width - w))
    y = int(where.uniform(0.02, 0.98) * (img.height - h))
    _paste(out, sign, np.ones((h, w), np.float32), x, y)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def reshot(seed: int, size: tuple[int, int] = (1600, 1200), *, shift: float = 0.04) -> Image.Image:
    """The place of `scene(seed)` photographed again: another viewpoint, light, grain and objects moved."""
    base = np.asarray(scene(seed, size, objects=0), np.float32)
    rng = np.random.default_rng([seed, 5])
    w, h = size
    d = shift * w
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-d, d, size=(4, 2)).astype(np.float32)
    warped = cv2.warpPerspective(
        base, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT
    )
    warped = warped * float(rng.uniform(0.8, 1.1)) + float(rng.uniform(-12, 12))
    objects_into(warped, np.random.default_rng([seed, 6]), style_of(seed), style_of(seed).objects)
    grain = rng.standard_normal((h // 2, w // 2)).astype(np.float32)
    warped += 3.0 * cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None]
    return Image.fromarray(np.clip(warped, 0, 255).astype(np.uint8), "RGB")


# ---- how pictures get reused ------------------------------------------------------------------------


def jpeg(img: Image.Image, quality: int = 90) -> Image.Image:
    """Round trip through JPEG at `quality`, as a camera or an app would store it."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def camera(seed: int, size: tuple[int, int] = (1600, 1200), **kwargs: object) -> Image.Image:
    """`scene(seed)` as stored by a phone camera (JPEG q92): the original a later upload may reuse."""
    return jpeg(scene(seed, size, **kwargs), 92)  # type: ignore[arg-type]


def wechat(img: Image.Image) -> Image.Image:
    """What WeChat does to a forwarded picture: long edge down to 1080 px, JPEG q75."""
    scale = 1080 / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    return jpeg(img, 75)


def resized(img: Image.Image, factor: float) -> Image.Image:
    return img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.LANCZOS)


def crop_edges(img: Image.Image, fraction: float) -> Image.Image:
    """Cut `fraction` of the width and height off every side."""
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def crop_side(img: Image.Image, side: str, fraction: float) -> Image.Image:
    """Cut `fraction` off one side: "left", "right", "top" or "bottom"."""
    w, h = img.size
    box = {
        "left": (round(w * fraction), 0, w, h),
        "right": (0, 0, w - round(w * fraction), h),
        "top": (0, round(h * fraction), w, h),
        "bottom": (0, 0, w, h - round(h * fraction)),
    }[side]
    return img.crop(box)


def brightness(img: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(factor)


def mirror(img: Image.Image) -> Image.Image:
    return ImageOps.mirror(img)


def rotate(img: Image.Image, degrees: float, *, fill: bool) -> Image.Image:
    """Turn by a few degrees: `fill` leaves black corners; otherwise cut to the largest upright rectangle."""
    turned = img.rotate(degrees, Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))
    if fill:
        return turned
    a = math.radians(abs(degrees))
    w, h = img.size
    # The largest rectangle of the same proportions inside the turned picture (what "straighten" keeps).
    scale = min(w / (w * math.cos(a) + h * math.sin(a)), h / (w * math.sin(a) + h * math.cos(a)))
    cw, ch = w * scale, h * scale
    return turned.crop((round((w - cw) / 2), round((h - ch) / 2), round((w + cw) / 2), round((h + ch) / 2)))


def screenshot(img: Image.Image, *, chrome: bool = True, dark: bool = True, seed: int = 0) -> Image.Image:
    """A 1080×2340 phone screenshot of `img` shown full width, with status bar, toolbar and nav bar."""
    rng = np.random.default_rng([seed, 8])
    w, h = 1080, 2340
    back = (0, 0, 0) if dark else (245, 245, 245)
    ink = (235, 235, 235) if dark else (30, 30, 30)
    canvas = np.full((h, w, 3), back, np.uint8)
    ph = round(img.height * w / img.width)
    if ph > h - 400:  # a portrait picture: fit the height instead
        ph = h - 400
    pw = round(img.width * ph / img.height)
    shown = np.asarray(img.resize((pw, ph), Image.Resampling.BILINEAR))
    y0, x0 = (h - ph) // 2, (w - pw) // 2
    canvas[y0 : y0 + ph, x0 : x0 + pw] = shown
    if chrome:
        bar = (28, 28, 30) if dark else (250, 250, 250)
        canvas[:110] = bar
        cv2.putText(
            canvas,
            f"{int(rng.integers(7, 23))}:{int(rng.integers(10, 59))}",
            (40, 78),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.6,
            ink,
            3,
            cv2.LINE_AA,
        )
        for i in range(3):  # signal, wifi, battery
            cv2.rectangle(canvas, (w - 220 + i * 65, 40), (w - 180 + i * 65, 80), ink, -1 if i == 2 else 3)
        cv2.putText(canvas, "<", (40, 220), cv2.FONT_HERSHEY_SIMPLEX, 2.0, ink, 4, cv2.LINE_AA)
        cv2.putText(canvas, "1/9", (w // 2 - 50, 220), cv2.FONT_HERSHEY_SIMPLEX, 1.6, ink, 3, cv2.LINE_AA)
        for i in range(4):  # share, favourite, edit, delete
            cx = w * (2 * i + 1) // 8
            cv2.circle(canvas, (cx, h - 260), 30, ink, 4, cv2.LINE_AA)
        canvas[h - 90 :] = bar
        cv2.rectangle(canvas, (w // 2 - 140, h - 50), (w // 2 + 140, h - 40), ink, -1)
    return Image.fromarray(canvas, "RGB")


def png(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def chain(*steps: Transform) -> Transform:
    def run(img: Image.Image) -> Image.Image:
        for step in steps:
            img = step(img)
        return img

    return run


# Every kind of reuse the detector must flag, as (name, transform of the stored original).
REUSE_KINDS: dict[str, Transform] = {
    "jpeg_q60": lambda im: jpeg(im, 60),
    "jpeg_q95": lambda im: jpeg(im, 95),
    "wechat": wechat,
    "resize_50": lambda im: jpeg(resized(im, 0.5), 85),
    "resize_25": lambda im: jpeg(resized(im, 0.25), 85),
    "crop_edges_5": lambda im: jpeg(crop_edges(im, 0.05), 90),
    "crop_edges_10": lambda im: jpeg(crop_edges(im, 0.10), 90),
    "crop_left_15": lambda im: jpeg(crop_side(im, "left", 0.15), 90),
    "crop_right_20": lambda im: jpeg(crop_side(im, "right", 0.20), 90),
    "crop_top_20": lambda im: jpeg(crop_side(im, "top", 0.20), 90),
    "crop_bottom_15": lambda im: jpeg(crop_side(im, "bottom", 0.15), 90),
    "brighter_15": lambda im: jpeg(brightness(im, 1.15), 90),
    "darker_15": lambda im: jpeg(brightness(im, 0.85), 90),
    "screenshot": lambda im: png(screenshot(im)),
    "screenshot_light_wechat": lambda im: wechat(screenshot(im, dark=False)),
    "screenshot_plain": lambda im: png(screenshot(im, chrome=False)),
    "rotate_3_crop": lambda im: jpeg(rotate(im, 3, fill=False), 90),
    "rotate_-5_crop": lambda im: jpeg(rotate(im, -5, fill=False), 90),
    "rotate_4_fill": lambda im: jpeg(rotate(im, 4, fill=True), 90),
    "rotate_-5_fill": lambda im: jpeg(rotate(im, -5, fill=True), 90),
    "mirror": lambda im: jpeg(mirror(im), 90),
    "wechat_mirror": chain(mirror, wechat),
    "crop_mirror_wechat": chain(lambda im: crop_side(im, "left", 0.12), mirror, wechat),
    "screenshot_of_wechat": chain(wechat, screenshot, wechat),
}


def _sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _side(rng: np.random.Generator) -> str:
    return str(rng.choice(["left", "right", "top", "bottom"]))


Reuse = Callable[[Image.Image, np.random.Generator], Image.Image]

# The same kinds of reuse with their parameters drawn from `rng` over the ranges a cheat would use
# (for the benchmark: fixed values would flatter whatever the detector was tuned on).
REUSE_RANGES: dict[str, Reuse] = {
    "re-encoded JPEG q60-95": lambda im, rng: jpeg(im, int(rng.integers(60, 96))),
    "WeChat (1080 px, q75)": lambda im, rng: wechat(im),
    "resized 50%": lambda im, rng: jpeg(resized(im, 0.5), 85),
    "resized 25%": lambda im, rng: jpeg(resized(im, 0.25), 85),
    "cropped edges 5-10%": lambda im, rng: jpeg(crop_edges(im, float(rng.uniform(0.05, 0.10))), 90),
    "cropped one side 10-20%": lambda im, rng: jpeg(
        crop_side(im, _side(rng), float(rng.uniform(0.10, 0.20))), 90
    ),
    "brightened/darkened 10-15%": lambda im, rng: jpeg(
        brightness(im, 1 + _sign(rng) * rng.uniform(0.10, 0.15)), 90
    ),
    "phone screenshot": lambda im, rng: png(
        screenshot(
            im,
            chrome=bool(rng.random() < 0.7),
            dark=bool(rng.random() < 0.5),
            seed=int(rng.integers(1 << 30)),
        )
    ),
    "screenshot sent by WeChat": lambda im, rng: wechat(
        screenshot(im, dark=bool(rng.random() < 0.5), seed=int(rng.integers(1 << 30)))
    ),
    "rotated 3-5° and cropped": lambda im, rng: jpeg(
        rotate(im, _sign(rng) * rng.uniform(3, 5), fill=False), 90
    ),
    "rotated 3-5° with corners": lambda im, rng: jpeg(
        rotate(im, _sign(rng) * rng.uniform(3, 5), fill=True), 90
    ),
    "mirrored": lambda im, rng: jpeg(mirror(im), 90),
    "WeChat + mirrored": lambda im, rng: wechat(mirror(im)),
    "cropped side + mirrored + WeChat": lambda im, rng: wechat(
        mirror(crop_side(im, _side(rng), float(rng.uniform(0.05, 0.15))))
    ),
    "WeChat, screenshot, WeChat": lambda im, rng: wechat(
        screenshot(wechat(im), seed=int(rng.integers(1 << 30)))
    ),
}


def reuse(kind: str, original: Image.Image, seed: int = 0) -> Image.Image:
    """`original` reused the way REUSE_RANGES[kind] says, with parameters drawn from `seed`."""
    return REUSE_RANGES[kind](original, np.random.default_rng([seed, 9]))
