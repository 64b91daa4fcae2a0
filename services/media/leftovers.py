"""What a crash leaves behind, swept: spooled upload files, and counts of everything the sweeper removed.

Content objects without a row are swept by `photos.contents.sweep_orphans`; expired and closed upload
slots by `uploads.service`. The counts are exported as `media_swept_total{kind=…}`.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

SPOOL_FILES = "spool_files"
ORPHAN_CONTENTS = "orphan_contents"
EXPIRED_UPLOADS = "expired_uploads"
CLOSED_UPLOADS = "closed_uploads"
KINDS = (SPOOL_FILES, ORPHAN_CONTENTS, EXPIRED_UPLOADS, CLOSED_UPLOADS)


def sweep_spool(folder: Path, older_than: float) -> int:
    """Remove the files in `folder` last written before `older_than` (a Unix time): request bodies spooled
    by a process that died before it could remove them. Returns how many."""
    removed = 0
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return 0
    for path in entries:
        with contextlib.suppress(FileNotFoundError):  # its request finished meanwhile
            stat = path.stat()
            if path.is_file() and stat.st_mtime < older_than:
                path.unlink()
                removed += 1
    return removed


def spool_cutoff(grace_seconds: float) -> float:
    return time.time() - grace_seconds


class SweptCollector(Collector):
    """`media_swept_total{service, kind}` from the running app's counts (none while it is not running)."""

    def __init__(self, counts: Callable[[], Counter[str] | None]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "media_swept", "Leftovers removed by the media sweeper, by kind", labels=["service", "kind"]
        )
        counts = self._counts()
        if counts is not None:
            for kind in KINDS:
                family.add_metric(["media", kind], counts[kind])
        yield family
