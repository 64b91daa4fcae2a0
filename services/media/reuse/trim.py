"""Finding the picture inside uniform borders: screenshot bars with their icons and text, letterboxing.

A bar is exactly flat: nearly every pixel of one of its lines sits within one level of the line's median
(JPEG and scaling leave flat areas flat), and it keeps one colour line after line. A sky, even a clear one,
has noise and drifts, so honest photos are left alone; a blown-out sky may be trimmed, which the
fingerprint allows for by also hashing the untrimmed picture.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image

TRIM_EDGE = 512  # long edge the borders are looked for at
FLAT_LINE = 0.97  # share of a line at its median colour for a flat bar line
CHROME_LINE = 0.3  # a line with icons, text or JPEG ripples on a bar still has this much bar colour
RUN_TOLERANCE = 3  # levels: a bar keeps one colour; a sky drifts
EDGE_LEVELS = 8  # a picture starting after a bar differs from the bar colour by more than this ...
EDGE_SHARE = 0.5  # ... in at least this share of a line
MAX_CHROME_LINES = 0.08  # share of a dimension that chrome lines between two flat ones may take
MIN_KEEP = 0.15  # never trim a picture to less than this share of a dimension


class _Lines:
    """Flatness of the lines of `pixels` (lines x pixels x channels), worked out lazily from the start:
    most photos stop the scan at their first line, so most lines are never looked at."""

    def __init__(self, pixels: NDArray[np.int16]) -> None:
        self.pixels = pixels
        self.share: NDArray[np.float64] = np.empty(0)
        self.colour: NDArray[np.float64] = np.empty((0, pixels.shape[2]))

    def __len__(self) -> int:
        return len(self.pixels)

    def at(self, i: int) -> tuple[float, NDArray[np.float64]]:
        """The share of line i's pixels within one level of its median colour, and that colour."""
        if i >= len(self.share):
            chunk = self.pixels[len(self.share) : max(2 * len(self.share), 32)]
            median = np.median(chunk, axis=1, keepdims=True)
            off = np.abs(chunk - median).max(axis=2)
            self.share = np.concatenate([self.share, (off <= 1).mean(axis=1)])
            self.colour = np.concatenate([self.colour, median[:, 0, :].astype(np.float64)])
        return float(self.share[i]), self.colour[i]


def _sharp_edge(pixels: NDArray[np.int16], start: int, colour: NDArray[np.float64]) -> bool:
    """Whether the picture begins abruptly after a bar of `colour`: one of the next lines is mostly unlike it."""
    for line in pixels[start : start + 3]:
        unlike = np.any(np.abs(line - colour) > EDGE_LEVELS, axis=1)
        if unlike.mean() >= EDGE_SHARE:
            return True
    return False


def _trim_side(pixels: NDArray[np.int16]) -> int:
    """How many lines from the start of `pixels` (lines x pixels x channels) are bars: runs of exactly flat
    lines of one colour, with chrome lines (icons, text, JPEG ripples on the bar colour) on or between them.

    A run of flat lines whose colour drifts is a gradient, not a bar, and nothing is trimmed; chrome lines
    count only when a flat line or a sharp picture edge follows them.
    """
    lines = _Lines(pixels)
    accepted = 0  # lines up to the last jump from one bar colour to another
    run_colour: NDArray[np.float64] | None = None
    run_length = 0
    last_flat = -1
    loose = 0  # chrome lines since the last flat one
    drifting = 0  # flat lines in a row that left the run's colour gradually
    for i in range(len(lines)):
        share, colour = lines.at(i)
        if share >= FLAT_LINE:
            if (
                run_colour is not None
                and run_length >= 4
                and np.abs(colour - run_colour).max() > RUN_TOLERANCE
            ):
                # Compared with a few lines back, so a boundary blurred over two or three lines still jumps.
                if np.abs(colour - lines.at(max(0, i - 4))[1]).max() <= RUN_TOLERANCE:
                    drifting += 1
                    if drifting >= 3:
                        return accepted  # these flat lines are a gradient, not a bar
                    continue  # one odd line (a JPEG ripple at the picture's edge) decides nothing yet
                accepted, run_length = i, 0
            drifting = 0
            if run_length < 4:
                run_colour = colour  # settle on the colour a few lines in, past a blurred boundary
            run_length += 1
            last_flat, loose = i, 0
        elif run_colour is None:
            return 0
        elif share >= CHROME_LINE and np.abs(colour - run_colour).max() <= RUN_TOLERANCE:
            loose += 1
            if loose > MAX_CHROME_LINES * len(lines):
                return last_flat + 1
        else:
            return i if _sharp_edge(pixels, i, run_colour) else last_flat + 1
    return last_flat + 1


def trim_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of `image` (RGB or L) inside uniform borders; the whole picture
    when it has none."""
    w, h = image.size
    scale = min(1.0, TRIM_EDGE / max(w, h))
    small = image
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    pixels = np.asarray(small, dtype=np.int16)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    pixels = pixels[:, :, :3]
    sh, sw = pixels.shape[:2]
    by_col = pixels.transpose(1, 0, 2)
    top = _trim_side(pixels)
    bottom = sh - _trim_side(pixels[::-1])
    left = _trim_side(by_col)
    right = sw - _trim_side(by_col[::-1])
    if bottom - top < MIN_KEEP * sh:
        top, bottom = 0, sh
    if right - left < MIN_KEEP * sw:
        left, right = 0, sw
    # Bars often end in a soft JPEG edge: one line more keeps it out of the hashes.
    return (
        0 if left == 0 else min(w, math.ceil((left + 1) / scale)),
        0 if top == 0 else min(h, math.ceil((top + 1) / scale)),
        w if right == sw else max(0, math.floor((right - 1) / scale)),
        h if bottom == sh else max(0, math.floor((bottom - 1) / scale)),
    )
