"""The image core of the media service: type from the bytes, safe decoding, EXIF facts, variants, redaction.

Pure functions over a file path or bytes (no database, no network); every call works on its own Image
objects and touches no global setting, so the service can run them in worker threads.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, Final

import cv2
import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageFile, UnidentifiedImageError

from services.kit.errors import Problem, UnprocessableEntity
from services.media.imaging.facts import CHINA_TIME, NO_EXIF, ExifFacts

__all__ = [
    "ACCEPTED_TYPES",
    "DISPLAY_EDGE",
    "THUMB_EDGE",
    "BadRedactionBox",
    "ExifFacts",
    "ImageCorrupt",
    "ImageRefused",
    "ImageTooCostly",
    "ImageTooManyPixels",
    "Inspected",
    "NotAnImage",
    "UnsupportedImageType",
    "Variants",
    "decode_cost",
    "inspect",
    "inspect_and_make_variants",
    "make_variants",
    "read_facts",
    "redact",
    "redact_with_thumb",
    "sniff",
]

pillow_heif.register_heif_opener()
# One picture per worker thread already: OpenCV's own thread pool would only add overhead (~6 ms of CPU per
# fingerprint measured here) under concurrent uploads. Set where OpenCV is first imported for picture work,
# so it holds however the module is reached (the service imports it lazily, see `services.media.app`).
cv2.setNumThreads(1)

DISPLAY_EDGE: Final = 1600
THUMB_EDGE: Final = 320
DISPLAY_QUALITY: Final = 85
DISPLAY_PROGRESSIVE: Final = True  # shows early on slow networks, ~10 % smaller; costs ~13 ms more to encode
THUMB_QUALITY: Final = 80
MAX_REDACTION_BOXES: Final = 100
SNIFF_BYTES: Final = 64  # enough for a HEIF `ftyp` box with its compatible brands

# The Pillow plugin allowed to read each accepted type, so the decoder always matches the sniffed bytes.
ACCEPTED_TYPES: Final[dict[str, str]] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
}
_FORMATS: Final = ("JPEG", "PNG", "WEBP", "HEIF")
_JPEG_FORMATS = ("JPEG", "MPO")  # MPO: JPEG with extra pictures (Ultra HDR gain maps, depth), opened as JPEG
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1"}

# What Pillow and pillow-heif raise on broken input while opening or decoding.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    RuntimeError,
)
# What Pillow raises on broken EXIF (it also warns "Corrupt EXIF data" and returns an empty block).
_EXIF_ERRORS = (
    SyntaxError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    struct.error,
    OSError,
    ZeroDivisionError,
)

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


# ---- refusals -----------------------------------------------------------------------------------------


class ImageRefused(Problem):
    """The upload is not an image we keep; subclasses fix the status (415 for the type, 422 for the content)."""

    status, code, title = 422, "image_refused", "Image refused"


class NotAnImage(ImageRefused):
    status, code, title = 415, "not_an_image", "Not an image"


class UnsupportedImageType(ImageRefused):
    status, code, title = 415, "unsupported_image_type", "Unsupported image type"


class ImageCorrupt(ImageRefused):
    status, code, title = 422, "image_corrupt", "Corrupt or truncated image"


class ImageTooManyPixels(ImageRefused):
    status, code, title = 422, "image_too_many_pixels", "Image has too many pixels"


class ImageTooCostly(ImageRefused):
    status, code, title = 422, "image_too_costly", "Image too costly to decode"


class BadRedactionBox(UnprocessableEntity):
    status, code, title = 422, "bad_redaction_box", "Bad redaction box"


# ---- results ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inspected:
    """A verified image: its type read from the bytes, its size as stored (before orientation), its facts.

    HEIF is the exception to "as stored": libheif applies the container's rotation while decoding and
    pillow-heif resets the EXIF orientation to 1, so width/height are already upright and orientation is 1.
    """

    mime: str
    width: int
    height: int
    facts: ExifFacts


@dataclass(frozen=True)
class Variants:
    """Derived copies without metadata: JPEG bytes of the thumbnail and the display copy, both upright.

    `upright` is the display-size RGB image itself, for fingerprinting; treat it as read-only.
    """

    thumb: bytes
    display: bytes
    upright: Image.Image
    thumb_size: tuple[int, int]
    display_size: tuple[int, int]


# ---- type sniffing ------------------------------------------------------------------------------------


def _ftyp_brands(head: bytes) -> tuple[bytes, set[bytes]]:
    """The major brand and compatible brands of an ISO-BMFF `ftyp` box at the start of `head`."""
    size = int.from_bytes(head[0:4], "big")
    end = min(len(head), size if size >= 16 else len(head))
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    return head[8:12], compatible


def sniff(head: bytes) -> str | None:
    """The accepted image type of a file from its first bytes (give at least 32), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[0:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major, compatible = _ftyp_brands(head)
        if major in _HEIC_BRANDS:
            return "image/heic"
        if major in _HEIF_BRANDS:
            if compatible & _HEIC_BRANDS:
                return "image/heic"
            if b"avif" in compatible or b"avis" in compatible:
                return None  # AVIF in a HEIF box: not decodable by this install's pillow-heif
            return "image/heif"
    return None


def _other_image_type(head: bytes) -> str | None:
    """Image types we recognise but do not accept, to name them in the refusal."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\0\0\0\0":
        return "image/bmp"
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "image/tiff"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major, compatible = _ftyp_brands(head)
        if major in (b"avif", b"avis") or {b"avif", b"avis"} & compatible:
            return "image/avif"
    if head.startswith((b"\xff\x0a", b"\0\0\0\x0cJXL ")):
        return "image/jxl"
    if head.startswith(b"\0\0\0\x0cjP  \r\n\x87\n"):
        return "image/jp2"
    if head.startswith(b"8BPS"):
        return "image/vnd.adobe.photoshop"
    if head.startswith(b"\0\0\1\0"):
        return "image/x-icon"
    return None


def _accepted_type(head: bytes) -> str:
    if not head:
        raise NotAnImage("文件为空（0 字节）", reason="empty")
    mime = sniff(head)
    if mime is not None:
        return mime
    other = _other_image_type(head)
    if other is not None:
        raise UnsupportedImageType(
            f"不支持的图片类型 {other}；仅接受 JPEG、PNG、WebP、HEIC/HEIF",
            detected_type=other,
            accepted_types=sorted(ACCEPTED_TYPES),
        )
    raise NotAnImage("文件内容不是图片（按文件字节判断，与文件名和 Content-Type 无关）")


# ---- EXIF facts ---------------------------------------------------------------------------------------

_EXIF_TIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


class _Malformed(Exception):
    """One EXIF value is present but unusable."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise _Malformed(f"text expected, got {type(value).__name__}")
    text = value.replace("\x00", " ").strip()
    return text[:100] or None


def _taken_at(exif_ifd: dict[int, Any]) -> datetime | None:
    for time_tag, offset_tag in (
        (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
        (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
    ):
        stamp = _text(exif_ifd.get(time_tag))
        if stamp is None or stamp.strip(" :0") == "":
            continue  # absent, or blanked out ("    :  :     :  :  ", zeros): unknown, not malformed
        match = _EXIF_TIME.match(stamp)
        if match is None:
            raise _Malformed(f"bad time {stamp!r}")
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            local = datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise _Malformed(f"bad time {stamp!r}") from exc
        offset_text = _text(exif_ifd.get(offset_tag))
        if offset_text is None:
            return local.replace(tzinfo=CHINA_TIME)
        offset = _EXIF_OFFSET.match(offset_text)
        if offset is None or int(offset[2]) > 14 or int(offset[3]) >= 60:
            raise _Malformed(f"bad offset {offset_text!r}")
        sign = -1 if offset[1] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[2]), minutes=int(offset[3])))
        return local.replace(tzinfo=zone)
    return None


