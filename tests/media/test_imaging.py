"""The image core: type from the bytes, refusals, EXIF facts, upright metadata-free variants, redaction."""

from __future__ import annotations

import hashlib
import io
import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile
from PIL.TiffImagePlugin import IFDRational

from services.media.imaging import images as imaging
from services.media.imaging.facts import CHINA_TIME, NO_EXIF, ExifFacts
from services.media.imaging.images import (
    BadRedactionBox,
    ImageCorrupt,
    ImageRefused,
    ImageTooManyPixels,
    NotAnImage,
    UnsupportedImageType,
)
from tests.media import images

MAX_PIXELS = 50_000_000
CST = timezone(timedelta(hours=8))

heic_only = pytest.mark.skipif(not images.heic_writable(), reason="this pillow-heif cannot encode HEIC")


@pytest.fixture
def put(tmp_path: Path) -> Callable[..., Path]:
    """Write bytes to a file under a name that (deliberately) says nothing reliable about them."""

    def write(data: bytes, name: str = "upload.jpg") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


def refusal(path: Path, max_pixels: int = MAX_PIXELS) -> ImageRefused:
    """The refusal from `inspect`, after checking the one-decode path refuses the same way."""
    with pytest.raises(ImageRefused) as caught:
        imaging.inspect(path, max_pixels=max_pixels)
    with pytest.raises(ImageRefused) as caught_too:
        imaging.inspect_and_make_variants(path, max_pixels=max_pixels)
    assert type(caught_too.value) is type(caught.value)
    assert caught_too.value.instance_code == caught.value.instance_code
    return caught.value


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def sample(n: int = 0) -> Image.Image:
    return images.photo_like(320, 240, seed=n)


# ---- sniff --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        pytest.param("HEIF", "image/heic", marks=heic_only),
    ],
)
def test_sniff_names_each_accepted_type_from_its_bytes(fmt: str, mime: str) -> None:
    assert imaging.sniff(images.encode(sample(), fmt)[:64]) == mime


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic", "image/heic"),
        (b"\0\0\0\x14ftypmif1\0\0\0\0mif1", "image/heif"),
        (b"\0\0\0\x18ftypheix\0\0\0\0mif1heix", "image/heic"),
        (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf", None),
        (b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif", None),
        (b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom", None),
    ],
)
def test_sniff_reads_heif_brands(head: bytes, mime: str | None) -> None:
    assert imaging.sniff(head) == mime


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, this is a text file named photo.jpg\n",
        b"\xff\xd8",  # too short to be sure
        images.encode(sample(), "GIF")[:64],
        images.encode(sample(), "BMP")[:64],
        images.encode(sample(), "TIFF")[:64],
        b"%PDF-1.7\n",
    ],
    ids=["zero-bytes", "text", "two-bytes", "gif", "bmp", "tiff", "pdf"],
)
def test_sniff_answers_none_for_everything_else(head: bytes) -> None:
    assert imaging.sniff(head) is None


# ---- inspect: refusals --------------------------------------------------------------------------------


def test_text_named_jpg_is_not_an_image(put: Callable[..., Path]) -> None:
    problem = refusal(put(b"just some text, not a photo\n" * 20, "photo.jpg"))
    assert isinstance(problem, NotAnImage)
    assert (problem.status, problem.instance_code) == (415, "not_an_image")


def test_zero_bytes_are_not_an_image(put: Callable[..., Path]) -> None:
    problem = refusal(put(b""))
    assert (problem.status, problem.instance_code) == (415, "not_an_image")
    assert problem.extensions == {"reason": "empty"}


