"""The pure core of publishing (services/scoring/publishing/rules.py), on generated counties: every scored
unit is ranked once in its scope and once in its town, ranks are competition ranks, scores stay on the
rubric's scale, lists are drawn from the rankings, and a town scored from its villages is their mean."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.kit.identity import child_path
from services.scoring.lists.rules import SEED_RULES, Polarity
from services.scoring.periods import month
from services.scoring.publishing.rules import RoundLine, UnitFigures, UnitInfo, compute_period
from services.scoring.rubrics.rules import DEFAULT_RUBRIC, TownScore

COUNTY = UnitInfo("370282", "即墨区", "county", "3702", "/37/3702/370282/")
scores = st.decimals(min_value=0, max_value=100, places=2)


@st.composite
def counties(
    draw: st.DrawFn,
) -> tuple[dict[str, UnitInfo], dict[str, list[RoundLine]], dict[str, UnitFigures]]:
    units = {COUNTY.code: COUNTY}
    lines: dict[str, list[RoundLine]] = {}
    figures: dict[str, UnitFigures] = {}
    for t in range(draw(st.integers(1, 3))):
        town = UnitInfo(
            f"370282{t + 101}", f"镇{t}", "town", COUNTY.code, child_path(COUNTY.path, f"370282{t + 101}")
        )
        units[town.code] = town
        for v in range(draw(st.integers(1, 6))):
            code = f"{town.code}{v + 201}"
            units[code] = UnitInfo(code, f"村{t}{v}", "village", town.code, child_path(town.path, code))
            marks = draw(st.lists(scores, min_size=0, max_size=2))
            lines[code] = [
                RoundLine(n + 1, "inspection", f"第{n + 1}轮", None, mark, Decimal(100))
                for n, mark in enumerate(marks)
            ]
            found = draw(st.integers(0, 5))
            figures[code] = UnitFigures(found, draw(st.integers(0, found)), draw(st.integers(0, 2)))
    return units, lines, figures


@settings(max_examples=60, deadline=None)
@given(county=counties(), villages_mean=st.booleans())
def test_rankings_are_permutations_with_competition_ranks(
    county: tuple[dict[str, UnitInfo], dict[str, list[RoundLine]], dict[str, UnitFigures]],
    villages_mean: bool,
) -> None:
    units, lines, figures = county
    rubric = dataclasses.replace(
        DEFAULT_RUBRIC, town_score=TownScore.villages_mean if villages_mean else TownScore.own_rounds
    )
    result = compute_period(
        period=month(2026, 11),
        scope=COUNTY,
        rubric=rubric,
        units=units,
        rounds=lines,
        figures=figures,
        rules=SEED_RULES,
        previous={},
    )
    scored = {r.unit.code: r.value for r in result.results if r.value is not None}
    assert all(Decimal(0) <= value <= Decimal(100) for value in scored.values())
    # A village is scored exactly when an inspection round scored it (inspection is required).
    assert {c for c in scored if units[c].level == "village"} == {c for c, ls in lines.items() if ls}
    for group in result.rankings:
        entries = group.ranking.entries
        members = [e.unit for e in entries]
        assert len(members) == len(set(members))
        for entry in entries:
            assert entry.score == scored[entry.unit]
            assert entry.rank == 1 + sum(1 for other in entries if other.score > entry.score)
        if group.ranking.parent == COUNTY.code:
            level = group.ranking.level.value
            assert set(members) == {c for c in scored if units[c].level == level}
            assert group.for_lists
        else:
            assert not group.for_lists
            assert set(members) == {c for c in scored if units[c].parent_code == group.ranking.parent}
    if villages_mean:
        for town in (u for u in units.values() if u.level == "town"):
            mine = [scored[c] for c in scored if units[c].parent_code == town.code]
            if mine:
                expected = (sum(mine, Decimal(0)) / len(mine)).quantize(Decimal("0.01"))
                assert abs(scored[town.code] - expected) <= Decimal("0.01")
            else:
                assert town.code not in scored
    else:
        assert not any(units[c].level == "town" for c in scored)
    ranked = {(g.ranking.parent, e.unit) for g in result.rankings if g.for_lists for e in g.ranking.entries}
    bad = {e.unit for e in result.evaluation.lists if e.polarity is Polarity.bad}
    for entry in result.evaluation.lists:
        assert (entry.parent, entry.unit) in ranked
        if entry.polarity is Polarity.good:
            assert entry.unit not in bad
    for escalation in result.evaluation.escalations:
        assert escalation.unit in units and units[escalation.unit].path.startswith(COUNTY.path)