def _coordinate(value: Any, ref: Any, positive: str, negative: str, limit: float) -> float:
    parts = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(parts) <= 3:
        raise _Malformed(f"bad coordinate {value!r}")
    try:
        numbers = [float(part) for part in parts]
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise _Malformed(f"bad coordinate {value!r}") from exc
    # A zero denominator reads as NaN in Pillow; minutes and seconds stay below 60.
    if not all(0 <= n < float("inf") for n in numbers) or any(n >= 60 for n in numbers[1:]):
        raise _Malformed(f"bad coordinate {value!r}")
    degrees = sum(n / 60.0**i for i, n in enumerate(numbers))
    if degrees > limit:
        raise _Malformed(f"coordinate out of range {degrees}")
    side = _text(ref)
    if side is None or side.upper() == positive:  # a missing reference is read as N/E, as most readers do
        return degrees
    if side.upper() == negative:
        return -degrees
    raise _Malformed(f"bad reference {side!r}")


def _gps(gps_ifd: dict[int, Any]) -> tuple[float, float] | None:
    lat_value, lon_value = gps_ifd.get(ExifTags.GPS.GPSLatitude), gps_ifd.get(ExifTags.GPS.GPSLongitude)
    if lat_value is None and lon_value is None:
        return None
    if lat_value is None or lon_value is None:
        raise _Malformed("GPS latitude or longitude missing")
    lat = _coordinate(lat_value, gps_ifd.get(ExifTags.GPS.GPSLatitudeRef), "N", "S", 90)
    lon = _coordinate(lon_value, gps_ifd.get(ExifTags.GPS.GPSLongitudeRef), "E", "W", 180)
    return lat, lon


