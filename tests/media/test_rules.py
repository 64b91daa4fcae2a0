"""Photo checks: distances, and which flags fire for which facts and claims (table-driven and properties)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.kit.geo import distance_m
from services.media.imaging.facts import CHINA_TIME, NO_EXIF, ExifFacts
from services.media.photos.rules import Flag, photo_checks

RECEIVED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 China time
JIMO = (36.39, 120.45)  # 即墨
LANCUN = (36.4151, 120.1766)  # 蓝村, ~24.6 km west of 即墨
OCEAN = (20.0, 125.0)  # the Philippine Sea

latitudes = st.floats(-90, 90, allow_nan=False)
longitudes = st.floats(-180, 180, allow_nan=False)
points = st.tuples(latitudes, longitudes)


def photo(**facts: object) -> ExifFacts:
    base: dict[str, object] = {"has_exif": True, "taken_at": RECEIVED - timedelta(hours=1), "gps": JIMO}
    return ExifFacts(**(base | facts))  # type: ignore[arg-type]


def codes(flags: list[Flag]) -> list[str]:
    return [flag.code for flag in flags]


def check(facts: ExifFacts, **kwargs: object) -> list[Flag]:
    claims: dict[str, object] = {"claimed_position": JIMO, "claimed_taken_at": None, "received_at": RECEIVED}
    return photo_checks(facts, **(claims | kwargs))  # type: ignore[arg-type]


# ---- distance -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "metres"),
    [
        (JIMO, JIMO, 0.0),
        ((0.0, 0.0), (0.0, 1.0), 111_195.1),  # one degree along the equator
        ((0.0, 0.0), (1.0, 0.0), 111_195.1),
        (JIMO, LANCUN, 24_627.0),  # flat estimate: hypot(2_791, 24_471) = 24_630
        ((39.9042, 116.4074), (31.2304, 121.4737), 1_067_311.0),  # 北京 - 上海
        ((0.0, 0.0), (0.0, 180.0), math.pi * 6_371_008.8),
        ((90.0, 0.0), (-90.0, 0.0), math.pi * 6_371_008.8),
    ],
)
def test_distance_in_metres(a: tuple[float, float], b: tuple[float, float], metres: float) -> None:
    assert distance_m(a, b) == pytest.approx(metres, rel=1e-3, abs=0.5)


@given(points, points)
def test_distance_is_symmetric_and_bounded(a: tuple[float, float], b: tuple[float, float]) -> None:
    assert distance_m(a, b) == pytest.approx(distance_m(b, a), abs=1e-6)
    assert 0 <= distance_m(a, b) <= math.pi * 6_371_008.8 + 1e-6


@given(points)
def test_distance_to_itself_is_zero(a: tuple[float, float]) -> None:
    assert distance_m(a, a) == 0


@given(points, points, points)
# Near the antipode the haversine's asin lost 4 cm: the path over b came out shorter than the direct one.
@example(a=(0.0, 4.153841734942751e-07), b=(0.0, 1.0), c=(0.0, 180.0))
def test_distance_obeys_the_triangle_inequality(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    assert distance_m(a, c) <= distance_m(a, b) + distance_m(b, c) + 1e-3


# ---- flags: table -------------------------------------------------------------------------------------

CASES: list[tuple[str, ExifFacts, dict[str, object], list[str]]] = [
    ("honest photo", photo(), {}, []),
    ("no exif (WeChat)", NO_EXIF, {}, ["exif_missing"]),
    ("no exif and no claims", NO_EXIF, {"claimed_position": None}, ["exif_missing"]),
    ("malformed exif", ExifFacts(has_exif=True, malformed=True), {}, ["exif_malformed"]),
    ("malformed but gps readable", photo(malformed=True), {}, ["exif_malformed"]),
    ("499 m away", photo(gps=(36.39 + 499 / 111_195.1, 120.45)), {}, []),
    ("501 m away", photo(gps=(36.39 + 501 / 111_195.1, 120.45)), {}, ["gps_far_from_claim"]),
    ("蓝村 photo claimed at 即墨", photo(gps=LANCUN), {}, ["gps_far_from_claim"]),
    ("ocean", photo(gps=OCEAN), {}, ["gps_far_from_claim"]),
    ("null island", photo(gps=(0.0, 0.0)), {}, ["gps_implausible", "gps_far_from_claim"]),
    ("null island, nothing claimed", photo(gps=(0.0, 0.0)), {"claimed_position": None}, ["gps_implausible"]),
    ("Sydney", photo(gps=(-33.86, 151.21)), {"claimed_position": None}, ["gps_implausible"]),
    ("far gps, no claim", photo(gps=LANCUN), {"claimed_position": None}, []),
    ("no gps in exif", photo(gps=None), {}, []),
    ("9 minutes ahead (clock skew)", photo(taken_at=RECEIVED + timedelta(minutes=9)), {}, []),
    ("11 minutes ahead", photo(taken_at=RECEIVED + timedelta(minutes=11)), {}, ["taken_in_future"]),
    ("a year ahead", photo(taken_at=RECEIVED + timedelta(days=365)), {}, ["taken_in_future"]),
    ("71 hours old", photo(taken_at=RECEIVED - timedelta(hours=71)), {}, []),
    ("73 hours old", photo(taken_at=RECEIVED - timedelta(hours=73)), {}, ["taken_long_before_upload"]),
    ("no time in exif", photo(taken_at=None), {"claimed_taken_at": RECEIVED}, []),
    (
        "claimed time matches",
        photo(taken_at=RECEIVED - timedelta(hours=1)),
        {"claimed_taken_at": RECEIVED - timedelta(minutes=40)},
        [],
    ),
    (
        "claimed time three hours off",
        photo(taken_at=RECEIVED - timedelta(hours=4)),
        {"claimed_taken_at": RECEIVED - timedelta(hours=1)},
        ["claimed_time_mismatch"],
    ),
    (
        "old, far and claimed at another time",
        photo(taken_at=RECEIVED - timedelta(days=30), gps=LANCUN),
        {"claimed_taken_at": RECEIVED},
        ["gps_far_from_claim", "taken_long_before_upload", "claimed_time_mismatch"],
    ),
    ("wider distance allowed", photo(gps=LANCUN), {"max_distance_m": 30_000}, []),
    (
        "shorter age allowed",
        photo(taken_at=RECEIVED - timedelta(hours=2)),
        {"max_age_hours": 1},
        ["taken_long_before_upload"],
    ),
]


@pytest.mark.parametrize(("facts", "claims", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_flags_for_each_case(facts: ExifFacts, claims: dict[str, object], expected: list[str]) -> None:
    assert codes(check(facts, **claims)) == expected


def test_ocean_position_is_flagged_with_the_distance_and_both_positions() -> None:
    [flag] = check(photo(gps=OCEAN))
    assert flag.code == "gps_far_from_claim"
    assert flag.figures["distance_m"] == pytest.approx(distance_m(OCEAN, JIMO), abs=0.1)
    assert 1_700_000 < flag.figures["distance_m"] < 1_900_000  # type: ignore[operator]
    assert (flag.figures["exif_lat"], flag.figures["exif_lon"]) == OCEAN
    assert (flag.figures["claimed_lat"], flag.figures["claimed_lon"]) == JIMO
    assert "米" in flag.detail


def test_time_flags_carry_their_hours() -> None:
    [future] = check(photo(taken_at=RECEIVED + timedelta(hours=5)))
    assert future.figures["hours_ahead"] == 5.0
    [old] = check(photo(taken_at=RECEIVED - timedelta(hours=100, minutes=30)))
    assert old.figures["age_hours"] == 100.5
    [mismatch] = check(
        photo(taken_at=RECEIVED - timedelta(hours=1)),
        claimed_taken_at=RECEIVED - timedelta(hours=3, minutes=15),
    )
    assert mismatch.figures["hours_apart"] == 2.25


def test_implausible_position_names_it() -> None:
    [flag] = check(photo(gps=(0.0, 0.0)), claimed_position=None)
    assert flag.figures == {"lat": 0.0, "lon": 0.0}


def test_naive_times_are_read_as_china_time() -> None:
    # 08:00 China time is 00:00 UTC: an hour before the upload. Read as UTC it would be 7 hours ahead.
    taken = datetime(2026, 3, 2, 8, 0)
    assert check(photo(taken_at=taken)) == []
    assert codes(check(photo(taken_at=taken.replace(tzinfo=UTC)))) == ["taken_in_future"]
    assert codes(check(photo(taken_at=taken.replace(tzinfo=CHINA_TIME)))) == []


# ---- flags: properties --------------------------------------------------------------------------------


@given(st.floats(0, 5_000), st.floats(0, 360))
def test_far_flag_fires_exactly_when_the_distance_exceeds_the_limit(metres: float, bearing: float) -> None:
    # A point `metres` from 即墨 along `bearing` (flat approximation is exact enough at these distances).
    north = metres * math.cos(math.radians(bearing)) / 111_195.1
    east = metres * math.sin(math.radians(bearing)) / (111_195.1 * math.cos(math.radians(JIMO[0])))
    gps = (JIMO[0] + north, JIMO[1] + east)
    far = "gps_far_from_claim" in codes(check(photo(gps=gps)))
    assert far == (distance_m(gps, JIMO) > 500)


@given(st.floats(-24 * 365, 24 * 365))
def test_time_flags_fire_exactly_when_thresholds_are_crossed(hours_before: float) -> None:
    taken = RECEIVED - timedelta(hours=hours_before)
    found = codes(check(photo(taken_at=taken)))
    assert ("taken_in_future" in found) == (hours_before < -10 / 60)
    assert ("taken_long_before_upload" in found) == (hours_before > 72)


@given(
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), points),
    st.one_of(st.none(), points),
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
def test_checks_never_raise_and_flag_each_code_at_most_once(
    has_exif: bool,
    malformed: bool,
    gps: tuple[float, float] | None,
    claimed: tuple[float, float] | None,
    taken_at: datetime | None,
    claimed_at: datetime | None,
) -> None:
    facts = ExifFacts(has_exif=has_exif, malformed=malformed, gps=gps, taken_at=taken_at)
    found = codes(check(facts, claimed_position=claimed, claimed_taken_at=claimed_at))
    assert len(found) == len(set(found))
    assert ("exif_missing" in found) == (not has_exif)
    assert ("exif_malformed" in found) == malformed
