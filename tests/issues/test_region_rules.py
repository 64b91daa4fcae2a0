"""The pure core of the region tree: codes, paths, level order and import planning."""

from __future__ import annotations

import itertools
from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.issues.regions.models import DEPTH, Level
from services.issues.regions.rules import (
    CODE_PATTERN,
    ImportLine,
    KnownRegion,
    level_fits,
    may_nest,
    plan_import,
    valid_code,
    valid_name,
)
from services.kit.identity import child_path, codes_in_path, is_within, parent_code_of, tree_depth

codes = st.from_regex(CODE_PATTERN, fullmatch=True)
code_lists = st.lists(codes, min_size=1, max_size=8)
levels = st.sampled_from(list(Level))


def path_of(chain: list[str]) -> str:
    return reduce(lambda parent, code: child_path(parent, code), chain, None) or "/"


# ---- codes and names ----


@given(codes)
def test_generated_codes_are_valid(code: str) -> None:
    assert valid_code(code)


@pytest.mark.parametrize(
    "code", ["", "-37", "37/02", "37 02", "北庄", "3" * 33, "37\n", "37%", "37_02", "37.02"]
)
def test_malformed_codes_are_refused(code: str) -> None:
    assert not valid_code(code)


@pytest.mark.parametrize("code", ["37", "370282103201", "370282103-GQ01", "370282103201-W01", "A1"])
def test_codes_of_every_kind_are_accepted(code: str) -> None:
    assert valid_code(code)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("前庄村", True),
        ("", False),
        ("村" * 100, True),
        ("村" * 101, False),
        ("a\x00b", False),
        ("a\tb", False),
    ],
)
def test_names(name: str, ok: bool) -> None:
    assert valid_name(name) is ok


# ---- paths ----


@given(code_lists)
def test_building_a_path_and_reading_it_back_round_trips(chain: list[str]) -> None:
    path = path_of(chain)
    assert codes_in_path(path) == chain
    assert path.startswith("/") and path.endswith("/")
    assert tree_depth(path) == len(chain) - 1
    assert parent_code_of(path) == (chain[-2] if len(chain) > 1 else None)


@given(code_lists, code_lists)
def test_a_path_lies_within_each_of_its_ancestors(upper: list[str], lower: list[str]) -> None:
    ancestor = path_of(upper)
    descendant = path_of(upper + lower)
    assert is_within(descendant, ancestor)
    assert is_within(ancestor, ancestor)
    assert not is_within(ancestor, descendant)


def test_a_sibling_with_a_longer_code_is_not_within() -> None:
    # The trailing slash is what keeps /37/3702/ from covering /37/37021/.
    assert not is_within("/37/37021/", "/37/3702/")


# ---- levels ----


@given(levels)
def test_may_nest_is_irreflexive(level: Level) -> None:
    assert not may_nest(level, level)


@given(levels, levels)
def test_may_nest_is_asymmetric(a: Level, b: Level) -> None:
    assert not (may_nest(a, b) and may_nest(b, a))


@given(levels, levels, levels)
def test_may_nest_is_transitive(a: Level, b: Level, c: Level) -> None:
    if may_nest(a, b) and may_nest(b, c):
        assert may_nest(a, c)


def test_may_nest_is_a_total_strict_order_following_the_level_list() -> None:
    for a, b in itertools.permutations(Level, 2):
        assert may_nest(a, b) is (DEPTH[a] < DEPTH[b])


def test_a_zone_is_optional_between_town_and_village() -> None:
    assert may_nest(Level.town, Level.zone)
    assert may_nest(Level.zone, Level.village)
    assert may_nest(Level.town, Level.village)


@pytest.mark.parametrize("level", list(Level))
def test_only_province_city_or_county_may_be_roots(level: Level) -> None:
    assert may_nest(None, level) is (level in (Level.province, Level.city, Level.county))


@given(st.one_of(st.none(), levels), levels, st.lists(levels, max_size=4))
def test_level_fits_means_below_the_parent_and_above_every_child(
    parent: Level | None, level: Level, children: list[Level]
) -> None:
    expected = may_nest(parent, level) and all(may_nest(level, child) for child in children)
    assert level_fits(parent, level, children) is expected


# ---- import planning ----

TOWN = KnownRegion("370282103", "/37/3702/370282/370282103/", Level.town)
OTHER_TOWN = KnownRegion("370282104", "/37/3702/370282/370282104/", Level.town)
VILLAGE = KnownRegion("370282103201", "/37/3702/370282/370282103/370282103201/", Level.village)
KNOWN = {r.code: r for r in (TOWN, OTHER_TOWN, VILLAGE)}
SCOPE = TOWN.path


