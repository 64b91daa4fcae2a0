"""Scores: a round score never leaves [0, max] and its breakdown adds up; period scores combine their
components by the weights as written; rankings are competition rankings with their change."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.periods import month, quarter
from services.scoring.rubrics.rules import (
    DEFAULT_RUBRIC,
    Component,
    ComponentWeight,
    MissingComponents,
    Severity,
)
from services.scoring.scores.rules import (
    DeductionSource,
    Finding,
    ItemDeduction,
    PeriodInputs,
    RoundScore,
    ScoringError,
    UnitLevel,
    competition_ranks,
    deduction_for_score,
    mean_score,
    period_score,
    publishable,
    rank_units,
    round_score,
)

D = Decimal
RUBRIC = DEFAULT_RUBRIC
CATEGORIES = [*sorted({rule.category for rule in RUBRIC.deductions}), "not-in-the-rubric"]
points = st.decimals(min_value=0, max_value=40, places=2, allow_nan=False, allow_infinity=False)
findings = st.lists(
    st.builds(
        Finding,
        st.text("0123456789", min_size=6, max_size=6),
        st.sampled_from(CATEGORIES),
        st.sampled_from(list(Severity)),
    ),
    max_size=60,
    unique_by=lambda finding: finding.code,
)


@st.composite
def items(draw: st.DrawFn) -> list[ItemDeduction]:
    indicators = RUBRIC.indicators
    chosen = draw(st.lists(st.sampled_from(indicators), max_size=12))
    return [
        ItemDeduction(indicator.code, draw(st.decimals(0, indicator.max_points, places=2)), "现场扣分")
        for indicator in chosen
    ]


def score_of(value: str) -> RoundScore:
    return RoundScore(D(value), D(100), (), ())


# ---- round scores ----


@given(items(), findings)
def test_a_round_score_stays_within_0_and_max_and_adds_up(
    marks: list[ItemDeduction], found: list[Finding]
) -> None:
    result = round_score(RUBRIC, marks, found)
    assert 0 <= result.score <= result.max_score == 100
    assert result.score == 100 - sum(line.counted for line in result.deductions)
    for indicator in RUBRIC.indicators:
        lines = [line for line in result.deductions if line.indicator == indicator.code]
        automatic = sum(line.counted for line in lines if line.source is DeductionSource.automatic)
        assert automatic <= indicator.cap
        assert sum(line.counted for line in lines) <= indicator.max_points
        assert all(0 <= line.counted <= line.points for line in lines)
    # Every issue found is in the breakdown with its code, or named as unmatched; none twice.
    listed = [line.issue_code for line in result.deductions if line.source is DeductionSource.automatic]
    assert sorted([*listed, *result.unmatched]) == sorted(finding.code for finding in found)
    assert set(result.unmatched) == {f.code for f in found if f.category == "not-in-the-rubric"}


def test_a_round_score_with_a_breakdown() -> None:
    found = [
        Finding("370282-2026-000003", "luan-dui-fang", Severity.normal),
        Finding("370282-2026-000001", "luan-da-jian", Severity.serious),
        Finding("370282-2026-000002", "sheng-huo-la-ji", Severity.minor),
    ]
    result = round_score(RUBRIC, [ItemDeduction("chang-xiao", D(2), "台账不全")], found)
    assert result.score == D("93.5")  # 100 - 2 - 3 - 0.5 - 1
    assert [(line.indicator, line.source, line.counted, line.issue_code) for line in result.deductions] == [
        ("chang-xiao", DeductionSource.item, D(2), None),
        ("liu-luan", DeductionSource.automatic, D(3), "370282-2026-000001"),
        ("la-ji", DeductionSource.automatic, D("0.5"), "370282-2026-000002"),
        ("liu-luan", DeductionSource.automatic, D(1), "370282-2026-000003"),
    ]
    by_code = {indicator.code: indicator for indicator in result.indicators}
    assert by_code["liu-luan"].score == 26 and by_code["chang-xiao"].score == 3


def test_automatic_deductions_stop_at_the_cap_and_the_indicator_at_zero() -> None:
    # 12 serious 乱搭乱建 at 3 points: 36 asked, the automatic cap of 六乱 is 20.
    found = [Finding(f"i-{n:02d}", "luan-da-jian", Severity.serious) for n in range(12)]
    result = round_score(RUBRIC, [], found)
    assert result.score == 80
    counted = [line.counted for line in result.deductions]
    assert counted[:6] == [D(3)] * 6 and counted[6] == 2 and counted[7:] == [D(0)] * 5
    # With the inspector's 25 points first, only 5 remain of 30: the indicator ends at 0, not below.
    result = round_score(RUBRIC, [ItemDeduction("liu-luan", D(25))], found)
    assert result.score == 70
    assert {i.code: i.score for i in result.indicators}["liu-luan"] == 0
    # Item deductions beyond the indicator's points count only up to them (扣完为止).
    result = round_score(RUBRIC, [ItemDeduction("ting-yuan", D(8)), ItemDeduction("ting-yuan", D(8))], [])
    assert result.score == 90 and [line.counted for line in result.deductions] == [D(8), D(2)]


@pytest.mark.parametrize(
    ("marks", "found", "message"),
    [
        ([ItemDeduction("nowhere", D(1))], [], "no indicator 'nowhere'"),
        ([ItemDeduction("liu-luan", D(-1))], [], "0 or more"),
        ([ItemDeduction("liu-luan", D("0.001"))], [], "steps of 0.01"),
        ([ItemDeduction("dao-lu", D(6))], [], "do not fit"),
        ([], [Finding("a", "luan-dui-fang", Severity.minor)] * 2, "listed twice"),
    ],
)
def test_bad_scorecards_are_refused(marks: list[ItemDeduction], found: list[Finding], message: str) -> None:
    with pytest.raises(ScoringError, match=message):
        round_score(RUBRIC, marks, found)


def test_an_item_score_is_its_deduction() -> None:
    indicator = RUBRIC.indicators_by_code()["ting-yuan"]
    assert deduction_for_score(indicator, D("7.5")) == ItemDeduction("ting-yuan", D("2.5"))
    with pytest.raises(ScoringError):
        deduction_for_score(indicator, D(11))


# ---- period scores ----


@given(
    st.lists(points.map(lambda p: min(p * 2, D(100))), min_size=1, max_size=2),
    st.lists(points.map(lambda p: min(p * 2, D(100))), max_size=2),
    st.none() | st.decimals(0, 1, places=4),
    st.none() | st.decimals(1, 5, places=2),
)
def test_weights_combine_as_written(
    inspections: list[Decimal], covert: list[Decimal], rate: Decimal | None, rating: Decimal | None
) -> None:
    inputs = PeriodInputs(
        {
            Component.inspection: [score_of(str(s)) for s in inspections],
            Component.covert: [score_of(str(s)) for s in covert],
        },
        rectification_rate=rate,
        satisfaction_rating=rating,
    )
    values = {
        Component.inspection: sum(inspections, D(0)) / len(inspections),
        Component.covert: sum(covert, D(0)) / len(covert) if covert else None,
        Component.rectification: rate * 100 if rate is not None else None,
        Component.satisfaction: (rating - 1) * 25 if rating is not None else None,
    }
    weights = {
        Component.inspection: 600,
        Component.covert: 200,
        Component.satisfaction: 100,
        Component.rectification: 100,
    }
    present = {c: v for c, v in values.items() if v is not None}
    reweighted = sum(weights[c] * v for c, v in present.items()) / sum(weights[c] for c in present)
    result = period_score(RUBRIC, inputs)
    assert result.score == publishable(reweighted)
    assert 0 <= result.score <= 100
    assert set(result.missing) == set(values) - set(present)

    zero = period_score(replace(RUBRIC, missing=MissingComponents.zero), inputs)
    assert zero.score == publishable(sum(weights[c] * v for c, v in present.items()) / 1000)
    assert zero.score <= result.score


def test_a_period_score_by_hand() -> None:
    inputs = PeriodInputs(
        {Component.inspection: [score_of("90"), score_of("80")], Component.covert: [score_of("70")]},
        rectification_rate=D("0.92"),
        satisfaction_rating=D("4.2"),
    )
    # 0.6 × 85 + 0.2 × 70 + 0.1 × 80 (4.2 → 80) + 0.1 × 92 = 51 + 14 + 8 + 9.2
    assert period_score(RUBRIC, inputs).score == D("82.20")
    # Without the covert visit the other 80 % carry the score: (51 + 8 + 9.2) / 0.8.
    without = replace(inputs, rounds={Component.inspection: inputs.rounds[Component.inspection]})
    assert period_score(RUBRIC, without).score == D("85.25")
    assert period_score(replace(RUBRIC, missing=MissingComponents.zero), without).score == D("68.20")


def test_rounds_on_another_scale_are_scaled() -> None:
    out_of_50 = RoundScore(D(40), D(50), (), ())
    only_inspection = replace(RUBRIC, weights=(ComponentWeight(Component.inspection, 1000),))
    assert period_score(only_inspection, PeriodInputs({Component.inspection: [out_of_50]})).score == 80


def test_a_survey_round_outweighs_the_feedback_rating() -> None:
    inputs = PeriodInputs(
        {Component.inspection: [score_of("80")], Component.satisfaction: [score_of("60")]},
        satisfaction_rating=D(5),
    )
    satisfaction = {v.component: v for v in period_score(RUBRIC, inputs).components}[Component.satisfaction]
    assert satisfaction.value == 60 and satisfaction.rounds == 1


def test_unscored_units() -> None:
    # The default rubric requires inspection: a unit nobody inspected has no period score.
    nothing_inspected = period_score(RUBRIC, PeriodInputs({Component.covert: [score_of("90")]}))
    assert nothing_inspected.score is None and "inspection" in (nothing_inspected.unscored_reason or "")
    optional = replace(RUBRIC, weights=tuple(replace(w, required=False) for w in RUBRIC.weights))
    assert period_score(optional, PeriodInputs()).score is None
    assert period_score(optional, PeriodInputs(rectification_rate=D(1))).score == 100


@pytest.mark.parametrize(
    "inputs",
    [
        PeriodInputs({Component.inspection: [score_of("80")]}, rectification_rate=D("1.01")),
        PeriodInputs({Component.inspection: [score_of("80")]}, satisfaction_rating=D("0.5")),
        PeriodInputs({Component.inspection: [score_of("101")]}),
        PeriodInputs({Component.rectification: [score_of("80")]}),
    ],
)
def test_figures_out_of_range_are_refused(inputs: PeriodInputs) -> None:
    with pytest.raises(ScoringError):
        period_score(RUBRIC, inputs)


def test_a_town_from_its_villages() -> None:
    assert mean_score([D(90), D(85), D("80.5")]) == D("85.17")
    assert mean_score([]) is None


# ---- rankings ----

scores = st.dictionaries(
    st.text("abcdefghij", min_size=1, max_size=3),
    st.sampled_from([D(x) for x in ("60", "72.5", "80", "80.00", "91", "100")]) | points,
    max_size=30,
)


@given(scores)
def test_rankings_are_a_permutation_with_competition_ranks(by_unit: dict[str, Decimal]) -> None:
    ranking = rank_units(month(2026, 11), "370282", UnitLevel.village, by_unit)
    assert sorted(entry.unit for entry in ranking.entries) == sorted(by_unit)
    for entry in ranking.entries:
        assert entry.rank == 1 + sum(1 for other in by_unit.values() if publishable(other) > entry.score)
        assert entry.change is None and entry.previous_rank is None
    ranks = [entry.rank for entry in ranking.entries]
    assert ranks == sorted(ranks)
    # Equal scores share a rank, and the next rank skips as many places as there were ties.
    for before, after in zip(ranking.entries, ranking.entries[1:], strict=False):
        if before.score == after.score:
            assert before.rank == after.rank
        else:
            assert before.score > after.score
            assert after.rank == 1 + sum(1 for e in ranking.entries if e.score > after.score)
    if ranking.entries:
        assert ranking.entries[0].rank == 1


def test_ties_rank_alike_and_the_next_rank_skips() -> None:
    assert competition_ranks({"a": D(95), "b": D(90), "c": D(90), "d": D(85)}) == {
        "a": 1,
        "b": 2,
        "c": 2,
        "d": 4,
    }
    # Scores equal once published (two places) are equal: 80.004 and 80.001 both read 80.00.
    ranking = rank_units(
        month(2026, 11), "t", UnitLevel.village, {"x": D("80.004"), "y": D("80.001"), "z": D(81)}
    )
    assert [(e.unit, e.rank, e.score) for e in ranking.entries] == [
        ("z", 1, D(81)),
        ("x", 2, D(80)),
        ("y", 2, D(80)),
    ]
    assert ranking.places_from_bottom() == {"x": 1, "y": 1, "z": 3}


def test_change_since_the_previous_period() -> None:
    before = rank_units(month(2026, 10), "t", UnitLevel.village, {"a": D(90), "b": D(80), "c": D(70)})
    now = rank_units(
        month(2026, 11), "t", UnitLevel.village, {"a": D(75), "b": D(85), "c": D(95), "new": D(60)}, before
    )
    assert {e.unit: (e.rank, e.previous_rank, e.change) for e in now.entries} == {
        "c": (1, 3, 2),
        "b": (2, 2, 0),
        "a": (3, 1, -2),
        "new": (4, None, None),
    }
    with pytest.raises(ValueError, match="earlier"):
        rank_units(month(2026, 11), "other", UnitLevel.village, {}, before)
    with pytest.raises(ValueError, match="earlier"):
        rank_units(quarter(2026, 4), "t", UnitLevel.village, {}, before)
    with pytest.raises(ValueError, match="earlier"):
        rank_units(month(2026, 9), "t", UnitLevel.village, {}, before)