def _orientation(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    raise _Malformed(f"bad orientation {value!r}")


def read_facts(img: Image.Image) -> ExifFacts:
    """EXIF facts of an opened (and, for PNG, loaded) image; unreadable values set `malformed`, never raise."""
    raw = img.info.get("exif")
    if not isinstance(raw, bytes) or not raw.removeprefix(b"Exif\x00\x00"):
        return NO_EXIF
    exif = Image.Exif()
    try:
        # A fresh block: Pillow may already have failed on this one quietly while opening the file.
        exif.load(raw)
        ifd0 = {tag: exif[tag] for tag in list(exif)}
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except _EXIF_ERRORS:
        return ExifFacts(has_exif=True, malformed=True)
    if not ifd0:
        return ExifFacts(has_exif=True, malformed=True)  # a header and nothing readable behind it

    malformed = False

    def read(reader: Any, *args: Any) -> Any:
        nonlocal malformed
        try:
            return reader(*args)
        except _Malformed:
            malformed = True
            return None

    return ExifFacts(
        has_exif=True,
        taken_at=read(_taken_at, exif_ifd),
        gps=read(_gps, gps_ifd),
        make=read(_text, ifd0.get(ExifTags.Base.Make)),
        model=read(_text, ifd0.get(ExifTags.Base.Model)),
        orientation=read(_orientation, ifd0.get(ExifTags.Base.Orientation)),
        malformed=malformed,
    )


# ---- inspection ---------------------------------------------------------------------------------------


def _require_strict_loading() -> None:
    # A global switch another library could flip; with it on, truncated evidence would pass silently.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False in the media service")


def _open(fp: BinaryIO, mime: str, max_pixels: int) -> Image.Image:
    """The image opened by the plugin for its sniffed type, its header checked against `max_pixels`."""
    try:
        img = Image.open(fp, formats=[ACCEPTED_TYPES[mime]])
    except Image.DecompressionBombError as exc:
        # Pillow's own ceiling (2 x MAX_IMAGE_PIXELS) is checked while opening, before ours can be.
        raise ImageTooManyPixels(f"图片像素过多：{exc}", max_pixels=max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise ImageCorrupt(f"{mime} 文件头损坏，无法读取") from exc
    except _DECODE_ERRORS as exc:
        raise ImageCorrupt(f"{mime} 文件头损坏，无法读取：{exc}") from exc
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise ImageTooManyPixels(
            f"图片 {width}×{height} 共 {width * height} 像素，超过上限 {max_pixels}",
            width=width,
            height=height,
            max_pixels=max_pixels,
        )
    return img


def _decode(img: Image.Image, draft_size: tuple[int, int]) -> None:
    """Decode every byte of the image; a JPEG at the smallest DCT scale still covering `draft_size`."""
    try:
        if img.format in _JPEG_FORMATS:
            img.draft("RGB", draft_size)  # before any transpose: that would force a full-size decode
        img.load()
    except _DECODE_ERRORS as exc:
        raise ImageCorrupt(f"图片数据损坏或不完整：{exc}") from exc


# What decoding costs beyond the decoded picture itself: the strips being converted, the variants, the
# fingerprint (~35 MB measured for any picture; see bench/README.md, "Pixel bombs").
DECODE_OVERHEAD_BYTES: Final = 48 * 1024 * 1024
# Bytes a pixel while a picture of each format is decoded whole (measured on 25 MP pictures: PNG as Pillow
# keeps the mode; libwebp's canvas, a bytes copy and the image ~15; libheif's planes and the image ~5.6).
_WHOLE_DECODE_BYTES_PER_PIXEL: Final = {"WEBP": 16, "HEIF": 8}


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel in Pillow's memory for `mode` (1-bit, grey and palette pictures take one)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def decode_cost(path: Path, *, max_pixels: int) -> int:
    """The memory decoding the image at `path` will take, in bytes, from its header alone.

    Refuses what opening refuses (not an image, an unsupported type, too many pixels, a broken header). A
    JPEG counts at the DCT scale it will be decoded at; a PNG, WebP or HEIF is decoded whole.
    """
    _require_strict_loading()
    with path.open("rb") as fp:
        mime = _accepted_type(fp.read(SNIFF_BYTES))
        fp.seek(0)
        with _open(fp, mime, max_pixels) as img:
            if img.format in _JPEG_FORMATS:
                img.draft("RGB", _fit(img.size, DISPLAY_EDGE))  # header only: the size it will decode at
            width, height = img.size
            per_pixel = _WHOLE_DECODE_BYTES_PER_PIXEL.get(img.format or "", _pixel_bytes(img.mode))
    return DECODE_OVERHEAD_BYTES + width * height * per_pixel


def inspect(path: Path, *, max_pixels: int) -> Inspected:
    """Verify the file is a whole accepted image within `max_pixels` and read its facts.

    The pixel count comes from the header before anything is decoded; then the image is decoded in full
    (JPEG at 1/8 scale, which still reads every byte) so truncated or corrupt files are refused.
    """
    _require_strict_loading()
    with path.open("rb") as fp:
        mime = _accepted_type(fp.read(SNIFF_BYTES))
        fp.seek(0)
        with _open(fp, mime, max_pixels) as img:
            width, height = img.size
            _decode(img, (1, 1))  # the smallest DCT scale: reads all data, allocates 1/64 of the pixels
            facts = read_facts(img)
    return Inspected(mime=mime, width=width, height=height, facts=facts)


def inspect_and_make_variants(path: Path, *, max_pixels: int) -> tuple[Inspected, Variants]:
    """`inspect` and `make_variants` in one decode: the same checks and refusals, about 25 ms less per 12 MP.

    The decode at display scale reads every byte too, so truncation is still refused.
    """
    _require_strict_loading()
    with path.open("rb") as fp:
        mime = _accepted_type(fp.read(SNIFF_BYTES))
        fp.seek(0)
        with _open(fp, mime, max_pixels) as img:
            width, height = img.size
            target = _fit(img.size, DISPLAY_EDGE)
            _decode(img, target)
            facts = read_facts(img)
            profile, decoded = _icc_profile(img), _reduced_rgb(img, target)
    inspected = Inspected(mime=mime, width=width, height=height, facts=facts)
    return inspected, _variants(decoded, target, profile, facts.orientation)


# ---- variants -----------------------------------------------------------------------------------------

# Turning stored pixels upright for each EXIF orientation (what ImageOps.exif_transpose does).
_UPRIGHT: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _fit(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """`size` scaled so its long edge is at most `edge` (never enlarged)."""
    width, height = size
    scale = edge / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _scale(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A new RGB image of `size` (a downscale): Pillow's box `reduce` by the integer part, OpenCV for the rest.

    Pillow's Lanczos on 2000x1500 -> 1600x1200 costs ~50 ms here, OpenCV's bilinear ~3 ms; bilinear is only
    used for the last step of at most 1.3x (a DCT-scaled JPEG already lands there), area averaging above.
    """
    factor = min(img.width // size[0], img.height // size[1])
    if factor >= 2:
        img = img.reduce(factor)
    if img.size == size:
        return img.copy()
    ratio = img.width / size[0]
    interpolation = cv2.INTER_LINEAR if ratio <= 1.3 else cv2.INTER_AREA
    scaled = cv2.resize(np.asarray(img), size, interpolation=interpolation)
    return Image.fromarray(np.ascontiguousarray(scaled), "RGB")


def _icc_profile(img: Image.Image) -> ImageCms.ImageCmsProfile | None:
    icc = img.info.get("icc_profile")
    if not isinstance(icc, bytes) or not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None  # already sRGB: nothing to convert
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a broken profile is ignored, not fatal
    return profile


def _to_srgb(img: Image.Image, profile: ImageCms.ImageCmsProfile | None) -> Image.Image:
    if profile is not None and img.mode in ("RGB", "CMYK"):
        try:
            converted = ImageCms.profileToProfile(img, profile, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # profile and pixels disagree (e.g. a grey profile on RGB): plain conversion
        if converted is not None:
            return converted
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB (or CMYK, converted later) of any decoded mode: alpha on white, 16-bit grey scaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        levels = np.asarray(img).astype(np.uint32) >> 8
        img = Image.fromarray(np.clip(levels, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = img.convert("L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("RGB", "CMYK"):
        return img
    return img.convert("RGB")


# Bytes of one strip of a converted picture: small against any decoded image, large enough that the
# per-strip overhead (a crop, a conversion, a reduce) stays negligible.
_STRIP_BYTES: Final = 4 * 1024 * 1024


def _reduced_rgb(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """`_to_rgb(img)` box-reduced by the integer factor `_scale` would reduce it by on the way to `target`.

    A decoded picture stays in its own mode (1 byte a pixel for a 1-bit or palette PNG, where RGB takes 4)
    and is converted a strip at a time, each strip reduced before the next is made: no full-size copy in
    another mode ever exists. Strips are whole multiples of the factor, so the result is exactly what
    converting the whole picture and then reducing it gives. JPEGs already come decoded at a DCT scale
    near `target` and skip this.
    """
    factor = min(img.width // target[0], img.height // target[1])
    if factor < 2:
        return _to_rgb(img)
    rows = max(1, _STRIP_BYTES // (img.width * 4 * factor)) * factor
    reduced: Image.Image | None = None
    for top in range(0, img.height, rows):
        strip = _to_rgb(img.crop((0, top, img.width, min(img.height, top + rows)))).reduce(factor)
        if reduced is None:
            reduced = Image.new(strip.mode, (-(-img.width // factor), -(-img.height // factor)))
        reduced.paste(strip, (0, top // factor))
    assert reduced is not None  # the picture has at least one row
    return reduced


def _jpeg(img: Image.Image, quality: int, *, progressive: bool) -> bytes:
    img.info.clear()  # nothing from the source travels along (EXIF, ICC, XMP, comments)
    buf = io.BytesIO()
    # libjpeg always optimises Huffman tables for progressive files: ~4x the encode time of baseline.
    img.save(buf, format="JPEG", quality=quality, progressive=progressive, optimize=False)
    return buf.getvalue()


def _variants(
    decoded: Image.Image,
    target: tuple[int, int],
    profile: ImageCms.ImageCmsProfile | None,
    orientation: int | None,
) -> Variants:
    if decoded.mode == "CMYK":
        decoded = _to_srgb(decoded, profile)  # scaling works on RGB
        profile = None
    display = _to_srgb(_scale(decoded, target), profile)  # colour conversion on the smaller image
    transpose = _UPRIGHT.get(orientation or 1)
    if transpose is not None:
        display = display.transpose(transpose)  # on the small image: cheap
    thumb = _scale(display, _fit(display.size, THUMB_EDGE))
    return Variants(
        thumb=_jpeg(thumb, THUMB_QUALITY, progressive=False),
        display=_jpeg(display, DISPLAY_QUALITY, progressive=DISPLAY_PROGRESSIVE),
        upright=display,
        thumb_size=thumb.size,
        display_size=display.size,
    )


def make_variants(path: Path, facts: ExifFacts) -> Variants:
    """Thumbnail (long edge <= 320) and display copy (<= 1600) as metadata-free JPEGs, upright by EXIF.

    Decodes once, a JPEG at the smallest DCT scale still covering the display size; `path` must have passed
    `inspect` (or use `inspect_and_make_variants`). The source file is only read.
    """
    _require_strict_loading()
    with Image.open(path, formats=_FORMATS) as img:
        target = _fit(img.size, DISPLAY_EDGE)
        _decode(img, target)
        profile, decoded = _icc_profile(img), _reduced_rgb(img, target)
    return _variants(decoded, target, profile, facts.orientation)


# ---- redaction ----------------------------------------------------------------------------------------


def _clip_box(index: int, box: Sequence[int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    if len(box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in box):
        raise BadRedactionBox(f"第 {index + 1} 个框应为 4 个整数 (x, y, w, h)", box_index=index)
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise BadRedactionBox(f"第 {index + 1} 个框的宽高必须为正", box_index=index)
    left, top = max(0, x), max(0, y)
    right, bottom = min(size[0], x + w), min(size[1], y + h)
    if right <= left or bottom <= top:
        raise BadRedactionBox(
            f"第 {index + 1} 个框在图片 {size[0]}×{size[1]} 之外", box_index=index, image_size=list(size)
        )
    return left, top, right, bottom


def _redacted(display: bytes, boxes: Sequence[tuple[int, int, int, int]]) -> Image.Image:
    if not boxes:
        raise BadRedactionBox("至少需要一个遮挡框")
    if len(boxes) > MAX_REDACTION_BOXES:
        raise BadRedactionBox(f"遮挡框最多 {MAX_REDACTION_BOXES} 个")
    try:
        with Image.open(io.BytesIO(display), formats=["JPEG"]) as img:
            img.load()
            picture = img.convert("RGB")
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise ImageCorrupt(f"展示图无法读取：{exc}") from exc
    clipped = [_clip_box(i, box, picture.size) for i, box in enumerate(boxes)]
    for left, top, right, bottom in clipped:
        picture.paste((0, 0, 0), (left, top, right, bottom))
    return picture


def redact(display: bytes, boxes: Sequence[tuple[int, int, int, int]]) -> bytes:
    """The display copy with each (x, y, w, h) box, in display pixels and clipped to the picture, blacked out.

    A solid fill cannot be undone the way a mosaic sometimes can; the result is a JPEG without metadata.
    """
    return _jpeg(_redacted(display, boxes), DISPLAY_QUALITY, progressive=DISPLAY_PROGRESSIVE)


def redact_with_thumb(display: bytes, boxes: Sequence[tuple[int, int, int, int]]) -> tuple[bytes, bytes]:
    """The redacted display copy and a thumbnail made from it, so no variant shows what was covered."""
    picture = _redacted(display, boxes)
    thumb = _scale(picture, _fit(picture.size, THUMB_EDGE))
    return (
        _jpeg(picture, DISPLAY_QUALITY, progressive=DISPLAY_PROGRESSIVE),
        _jpeg(thumb, THUMB_QUALITY, progressive=False),
    )