def line(code: str, name: str = "村", level: str = "village", parent: str = "370282103") -> ImportLine:
    return ImportLine(code, name, level, parent)


@pytest.mark.parametrize(
    ("lines", "errors"),
    [
        ([line("370282103204")], [None]),
        ([line("370282103204"), line("370282103204-W01", level="grid", parent="370282103204")], [None, None]),
        (
            [line("370282103204-W01", level="grid", parent="370282103204"), line("370282103204")],
            ["unknown_parent", None],
        ),
        ([line("370282103204", parent="370282104")], ["unknown_parent"]),
        ([line("370282103201")], ["region_code_taken"]),
        ([line("370282104")], ["region_code_taken"]),
        ([line("370282103204"), line("370282103204")], [None, "duplicate_in_file"]),
        ([line("370282103204", level="hamlet")], ["invalid_level"]),
        ([line("370282103204", level="town")], ["level_does_not_nest"]),
        ([line("370282103204", name=" ")], ["invalid_name"]),
        ([line("bad code")], ["invalid_code"]),
        ([line("36", level="province", parent="")], ["cannot_create_root"]),
        (
            [
                ImportLine(
                    "370282103204", "村", "village", "370282103", problem="the row has 5 fields, expected 4"
                )
            ],
            ["bad_row"],
        ),
        (
            [
                line("370282103204", level="hamlet"),
                line("370282103204-W01", level="grid", parent="370282103204"),
            ],
            ["invalid_level", "parent_refused"],
        ),
        ([line("370282103204", parent="370282103204")], ["unknown_parent"]),
    ],
    ids=[
        "one-village",
        "parent-earlier-in-file",
        "parent-later-in-file",
        "parent-out-of-scope",
        "code-taken",
        "code-taken-out-of-scope",
        "duplicate-in-file",
        "bad-level",
        "bad-nesting",
        "blank-name",
        "bad-code",
        "root-needs-whole-tree",
        "unreadable-row",
        "parent-refused",
        "own-parent",
    ],
)
def test_plan_import_names_each_problem(lines: list[ImportLine], errors: list[str | None]) -> None:
    assert [row.error_code for row in plan_import(lines, KNOWN, SCOPE)] == errors


def test_out_of_scope_parent_reads_like_an_unknown_one() -> None:
    outside, unknown = plan_import(
        [line("370282103204", parent="370282104"), line("370282103205", parent="370282199")], KNOWN, SCOPE
    )
    assert outside.detail == (unknown.detail or "").replace("370282199", "370282104")


def test_a_caller_over_the_whole_tree_may_import_roots() -> None:
    [root, city] = plan_import(
        [line("36", level="province", parent=""), line("3601", level="city", parent="36")], {}, "/"
    )
    assert (root.ok, root.path) == (True, "/36/")
    assert (city.ok, city.path) == (True, "/36/3601/")


import_lines = st.lists(
    st.builds(
        ImportLine,
        code=st.sampled_from(["370282103201", "A1", "A2", "A3", "B1", "B2", "bad code"]),
        name=st.sampled_from(["村", "", " 网格 "]),
        level=st.sampled_from([*Level, "hamlet"]),
        parent_code=st.sampled_from(["", "370282103", "370282104", "370282103201", "A1", "A2", "B1", "Z9"]),
    ),
    max_size=12,
)


@given(import_lines, st.sampled_from(["/", SCOPE]))
def test_accepted_rows_form_a_valid_forest_inside_the_scope(lines: list[ImportLine], scope: str) -> None:
    planned = plan_import(lines, KNOWN, scope)
    assert len(planned) == len(lines)
    placed = {
        code: (region.path, region.level) for code, region in KNOWN.items() if region.path.startswith(scope)
    }
    accepted: set[str] = set()
    for row in planned:
        if not row.ok:
            assert row.path is None and row.detail
            continue
        assert row.path is not None and row.level is not None
        assert row.code not in KNOWN and row.code not in accepted
        assert valid_code(row.code) and valid_name(row.name)
        assert row.path.startswith(scope)
        assert codes_in_path(row.path)[-1] == row.code
        if row.parent_code is None:
            assert scope == "/" and row.path == f"/{row.code}/"
            assert may_nest(None, row.level)
        else:
            # The parent is stored in scope or was accepted on an earlier row.
            parent_path, parent_level = placed[row.parent_code]
            assert row.path == child_path(parent_path, row.code)
            assert may_nest(parent_level, row.level)
        placed[row.code] = (row.path, row.level)
        accepted.add(row.code)
