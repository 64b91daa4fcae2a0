"""What the image core costs on a 12-megapixel photo: inspect + make_variants, and where the time goes.

Run: `uv run python -m bench.imaging_costs [--runs 15]`. Prints wall time and the process CPU time (all threads)
(the CPU figure is what matters on a busy machine); minimum and median over the runs.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from services.media import imaging
from tests.media import images


def measure(runs: int, work: Callable[[], object]) -> tuple[list[float], list[float]]:
    work()  # warm up caches and lazy imports
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    return walls, cpus


def report(name: str, runs: int, work: Callable[[], object]) -> float:
    walls, cpus = measure(runs, work)
    print(
        f"{name:<48} wall min {min(walls):6.1f} med {statistics.median(walls):6.1f} ms"
        f"   cpu min {min(cpus):6.1f} med {statistics.median(cpus):6.1f} ms"
    )
    return min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--others", action="store_true", help="also 12 MP PNG, WebP and HEIC (slow to encode)"
    )
    args = parser.parse_args()
    runs: int = args.runs

    # grain=5 gives a file size like a phone's 12 MP JPEG at q90 (about 3 MB).
    photo = images.photo_like(4000, 3000, seed=7, grain=5)
    exif = images.exif_block(orientation=6, gps=(36.39, 120.45), make="HUAWEI", model="ALN-AL00")
    data = images.encode(photo, "JPEG", quality=90, exif=exif)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "photo.jpg"
        path.write_bytes(data)
        print(f"12 MP JPEG 4000x3000 q90, {len(data) / 1e6:.2f} MB, EXIF orientation 6; {runs} runs\n")

        limit = 50_000_000
        facts = imaging.inspect(path, max_pixels=limit).facts
        inspect_cpu = report(
            "inspect (decode at 1/8 to verify, EXIF)", runs, lambda: imaging.inspect(path, max_pixels=limit)
        )
        variants_cpu = report(
            "make_variants (1/2 decode, 1600 + 320 JPEG)", runs, lambda: imaging.make_variants(path, facts)
        )

        def both() -> None:
            imaging.make_variants(path, imaging.inspect(path, max_pixels=limit).facts)

        total_cpu = report("inspect + make_variants (two decodes)", runs, both)
        print(
            f"{'':<48} (sum of the parts: {inspect_cpu + variants_cpu:.1f} ms cpu; together: {total_cpu:.1f})"
        )
        report(
            "inspect_and_make_variants (one decode)",
            runs,
            lambda: imaging.inspect_and_make_variants(path, max_pixels=limit),
        )

        print("\nwhere the time goes:")

        def decode(scale: tuple[int, int] | None) -> Image.Image:
            with Image.open(path) as img:
                if scale:
                    img.draft("RGB", scale)
                img.load()
                return img

        def encode(img: Image.Image, **params: object) -> bytes:
            buf = io.BytesIO()
            img.save(buf, "JPEG", **params)
            return buf.getvalue()

        report("  decode full size (not used)", runs, lambda: decode(None))
        report("  decode at 1/2 (draft to 1600x1200)", runs, lambda: decode((1600, 1200)))
        report("  decode at 1/8 (draft to 1x1)", runs, lambda: decode((1, 1)))
        half = decode((1600, 1200))
        report(
            "  scale 2000x1500 -> 1600x1200 (OpenCV linear)", runs, lambda: imaging._scale(half, (1600, 1200))
        )
        report(
            "  the same, Pillow LANCZOS (not used)",
            runs,
            lambda: half.resize((1600, 1200), Image.Resampling.LANCZOS),
        )
        display = imaging._scale(half, (1600, 1200))
        report(
            "  transpose 1600x1200 (orientation 6)",
            runs,
            lambda: display.transpose(Image.Transpose.ROTATE_270),
        )
        report("  encode 1600 q85 progressive", runs, lambda: encode(display, quality=85, progressive=True))
        report("  encode 1600 q85 baseline (not used)", runs, lambda: encode(display, quality=85))
        report("  scale 1600 -> 320 (Pillow reduce(5))", runs, lambda: imaging._scale(display, (320, 240)))
        thumb = imaging._scale(display, (320, 240))
        report("  encode 320 q80 baseline", runs, lambda: encode(thumb, quality=80))

        if args.others:
            print("\nother types, 12 MP, inspect_and_make_variants:")
            for fmt, params in (
                ("PNG", {"compress_level": 1}),
                ("WEBP", {"quality": 90}),
                ("HEIF", {"quality": 80}),
            ):
                other = Path(folder) / f"photo.{fmt.lower()}"
                other.write_bytes(images.encode(photo, fmt, **params))
                size = other.stat().st_size / 1e6
                report(
                    f"  {fmt} ({size:.1f} MB)",
                    max(3, runs // 5),
                    lambda p=other: imaging.inspect_and_make_variants(p, max_pixels=limit),
                )


if __name__ == "__main__":
    main()
