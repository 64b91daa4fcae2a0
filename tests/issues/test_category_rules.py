"""The categories' pure core: checking an issue's extra fields against its category's specs, the specs
themselves, and the default deadline per severity — examples, then properties over random specs and values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.issues.categories.models import FieldType, Severity
from services.issues.categories.rules import (
    MAX_FIELDS,
    FieldSpec,
    check_fields,
    deadline_days_for,
    is_rfc3339,
    spec_problems,
    specs_of,
    valid_code,
)

TOILET = FieldSpec(
    "toilet_type", "厕所类型", FieldType.choice, required=True, choices=("水冲式", "三格化粪池", "双瓮漏斗式")
)
DEFECTS = FieldSpec(
    "defects", "存在问题", FieldType.multi_choice, choices=("粪污满溢", "设施损坏", "闲置未用")
)
VOLUME = FieldSpec("volume_m3", "估计方量", FieldType.number)
FOUND_AT = FieldSpec("found_at", "发现时间", FieldType.datetime)
OWNER = FieldSpec("household", "户主姓名", FieldType.string, required=True)
SPECS = (TOILET, DEFECTS, VOLUME, FOUND_AT, OWNER)
GOOD = {
    "toilet_type": "三格化粪池",
    "defects": ["粪污满溢", "设施损坏"],
    "volume_m3": 2.5,
    "found_at": "2026-11-23T09:30:00+08:00",
    "household": "张伟",
}


def kinds(errors: list[Any]) -> list[tuple[str, str]]:
    return [(e.field, e.type) for e in errors]


# ---- examples ----


def test_good_values_pass() -> None:
    assert check_fields(SPECS, GOOD) == []
    assert check_fields(SPECS, {"toilet_type": "水冲式", "household": "李"}) == []
    assert check_fields((), {}) == []


def test_optional_fields_may_be_null() -> None:
    assert check_fields(SPECS, {**GOOD, "defects": None, "volume_m3": None, "found_at": None}) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"toilet_type": None}, [("body.fields.toilet_type", "missing")]),
        ({"household": "  "}, [("body.fields.household", "missing")]),
        ({"toilet_type": "旱厕"}, [("body.fields.toilet_type", "choice_invalid")]),
        ({"toilet_type": ["水冲式"]}, [("body.fields.toilet_type", "choice_invalid")]),
        ({"defects": "粪污满溢"}, [("body.fields.defects", "list_type")]),
        ({"defects": ["粪污满溢", "粪污满溢"]}, [("body.fields.defects", "choice_duplicate")]),
        ({"defects": ["粪污满溢", "漏水"]}, [("body.fields.defects", "choice_invalid")]),
        ({"defects": [1]}, [("body.fields.defects", "choice_invalid")]),
        ({"volume_m3": True}, [("body.fields.volume_m3", "number_type")]),
        ({"volume_m3": "2.5"}, [("body.fields.volume_m3", "number_type")]),
        ({"volume_m3": float("nan")}, [("body.fields.volume_m3", "number_type")]),
        ({"volume_m3": float("inf")}, [("body.fields.volume_m3", "number_type")]),
        ({"found_at": "2026-11-23T09:30:00"}, [("body.fields.found_at", "datetime_format")]),
        ({"found_at": "2026-11-23"}, [("body.fields.found_at", "datetime_format")]),
        ({"found_at": "2026-02-30T09:30:00Z"}, [("body.fields.found_at", "datetime_format")]),
        ({"found_at": 1763861400}, [("body.fields.found_at", "datetime_format")]),
        ({"household": 42}, [("body.fields.household", "string_type")]),
        ({"household": "张" * 501}, [("body.fields.household", "string_too_long")]),
        ({"colour": "红"}, [("body.fields.colour", "extra_forbidden")]),
    ],
)
def test_each_wrong_value_is_named(changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert kinds(check_fields(SPECS, {**GOOD, **changes})) == expected


def test_every_problem_is_reported_at_once() -> None:
    errors = check_fields(SPECS, {"volume_m3": False, "zzz": 1, "aaa": 2})
    assert kinds(errors) == [
        ("body.fields.aaa", "extra_forbidden"),
        ("body.fields.zzz", "extra_forbidden"),
        ("body.fields.toilet_type", "missing"),
        ("body.fields.volume_m3", "number_type"),
        ("body.fields.household", "missing"),
    ]
    assert "厕所类型" in errors[2].message


def test_the_location_is_the_callers() -> None:
    assert kinds(check_fields([VOLUME], {"volume_m3": "x"}, location="fields")) == [
        ("fields.volume_m3", "number_type")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T09:30:00Z",
        "2026-11-23t09:30:00z",
        "2026-11-23T09:30:00.123456+08:00",
        "2026-11-23T01:30:00-05:30",
    ],
)
def test_rfc3339_date_times(text: str) -> None:
    assert is_rfc3339(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23 09:30:00+08:00",
        "2026-11-23T09:30+08:00",
        "2026-11-23T09:30:00+0800",
        "2026-11-23T24:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-11-23T09:30:00+08:00\n",
        "２０２６-11-23T09:30:00Z",
        "",
    ],
)
def test_not_rfc3339_date_times(text: str) -> None:
    assert not is_rfc3339(text)


@pytest.mark.parametrize(
    ("specs", "problem"),
    [
        ([FieldSpec("crop", "作物", FieldType.choice)], "needs choices"),
        ([FieldSpec("crop", "作物", FieldType.multi_choice, choices=())], "needs choices"),
        ([FieldSpec("crop", "作物", FieldType.string, choices=("a",))], "takes no choices"),
        ([FieldSpec("crop", "作物", FieldType.choice, choices=("a", "a"))], "repeats a choice"),
        (
            [FieldSpec("crop", "作物", FieldType.choice, choices=tuple(str(n) for n in range(51)))],
            "more than 50",
        ),
        ([FieldSpec("Crop", "作物", FieldType.string)], "lower-case"),
        ([FieldSpec("crop", "作物", FieldType.string), FieldSpec("crop", "别的", FieldType.number)], "twice"),
        ([FieldSpec("crop", "", FieldType.string)], "label"),
        ([FieldSpec("crop", "作\u202e物", FieldType.string)], "label"),
        ([FieldSpec(f"f{n}", "字段", FieldType.string) for n in range(MAX_FIELDS + 1)], "at most 20"),
    ],
)
def test_spec_problems(specs: list[FieldSpec], problem: str) -> None:
    problems = spec_problems(specs)
    assert problems and problem in problems[0]


def test_good_specs_have_no_problems() -> None:
    assert spec_problems(SPECS) == []
    assert spec_problems([FieldSpec(f"f{n}", "字段", FieldType.string) for n in range(MAX_FIELDS)]) == []


@pytest.mark.parametrize("code", ["luan-dui-fang", "A1", "x" * 32, "7-up"])
def test_valid_codes(code: str) -> None:
    assert valid_code(code)


@pytest.mark.parametrize("code", ["", "-x", "x" * 33, "luan dui", "乱堆", "luan_dui", "luan-dui\n"])
def test_invalid_codes(code: str) -> None:
    assert not valid_code(code)


def test_default_deadline_per_severity() -> None:
    category = SimpleNamespace(deadline_minor_days=3, deadline_normal_days=5, deadline_serious_days=10)
    assert [deadline_days_for(category, s) for s in Severity] == [3, 5, 10]
    assert deadline_days_for(category, "serious") == 10
    with pytest.raises(ValueError, match="urgent"):
        deadline_days_for(category, "urgent")


# ---- properties ----

keys = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
labels = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=10)


@st.composite
def field_specs(draw: st.DrawFn) -> tuple[FieldSpec, ...]:
    """A valid list of specs: unique keys, choices exactly for the choice types."""
    names = draw(st.lists(keys, unique=True, max_size=8))
    specs = []
    for key in names:
        kind = draw(st.sampled_from(list(FieldType)))
        choices = None
        if kind in (FieldType.choice, FieldType.multi_choice):
            choices = tuple(draw(st.lists(labels, unique=True, min_size=1, max_size=6)))
        specs.append(FieldSpec(key, draw(labels), kind, required=draw(st.booleans()), choices=choices))
    return tuple(specs)


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)


def good_value(draw: st.DrawFn, spec: FieldSpec) -> Any:
    match spec.type:
        case FieldType.string:
            return draw(st.text(min_size=1, max_size=50).filter(str.strip))
        case FieldType.number:
            return draw(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
        case FieldType.datetime:
            return draw(aware).isoformat()
        case FieldType.choice:
            return draw(st.sampled_from(spec.choices or ()))
        case FieldType.multi_choice:
            return draw(st.lists(st.sampled_from(spec.choices or ()), unique=True, min_size=1))


@st.composite
def specs_and_good_values(draw: st.DrawFn) -> tuple[tuple[FieldSpec, ...], dict[str, Any]]:
    specs = draw(field_specs())
    values = {spec.key: good_value(draw, spec) for spec in specs if spec.required or draw(st.booleans())}
    return specs, values


def bad_value(draw: st.DrawFn, spec: FieldSpec) -> Any:
    """A value of the wrong type (or outside the choices) for the spec."""
    match spec.type:
        case FieldType.string:
            return draw(st.one_of(st.integers(), st.booleans(), st.lists(st.text(), min_size=1)))
        case FieldType.number:
            return draw(st.one_of(st.booleans(), st.text(min_size=1), st.lists(st.integers(), min_size=1)))
        case FieldType.datetime:
            naive = draw(st.datetimes(min_value=datetime(1970, 1, 1))).isoformat()
            return draw(st.one_of(st.just(naive), st.integers(), st.booleans()))
        case FieldType.choice:
            return draw(
                st.one_of(st.text(min_size=1).filter(lambda t: t not in (spec.choices or ())), st.integers())
            )
        case FieldType.multi_choice:
            choices = spec.choices or ()
            return draw(
                st.one_of(
                    st.sampled_from(choices),  # one choice, not a list
                    st.just([choices[0], choices[0]]),  # twice
                    st.lists(st.text(min_size=1).filter(lambda t: t not in choices), min_size=1),
                )
            )


@given(specs_and_good_values())
def test_good_values_always_pass(case: tuple[tuple[FieldSpec, ...], dict[str, Any]]) -> None:
    specs, values = case
    assert spec_problems(specs) == []
    assert check_fields(specs, values) == []


@given(specs_and_good_values(), st.data())
def test_a_missing_required_field_is_the_one_error(
    case: tuple[tuple[FieldSpec, ...], dict[str, Any]], data: st.DataObject
) -> None:
    specs, values = case
    required = [spec.key for spec in specs if spec.required]
    if not required:
        return
    key = data.draw(st.sampled_from(required))
    without = {k: v for k, v in values.items() if k != key}
    assert kinds(check_fields(specs, without)) == [(f"body.fields.{key}", "missing")]
    assert kinds(check_fields(specs, {**values, key: None})) == [(f"body.fields.{key}", "missing")]


@given(specs_and_good_values(), keys, st.one_of(st.none(), st.integers(), st.text()))
def test_an_unknown_key_is_the_one_error(
    case: tuple[tuple[FieldSpec, ...], dict[str, Any]], key: str, value: Any
) -> None:
    specs, values = case
    if key in {spec.key for spec in specs}:
        return
    assert kinds(check_fields(specs, {**values, key: value})) == [(f"body.fields.{key}", "extra_forbidden")]


@given(specs_and_good_values(), st.data())
def test_a_wrong_value_is_the_one_error(
    case: tuple[tuple[FieldSpec, ...], dict[str, Any]], data: st.DataObject
) -> None:
    specs, values = case
    if not specs:
        return
    spec = data.draw(st.sampled_from(specs))
    errors = check_fields(specs, {**values, spec.key: bad_value(data.draw, spec)})
    assert [e.field for e in errors] == [f"body.fields.{spec.key}"]
    assert errors[0].type != "missing"


@given(field_specs())
def test_stored_specs_read_back_as_they_were(specs: tuple[FieldSpec, ...]) -> None:
    assert specs_of([spec.as_json() for spec in specs]) == specs


@given(field_specs(), st.data())
def test_a_repeated_key_is_a_problem(specs: tuple[FieldSpec, ...], data: st.DataObject) -> None:
    if not specs:
        return
    twin = replace(data.draw(st.sampled_from(specs)), label="另一个")
    assert any("twice" in p for p in spec_problems([*specs, twin]))


@given(aware)
def test_every_aware_moment_written_by_python_is_rfc3339(moment: datetime) -> None:
    assert is_rfc3339(moment.isoformat())
    assert is_rfc3339(moment.astimezone(UTC).isoformat().replace("+00:00", "Z"))


@given(st.datetimes(min_value=datetime(1970, 1, 1)))
def test_a_moment_without_an_offset_is_not(moment: datetime) -> None:
    assert not is_rfc3339(moment.isoformat())
