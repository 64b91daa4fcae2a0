"""Fixture builders for image tests: photo-like pictures, EXIF blocks, every accepted type, and bad inputs.

Pictures are smooth gradients plus blurred noise (flat synthetic stripes hash and compress unlike photos);
`grain` adds per-pixel sensor-like noise so a 12 MP JPEG has a realistic size.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageDraw, ImageFilter, TiffImagePlugin

pillow_heif.register_heif_opener()

RED = (230, 20, 20)
BLUE = (20, 20, 230)


def photo_like(width: int, height: int, *, seed: int = 0, grain: float = 0.0) -> Image.Image:
    """An RGB picture made of smooth colour gradients and blurred noise; `grain` is per-pixel noise in levels."""
    rng = np.random.default_rng(seed)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :, None]
    a, b, c = (rng.uniform(-90, 90, size=3).astype(np.float32) for _ in range(3))
    base = 128 + a * xs + b * ys + c * (xs * ys)  # a different tilted, curved ramp per channel
    # Blurred noise: coarse random fields scaled up smoothly give photo-like blobs at two scales.
    for cells, amplitude in ((6, 60.0), (40, 25.0)):
        coarse = rng.integers(0, 256, size=(cells, max(2, cells * width // height), 3), dtype=np.uint8)
        small = (max(cells * 4, width // 16), max(cells * 4, height // 16))
        field = Image.fromarray(coarse, "RGB").resize(small, Image.Resampling.BICUBIC)
        field = field.filter(ImageFilter.GaussianBlur(small[0] / cells / 3))
        smooth = field.resize((width, height), Image.Resampling.BICUBIC)
        base += (np.asarray(smooth, dtype=np.float32) - 127.5) * np.float32(amplitude / 127.5)
    if grain:
        base += rng.standard_normal(size=(height, width, 1), dtype=np.float32) * np.float32(grain)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def marked(width: int = 600, height: int = 400, *, seed: int = 1) -> Image.Image:
    """An upright picture with a red block at its top-left and a blue block at its top-right corner."""
    img = photo_like(width, height, seed=seed)
    draw = ImageDraw.Draw(img)
    side = min(width, height) // 6
    draw.rectangle((8, 8, 8 + side, 8 + side), fill=RED)
    draw.rectangle((width - 9 - side, 8, width - 9, 8 + side), fill=BLUE)
    return img


# What a camera stores for each EXIF orientation, given the upright view (EXIF 2.3, tag 0x0112):
# the viewer applies the inverse of this to show the picture upright. PIL's ROTATE_90 is counter-clockwise.
_STORE_FOR_ORIENTATION: dict[int, Callable[[Image.Image], Image.Image]] = {
    1: lambda im: im.copy(),
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


def stored_for_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera would store so that `orientation` turns them back into `upright`."""
    return _STORE_FOR_ORIENTATION[orientation](upright)


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = Fraction(round((value - degrees - minutes / 60) * 3600 * 10_000), 10_000)
    return Fraction(degrees), Fraction(minutes), seconds


def exif_block(
    *,
    orientation: int | None = None,
    taken_at: datetime | None = None,
    with_offset: bool = True,
    gps: tuple[float, float] | None = None,
    make: str | None = None,
    model: str | None = None,
) -> Image.Exif:
    """An EXIF block with the given facts; `taken_at` is written as local time plus its offset."""
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if make is not None:
        exif[ExifTags.Base.Make] = make
    if model is not None:
        exif[ExifTags.Base.Model] = model
    if taken_at is not None:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        sub[ExifTags.Base.DateTimeOriginal] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
        offset = taken_at.utcoffset()
        if with_offset and offset is not None:
            minutes = int(offset.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            sub[ExifTags.Base.OffsetTimeOriginal] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    if gps is not None:
        lat, lon = gps
        g = exif.get_ifd(ExifTags.IFD.GPSInfo)
        g[ExifTags.GPS.GPSVersionID] = b"\x02\x03\x00\x00"
        g[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        g[ExifTags.GPS.GPSLatitude] = tuple(TiffImagePlugin.IFDRational(f) for f in _dms(lat))
        g[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        g[ExifTags.GPS.GPSLongitude] = tuple(TiffImagePlugin.IFDRational(f) for f in _dms(lon))
    return exif


def encode(img: Image.Image, fmt: str = "JPEG", *, exif: Image.Exif | None = None, **params: object) -> bytes:
    """`img` saved in `fmt` (JPEG, PNG, WEBP, HEIF, GIF, BMP, TIFF) with an optional EXIF block."""
    buf = io.BytesIO()
    if exif is not None:
        params["exif"] = exif.tobytes()
    if fmt == "JPEG":
        params.setdefault("quality", 90)
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def jpeg(width: int = 640, height: int = 480, *, seed: int = 0, exif: Image.Exif | None = None) -> bytes:
    """A photo-like JPEG (q90)."""
    return encode(photo_like(width, height, seed=seed), "JPEG", exif=exif)


def heic_writable() -> bool:
    """Whether this pillow-heif install can encode HEIC (it needs an HEVC encoder such as x265)."""
    return bool(pillow_heif.libheif_info().get("encoders", {}).get("x265"))


# ---- bad inputs ---------------------------------------------------------------------------------------


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each JPEG header segment up to and including SOS."""
    out, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        out.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


def with_app1(data: bytes, payload: bytes) -> bytes:
    """The JPEG `data` with its EXIF segments replaced by one APP1 segment holding `payload`."""
    kept = b"".join(
        data[s:e] for m, s, e in _segments(data) if not (m == 0xE1 and data[s + 4 : s + 8] == b"Exif")
    )
    header_end = _segments(data)[-1][2]
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + kept + data[header_end:]


def scan_start(data: bytes) -> int:
    """Offset of the first byte of entropy-coded data in a JPEG (just after the SOS header)."""
    return _segments(data)[-1][2]


def with_declared_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG `data` with its frame header (SOF) claiming `width` x `height` pixels."""
    for marker, start, _end in _segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            return data[: start + 5] + struct.pack(">HH", height, width) + data[start + 9 :]
    raise ValueError("no SOF segment")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid greyscale PNG of `width` x `height` zero pixels, about 1/1000 of its decoded size on disk.

    Compressing 900 MB of zeros takes seconds, so one block of rows is compressed after a full flush (which
    resets the compressor, making its output repeatable) and repeated; the Adler-32 of zeros is computed.
    """
    rows = 64
    blocks, rest = divmod(height, rows)
    compressor = zlib.compressobj(9)
    block = bytes((width + 1) * rows)  # each row: filter byte 0, then zero pixels
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(bytes((width + 1) * rest)) + compressor.flush()
    total = (width + 1) * height
    adler = ((total % 65521) << 16) | 1  # Adler-32 of `total` zero bytes
    idat = first + repeated * (blocks - 1) + tail[:-4] + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