@pytest.mark.parametrize(
    ("fmt", "mime"), [("GIF", "image/gif"), ("BMP", "image/bmp"), ("TIFF", "image/tiff")]
)
def test_other_image_types_are_unsupported_and_named(put: Callable[..., Path], fmt: str, mime: str) -> None:
    problem = refusal(put(images.encode(sample(), fmt), "photo.jpg"))
    assert isinstance(problem, UnsupportedImageType)
    assert (problem.status, problem.instance_code) == (415, "unsupported_image_type")
    assert problem.extensions["detected_type"] == mime


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_cut_in_half_is_corrupt(put: Callable[..., Path], progressive: bool) -> None:
    data = images.encode(images.photo_like(800, 600), "JPEG", progressive=progressive)
    problem = refusal(put(data[: len(data) // 2]))
    assert isinstance(problem, ImageCorrupt)
    assert (problem.status, problem.instance_code) == (422, "image_corrupt")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_jpeg_truncated_anywhere_is_corrupt(put: Callable[..., Path], keep: float) -> None:
    data = images.jpeg(800, 600)
    assert isinstance(refusal(put(data[: int(len(data) * keep)])), ImageCorrupt)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", pytest.param("HEIF", marks=heic_only)])
def test_other_types_cut_in_half_are_corrupt(put: Callable[..., Path], fmt: str) -> None:
    data = images.encode(images.photo_like(400, 300), fmt)
    assert isinstance(refusal(put(data[: len(data) // 2])), ImageCorrupt)


def test_jpeg_with_garbage_after_a_valid_header_is_corrupt(put: Callable[..., Path]) -> None:
    data = images.jpeg(800, 600)
    start = images.scan_start(data)
    garbage = np.random.default_rng(5).integers(0, 256, len(data) - start - 2, dtype=np.uint8).tobytes()
    problem = refusal(put(data[:start] + garbage + b"\xff\xd9"))
    assert (problem.status, problem.instance_code) == (422, "image_corrupt")


def test_png_with_garbage_pixel_data_is_corrupt(put: Callable[..., Path]) -> None:
    data = images.encode(sample(), "PNG")
    idat = data.index(b"IDAT")
    garbage = np.random.default_rng(6).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    assert isinstance(refusal(put(data[: idat + 4] + garbage)), ImageCorrupt)


@pytest.mark.parametrize("fmt", ["WEBP", pytest.param("HEIF", marks=heic_only)])
def test_container_with_garbage_after_its_header_is_corrupt(put: Callable[..., Path], fmt: str) -> None:
    data = images.encode(sample(), fmt)
    garbage = np.random.default_rng(7).integers(0, 256, len(data) - 40, dtype=np.uint8).tobytes()
    assert isinstance(refusal(put(data[:40] + garbage)), ImageCorrupt)


def test_png_bomb_is_refused_from_its_header_without_decoding(put: Callable[..., Path]) -> None:
    bomb = images.png_bomb(30_000, 30_000)
    assert len(bomb) < 1_000_000  # 900 MB of pixels in under 1 MB
    path = put(bomb, "bomb.png")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    problem = refusal(path)
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert isinstance(problem, ImageTooManyPixels)
    assert (problem.status, problem.instance_code) == (422, "image_too_many_pixels")
    assert elapsed < 0.5
    assert grown_kib < 50_000  # decoding would need 900 MB


def test_jpeg_header_claiming_huge_dimensions_is_refused(put: Callable[..., Path]) -> None:
    data = images.with_declared_size(images.jpeg(64, 48), 60_000, 60_000)
    problem = refusal(put(data))
    assert problem.instance_code == "image_too_many_pixels"


def test_pixel_limit_is_ours_and_checked_before_decoding(put: Callable[..., Path]) -> None:
    # 10000 x 8000 is below Pillow's own bomb threshold; only our limit stops it (the data is 64 x 48).
    data = images.with_declared_size(images.jpeg(64, 48), 10_000, 8_000)
    problem = refusal(put(data), max_pixels=50_000_000)
    assert problem.instance_code == "image_too_many_pixels"
    assert problem.extensions == {"width": 10_000, "height": 8_000, "max_pixels": 50_000_000}


def test_a_real_image_over_the_limit_is_refused(put: Callable[..., Path]) -> None:
    problem = refusal(put(images.jpeg(640, 480)), max_pixels=640 * 480 - 1)
    assert problem.extensions["width"] == 640
    assert imaging.inspect(put(images.jpeg(640, 480)), max_pixels=640 * 480).width == 640


def test_inspect_refuses_to_run_with_truncated_loading_switched_on(
    put: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        imaging.inspect(put(images.jpeg(64, 48)), max_pixels=MAX_PIXELS)


# ---- inspect: accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime", "name"),
    [
        ("JPEG", "image/jpeg", "a.jpg"),
        ("PNG", "image/png", "a.jpg"),  # the name is wrong; the bytes decide
        ("WEBP", "image/webp", "a.bin"),
        pytest.param("HEIF", "image/heic", "a.heic", marks=heic_only),
    ],
)
def test_accepted_types_are_read_from_the_bytes(
    put: Callable[..., Path], fmt: str, mime: str, name: str
) -> None:
    inspected = imaging.inspect(
        put(images.encode(images.photo_like(400, 300), fmt), name), max_pixels=MAX_PIXELS
    )
    assert (inspected.mime, inspected.width, inspected.height) == (mime, 400, 300)
    assert inspected.facts == NO_EXIF


def test_jpeg_with_extra_pictures_mpo_is_a_jpeg(put: Callable[..., Path]) -> None:
    buf = io.BytesIO()
    sample(1).save(buf, "MPO", save_all=True, append_images=[sample(2).resize((160, 120))])
    inspected = imaging.inspect(put(buf.getvalue()), max_pixels=MAX_PIXELS)
    assert (inspected.mime, inspected.width, inspected.height) == ("image/jpeg", 320, 240)


def test_inspect_leaves_the_file_unchanged(put: Callable[..., Path]) -> None:
    data = images.encode(sample(), "JPEG", exif=images.exif_block(orientation=6, make="Xiaomi"))
    path = put(data)
    imaging.inspect(path, max_pixels=MAX_PIXELS)
    imaging.make_variants(path, imaging.inspect(path, max_pixels=MAX_PIXELS).facts)
    assert path.read_bytes() == data


# ---- EXIF facts ---------------------------------------------------------------------------------------


def facts_of(put: Callable[..., Path], exif: Image.Exif, fmt: str = "JPEG") -> ExifFacts:
    return imaging.inspect(put(images.encode(sample(), fmt, exif=exif)), max_pixels=MAX_PIXELS).facts


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", pytest.param("HEIF", marks=heic_only)])
def test_exif_facts_read_back_exactly(put: Callable[..., Path], fmt: str) -> None:
    taken = datetime(2026, 3, 1, 9, 30, 15, tzinfo=CST)
    exif = images.exif_block(
        orientation=1, taken_at=taken, gps=(36.3912, 120.4537), make="HUAWEI", model="ALN-AL00"
    )
    facts = facts_of(put, exif, fmt)
    assert facts.has_exif and not facts.malformed
    assert facts.taken_at == taken and facts.taken_at.utcoffset() == timedelta(hours=8)
    assert facts.gps == pytest.approx((36.3912, 120.4537), abs=1e-7)
    assert (facts.make, facts.model, facts.orientation) == ("HUAWEI", "ALN-AL00", 1)


def test_southern_and_western_gps_are_negative(put: Callable[..., Path]) -> None:
    facts = facts_of(put, images.exif_block(gps=(-33.8568, -151.2153)))
    assert facts.gps == pytest.approx((-33.8568, -151.2153), abs=1e-7)


def test_time_offset_is_honoured(put: Callable[..., Path]) -> None:
    taken = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    facts = facts_of(put, images.exif_block(taken_at=taken))
    assert facts.taken_at == taken
    assert facts.taken_at is not None and facts.taken_at.utcoffset() == timedelta(hours=-5, minutes=-30)


def test_time_without_offset_is_china_time(put: Callable[..., Path]) -> None:
    facts = facts_of(
        put, images.exif_block(taken_at=datetime(2026, 3, 1, 9, 30, tzinfo=CST), with_offset=False)
    )
    assert facts.taken_at == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    assert facts.taken_at is not None and facts.taken_at.tzinfo is CHINA_TIME


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_reads_back(put: Callable[..., Path], orientation: int) -> None:
    assert facts_of(put, images.exif_block(orientation=orientation)).orientation == orientation


def test_blank_capture_time_is_unknown_not_malformed(put: Callable[..., Path]) -> None:
    exif = images.exif_block(make="OPPO")
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "    :  :     :  :  "
    facts = facts_of(put, exif)
    assert (facts.taken_at, facts.malformed, facts.make) == (None, False, "OPPO")


def test_garbage_in_the_exif_segment_is_accepted_and_flagged(put: Callable[..., Path]) -> None:
    garbage = np.random.default_rng(8).integers(0, 256, 300, dtype=np.uint8).tobytes()
    path = put(images.with_app1(images.jpeg(320, 240), b"Exif\x00\x00" + garbage))
    inspected = imaging.inspect(path, max_pixels=MAX_PIXELS)
    assert inspected.facts == ExifFacts(has_exif=True, malformed=True)
    variants = imaging.make_variants(path, inspected.facts)
    assert variants.display_size == (320, 240)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_exif_with_a_valid_header_and_nothing_readable_is_malformed(put: Callable[..., Path]) -> None:
    path = put(images.with_app1(images.jpeg(320, 240), b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + b"\xff" * 40))
    facts = imaging.inspect(path, max_pixels=MAX_PIXELS).facts
    assert (facts.has_exif, facts.malformed) == (True, True)


def test_gps_rational_with_zero_denominator_is_malformed_but_the_rest_is_read(
    put: Callable[..., Path],
) -> None:
    exif = images.exif_block(make="vivo", orientation=3, taken_at=datetime(2026, 3, 1, 9, 0, tzinfo=CST))
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (IFDRational(36, 0), IFDRational(23, 1), IFDRational(0, 1))
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (IFDRational(120, 1), IFDRational(27, 1), IFDRational(0, 1))
    facts = facts_of(put, exif)
    assert (facts.malformed, facts.gps) == (True, None)
    assert (facts.make, facts.orientation, facts.taken_at) == (
        "vivo",
        3,
        datetime(2026, 3, 1, 9, 0, tzinfo=CST),
    )


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (ExifTags.Base.DateTimeOriginal, "2026:13:45 99:00:00"),
        (ExifTags.Base.DateTimeOriginal, "yesterday"),
        (ExifTags.Base.OffsetTimeOriginal, "+8h"),
    ],
)
def test_unreadable_time_is_malformed(put: Callable[..., Path], tag: int, value: str) -> None:
    exif = images.exif_block(taken_at=datetime(2026, 3, 1, 9, 0, tzinfo=CST), model="Mi 14")
    exif.get_ifd(ExifTags.IFD.Exif)[tag] = value
    facts = facts_of(put, exif)
    assert (facts.taken_at, facts.malformed, facts.model) == (None, True, "Mi 14")


def test_orientation_out_of_range_is_malformed_and_ignored(put: Callable[..., Path]) -> None:
    facts = facts_of(put, images.exif_block(orientation=9))
    assert (facts.orientation, facts.malformed) == (None, True)


def test_gps_beyond_ninety_degrees_is_malformed(put: Callable[..., Path]) -> None:
    exif = images.exif_block(gps=(36.0, 120.0))
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = (95.0, 0.0, 0.0)
    facts = facts_of(put, exif)
    assert (facts.gps, facts.malformed) == (None, True)


# ---- variants -----------------------------------------------------------------------------------------


def corner_colours(img: Image.Image) -> tuple[str, str]:
    """Which mark sits in the top-left and top-right corners ("red", "blue" or "-")."""
    w, h = img.size
    inset = min(w, h) // 12 + 4

    def name(x: int, y: int) -> str:
        r, g, b = img.convert("RGB").getpixel((x, y))  # type: ignore[misc]
        if r > 180 and g < 80 and b < 80:
            return "red"
        if b > 180 and r < 80 and g < 80:
            return "blue"
        return "-"

    return name(inset, inset), name(w - 1 - inset, inset)


def no_metadata(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.mode == "RGB"
        assert len(img.getexif()) == 0
        for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"):
            assert key not in img.info


@pytest.mark.parametrize("orientation", range(1, 9))
def test_display_and_thumb_are_upright_for_every_orientation(
    put: Callable[..., Path], orientation: int
) -> None:
    upright = images.marked(600, 400)
    stored = images.stored_for_orientation(upright, orientation)
    path = put(images.encode(stored, "JPEG", exif=images.exif_block(orientation=orientation)))
    inspected = imaging.inspect(path, max_pixels=MAX_PIXELS)
    assert (inspected.width, inspected.height) == stored.size  # as stored, before orientation
    variants = imaging.make_variants(path, inspected.facts)
    assert variants.display_size == (600, 400) and variants.thumb_size == (320, 213)
    for data in (variants.display, variants.thumb):
        with Image.open(io.BytesIO(data)) as img:
            assert corner_colours(img) == ("red", "blue")
    assert corner_colours(variants.upright) == ("red", "blue")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_orientation_turns_png_and_webp_upright_too(put: Callable[..., Path], fmt: str) -> None:
    stored = images.stored_for_orientation(images.marked(600, 400), 6)
    path = put(images.encode(stored, fmt, exif=images.exif_block(orientation=6)))
    variants = imaging.make_variants(path, imaging.inspect(path, max_pixels=MAX_PIXELS).facts)
    assert variants.display_size == (600, 400)
    assert corner_colours(variants.upright) == ("red", "blue")


@heic_only
def test_heic_comes_out_upright(put: Callable[..., Path]) -> None:
    # pillow-heif stores the pixels upright on encode; libheif applies any container rotation on decode.
    stored = images.stored_for_orientation(images.marked(600, 400), 6)
    path = put(images.encode(stored, "HEIF", exif=images.exif_block(orientation=6)), "a.heic")
    inspected = imaging.inspect(path, max_pixels=MAX_PIXELS)
    assert inspected.facts.orientation == 1
    variants = imaging.make_variants(path, inspected.facts)
    assert variants.display_size == (600, 400)
    assert corner_colours(variants.upright) == ("red", "blue")


@pytest.mark.slow
def test_large_photo_is_scaled_to_display_and_thumb_sizes(put: Callable[..., Path]) -> None:
    upright = images.marked(3200, 2400)
    stored = images.stored_for_orientation(upright, 6)
    path = put(images.encode(stored, "JPEG", exif=images.exif_block(orientation=6)))
    variants = imaging.make_variants(path, imaging.inspect(path, max_pixels=MAX_PIXELS).facts)
    assert variants.display_size == (1600, 1200) and variants.thumb_size == (320, 240)
    assert variants.upright.size == (1600, 1200) and variants.upright.mode == "RGB"
    with Image.open(io.BytesIO(variants.display)) as display, Image.open(io.BytesIO(variants.thumb)) as thumb:
        assert (display.size, thumb.size) == ((1600, 1200), (320, 240))
        assert display.info.get("progressive") == 1
        assert corner_colours(display) == ("red", "blue") and corner_colours(thumb) == ("red", "blue")
    # The display copy looks like the original, scaled.
    expected = np.asarray(upright.resize((1600, 1200)), dtype=np.int16)
    assert np.abs(pixels(variants.display) - expected).mean() < 4


@pytest.mark.parametrize(
    ("size", "display"),
    [
        ((2000, 500), (1600, 400)),  # the last step only: bilinear
        ((2600, 650), (1600, 400)),  # 1.6x: area averaging
        ((3400, 850), (1600, 400)),  # box reduce by 2, then bilinear
        ((400, 2000), (320, 1600)),  # a long screenshot
    ],
)
def test_scaled_copies_look_like_a_careful_resize(
    put: Callable[..., Path], size: tuple[int, int], display: tuple[int, int]
) -> None:
    source = images.photo_like(*size, seed=4, grain=3)
    variants = imaging.make_variants(put(images.encode(source, "PNG", compress_level=1), "a.png"), NO_EXIF)
    assert variants.display_size == display
    careful = np.asarray(source.resize(display, Image.Resampling.LANCZOS), dtype=np.int16)
    assert np.abs(np.asarray(variants.upright, dtype=np.int16) - careful).mean() < 2.5


def test_small_photo_is_not_enlarged(put: Callable[..., Path]) -> None:
    path = put(images.jpeg(200, 150))
    variants = imaging.make_variants(path, NO_EXIF)
    assert (variants.display_size, variants.thumb_size) == ((200, 150), (200, 150))


def test_variants_carry_no_metadata_and_the_original_is_untouched(put: Callable[..., Path]) -> None:
    exif = images.exif_block(
        orientation=8, taken_at=datetime(2026, 3, 1, 9, 0, tzinfo=CST), gps=(36.39, 120.45), make="HONOR"
    )
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = images.encode(
        images.photo_like(1000, 800),
        "JPEG",
        exif=exif,
        icc_profile=srgb,
        comment=b"shot at home",
        xmp=b"<x/>",
    )
    digest = hashlib.sha256(data).hexdigest()
    path = put(data)
    variants = imaging.make_variants(path, imaging.inspect(path, max_pixels=MAX_PIXELS).facts)
    no_metadata(variants.display)
    no_metadata(variants.thumb)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(
    "build",
    [
        lambda: sample().convert("RGBA"),
        lambda: sample().convert("P", palette=Image.Palette.ADAPTIVE),
        lambda: sample().convert("L"),
        lambda: sample().convert("1"),
        lambda: sample().convert("LA"),
    ],
    ids=["rgba", "palette", "grey", "bilevel", "grey-alpha"],
)
def test_every_png_mode_becomes_rgb(put: Callable[..., Path], build: Callable[[], Image.Image]) -> None:
    variants = imaging.make_variants(put(images.encode(build(), "PNG"), "a.png"), NO_EXIF)
    assert variants.upright.mode == "RGB" and variants.display_size == (320, 240)
    no_metadata(variants.display)


def test_transparent_pixels_become_white(put: Callable[..., Path]) -> None:
    img = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    img.paste((200, 30, 30, 255), (0, 0, 50, 80))
    variants = imaging.make_variants(put(images.encode(img, "PNG"), "a.png"), NO_EXIF)
    assert variants.upright.getpixel((90, 40)) == (255, 255, 255)
    assert variants.upright.getpixel((10, 40)) == (200, 30, 30)


def test_sixteen_bit_grey_is_scaled_not_clipped(put: Callable[..., Path]) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    variants = imaging.make_variants(put(images.encode(Image.fromarray(ramp), "PNG"), "a.png"), NO_EXIF)
    row = np.asarray(variants.upright)[32, :, 0].astype(int)
    assert abs(row[128] - 128) <= 2 and row[0] <= 2 and row[255] >= 253


def test_cmyk_jpeg_becomes_rgb(put: Callable[..., Path]) -> None:
    variants = imaging.make_variants(put(images.encode(sample().convert("CMYK"), "JPEG")), NO_EXIF)
    assert variants.upright.mode == "RGB"
    assert (
        np.abs(np.asarray(variants.upright, dtype=np.int16) - np.asarray(sample(), dtype=np.int16)).mean() < 8
    )


def test_a_broken_colour_profile_is_ignored(put: Callable[..., Path]) -> None:
    path = put(images.encode(sample(), "JPEG", icc_profile=b"not really a profile"))
    variants = imaging.make_variants(path, imaging.inspect(path, max_pixels=MAX_PIXELS).facts)
    assert variants.display_size == (320, 240)
    no_metadata(variants.display)


@pytest.mark.parametrize(
    ("fmt", "size", "display"),
    [
        ("JPEG", (2400, 1800), (1600, 1200)),
        ("PNG", (2000, 1500), (1600, 1200)),
        ("WEBP", (2000, 1500), (1600, 1200)),
        pytest.param("HEIF", (800, 600), (800, 600), marks=heic_only),  # x265 is slow to encode
    ],
)
def test_one_decode_path_gives_the_same_answer(
    put: Callable[..., Path], fmt: str, size: tuple[int, int], display: tuple[int, int]
) -> None:
    stored = images.stored_for_orientation(images.marked(*size), 8)
    exif = images.exif_block(orientation=8, gps=(36.39, 120.45), make="HUAWEI")
    params = {"compress_level": 1} if fmt == "PNG" else {}
    path = put(images.encode(stored, fmt, exif=exif, **params))
    inspected, variants = imaging.inspect_and_make_variants(path, max_pixels=MAX_PIXELS)
    assert inspected == imaging.inspect(path, max_pixels=MAX_PIXELS)
    apart = imaging.make_variants(path, inspected.facts)
    assert (variants.display, variants.thumb) == (apart.display, apart.thumb)
    assert variants.display_size == display
    assert corner_colours(variants.upright) == ("red", "blue")


def test_a_colour_profile_that_does_not_fit_the_pixels_is_ignored(put: Callable[..., Path]) -> None:
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    variants = imaging.make_variants(put(images.encode(sample(), "JPEG", icc_profile=lab)), NO_EXIF)
    assert (
        np.abs(np.asarray(variants.upright, dtype=np.int16) - np.asarray(sample(), dtype=np.int16)).mean() < 3
    )
    no_metadata(variants.display)


def test_work_in_threads_gives_the_same_results(put: Callable[..., Path]) -> None:
    paths = [
        put(
            images.encode(
                images.photo_like(900, 700, seed=n), "JPEG", exif=images.exif_block(orientation=1 + n % 8)
            ),
            f"{n}.jpg",
        )
        for n in range(8)
    ]

    def work(path: Path) -> tuple[imaging.Inspected, bytes, bytes]:
        inspected = imaging.inspect(path, max_pixels=MAX_PIXELS)
        variants = imaging.make_variants(path, inspected.facts)
        return inspected, variants.display, variants.thumb

    alone = [work(p) for p in paths]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(work, paths * 2))
    assert together == alone + alone


# ---- redaction ----------------------------------------------------------------------------------------


def reencoded(display: bytes) -> np.ndarray:
    """The display copy through the same JPEG encoder without any box: the baseline a redaction is compared to."""
    with Image.open(io.BytesIO(display)) as img:
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=85, progressive=True, optimize=False)
    return pixels(buf.getvalue())


@pytest.fixture
def display() -> bytes:
    return images.encode(images.photo_like(640, 480, seed=9), "JPEG", quality=85)


def test_redaction_blacks_out_the_box_and_changes_nothing_else(display: bytes) -> None:
    x, y, w, h = 160, 96, 128, 80  # on the 16-pixel JPEG block grid
    redacted = pixels(imaging.redact(display, [(x, y, w, h)]))
    baseline = reencoded(display)
    assert redacted.shape == baseline.shape == (480, 640, 3)
    assert redacted[y + 2 : y + h - 2, x + 2 : x + w - 2].max() <= 6
    assert redacted[y : y + h, x : x + w].mean() < 3
    outside = np.ones((480, 640), dtype=bool)
    outside[y - 2 : y + h + 2, x - 2 : x + w + 2] = False  # chroma upsampling blends one or two pixels across
    assert np.array_equal(redacted[outside], baseline[outside])
    assert baseline[y : y + h, x : x + w].mean() > 40  # there was a picture there


def test_redaction_box_off_the_grid_is_covered(display: bytes) -> None:
    redacted = pixels(imaging.redact(display, [(101, 57, 33, 21)]))
    assert redacted[57 : 57 + 21, 101 : 101 + 33].mean() < 6


def test_redaction_boxes_are_clipped_to_the_picture(display: bytes) -> None:
    redacted = pixels(imaging.redact(display, [(600, 440, 500, 500), (-50, -50, 100, 100)]))
    assert redacted.shape == (480, 640, 3)
    assert redacted[440:, 600:].mean() < 6 and redacted[:50, :50].mean() < 6


def test_redaction_output_has_no_metadata(display: bytes) -> None:
    tagged = images.encode(
        images.photo_like(640, 480), "JPEG", exif=images.exif_block(make="Xiaomi", gps=(36.4, 120.4))
    )
    no_metadata(imaging.redact(tagged, [(0, 0, 10, 10)]))


@pytest.mark.parametrize(
    "boxes",
    [
        [],
        [(10, 10, 0, 20)],
        [(10, 10, 20, -5)],
        [(640, 0, 10, 10)],
        [(-30, -30, 30, 30)],
        [(0, 0, 10, 10), (1000, 1000, 10, 10)],
        [(0, 0, 10.5, 10)],
        [(0, 0, 10)],
        [(0, 0, 10, 10)] * 101,
    ],
    ids=[
        "none",
        "zero-width",
        "negative-height",
        "right-of",
        "above-left",
        "second-outside",
        "float",
        "three",
        "too-many",
    ],
)
def test_bad_redaction_boxes_are_refused(display: bytes, boxes: list[tuple[int, int, int, int]]) -> None:
    with pytest.raises(BadRedactionBox) as caught:
        imaging.redact(display, boxes)
    assert (caught.value.status, caught.value.instance_code) == (422, "bad_redaction_box")


def test_redacting_something_that_is_not_a_jpeg_is_refused() -> None:
    with pytest.raises(ImageCorrupt):
        imaging.redact(b"not a picture", [(0, 0, 10, 10)])
