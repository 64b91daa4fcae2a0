"""The pure core of publishing a period: every unit's period score from its closed rounds and the issues
service's figures, the rankings within parent regions, and the lists and escalations they give. No I/O.

Rankings: villages within the publication's scope region (the county, or a town publishing its own
villages) and within their town, towns within the scope. Lists and escalations are drawn from the scope's
own rankings (`for_lists`); a town's ranking of its villages is published for reading. A town's score comes
from its own rounds or is the mean of its villages' scores, as the rubric says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from services.kit.identity import codes_in_path
from services.scoring.levels import UnitLevel
from services.scoring.lists.rules import Evaluation, RuleSet, UnitFacts, evaluate
from services.scoring.periods import Period
from services.scoring.rubrics.rules import Component, Rubric, TownScore
from services.scoring.scores.rules import (
    PeriodInputs,
    PeriodScore,
    Ranking,
    mean_score,
    period_score,
    rank_units,
)

__all__ = [
    "PeriodResult",
    "RankingGroup",
    "RoundLine",
    "UnitFigures",
    "UnitInfo",
    "UnitResult",
    "compute_period",
]


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """A region as a round's snapshot froze it."""

    code: str
    name: str
    level: str
    parent_code: str | None
    path: str


@dataclass(frozen=True, slots=True)
class RoundLine:
    """A unit's score in one closed round."""

    round_id: int
    kind: str
    name: str
    window: str | None
    score: Decimal
    max_score: Decimal


@dataclass(frozen=True, slots=True)
class UnitFigures:
    """What the issues service counted for a unit over the period: found, fixed, open past the deadline,
    and the feedback rating (1–5) where any was given."""

    found: int
    fixed: int
    overdue: int
    satisfaction: Decimal | None = None

    @property
    def rectification_rate(self) -> Decimal | None:
        """整改率 = fixed / found, exact; None when nothing was found."""
        return Decimal(self.fixed) / Decimal(self.found) if self.found else None


@dataclass(frozen=True, slots=True)
class UnitResult:
    unit: UnitInfo
    town_code: str | None
    score: PeriodScore | None  # None for a town scored as its villages' mean
    value: Decimal | None  # the published period score
    rounds: tuple[RoundLine, ...]
    figures: UnitFigures | None
    villages_scored: int = 0  # a town from its villages: how many


@dataclass(frozen=True, slots=True)
class RankingGroup:
    ranking: Ranking
    parent_name: str
    for_lists: bool


@dataclass(frozen=True, slots=True)
class PeriodResult:
    results: tuple[UnitResult, ...]
    rankings: tuple[RankingGroup, ...]
    evaluation: Evaluation
    units: Mapping[str, UnitInfo] = field(default_factory=dict)


def town_of(unit: UnitInfo, units: Mapping[str, UnitInfo]) -> str | None:
    """The town (乡镇/街道) a unit lies in, read off its path in the snapshot; a town is its own."""
    for code in reversed(codes_in_path(unit.path)):
        found = units.get(code)
        if found is not None and found.level == UnitLevel.town.value:
            return code
    return None


def compute_period(
    *,
    period: Period,
    scope: UnitInfo,
    rubric: Rubric,
    units: Mapping[str, UnitInfo],
    rounds: Mapping[str, Sequence[RoundLine]],
    figures: Mapping[str, UnitFigures],
    rules: RuleSet,
    previous: Mapping[tuple[str, str], Ranking],
    history: Iterable[Ranking] = (),
) -> PeriodResult:
    """Score, rank and list one period of a scope.

    `units`: the snapshot by code; `rounds`: each unit's closed round scores in the period; `figures`: the
    issues service's counts per unit; `previous`: the previous period's rankings by (parent, level), for
    the change; `history`: the earlier periods' list rankings, for streaks."""
    results: dict[str, UnitResult] = {}
    town_above: dict[str, str | None] = {}  # a unit's parent path → the town on it (siblings share theirs)

    def town_over(unit: UnitInfo) -> str | None:
        suffix = unit.code + "/"
        if unit.level == UnitLevel.town.value or not unit.path.endswith(suffix):
            return town_of(unit, units)
        above = unit.path[: -len(suffix)]
        if above not in town_above:
            town_above[above] = town_of(unit, units)  # the unit itself is no town: the nearest above it
        return town_above[above]

    for code in sorted(rounds):
        unit = units.get(code)
        if unit is None or unit.level not in (UnitLevel.village.value, UnitLevel.town.value):
            continue
        if unit.level == UnitLevel.town.value and rubric.town_score is TownScore.villages_mean:
            continue  # scored below, from its villages
        lines = tuple(rounds[code])
        by_kind: dict[Component, list[RoundLine]] = {}
        for line in lines:
            by_kind.setdefault(Component(line.kind), []).append(line)
        unit_figures = figures.get(code)
        inputs = PeriodInputs(
            rounds=by_kind,
            rectification_rate=unit_figures.rectification_rate if unit_figures else None,
            satisfaction_rating=unit_figures.satisfaction if unit_figures else None,
        )
        score = period_score(rubric, inputs)
        results[code] = UnitResult(unit, town_over(unit), score, score.score, lines, unit_figures)

    if rubric.town_score is TownScore.villages_mean:
        by_town: dict[str, list[Decimal]] = {}
        for result in results.values():
            if result.unit.level == UnitLevel.village.value and result.town_code and result.value is not None:
                by_town.setdefault(result.town_code, []).append(result.value)
        for town_code, values in sorted(by_town.items()):
            town = units[town_code]
            results[town_code] = UnitResult(
                town, town_code, None, mean_score(values), (), figures.get(town_code), len(values)
            )

    groups: list[RankingGroup] = []

    def rank(parent: UnitInfo, level: UnitLevel, members: list[UnitResult], for_lists: bool) -> None:
        scores = {r.unit.code: r.value for r in members if r.value is not None}
        if not scores:
            return
        before = previous.get((parent.code, level.value))
        ranking = rank_units(period, parent.code, level, scores, before)
        groups.append(RankingGroup(ranking, parent.name, for_lists))

    in_scope = [
        r for r in results.values() if r.unit.path.startswith(scope.path) and r.unit.code != scope.code
    ]
    villages = [r for r in in_scope if r.unit.level == UnitLevel.village.value]
    towns = [r for r in in_scope if r.unit.level == UnitLevel.town.value]
    rank(scope, UnitLevel.village, villages, True)
    rank(scope, UnitLevel.town, towns, True)
    villages_of: dict[str, list[UnitResult]] = {}
    for village in villages:
        if village.town_code and village.town_code != scope.code:
            villages_of.setdefault(village.town_code, []).append(village)
    for town_code in sorted(villages_of):
        rank(units[town_code], UnitLevel.village, villages_of[town_code], False)

    facts = {
        code: UnitFacts(UnitLevel.village, scope.code, unit_figures.overdue)
        for code, unit_figures in figures.items()
        if code in units and units[code].level == UnitLevel.village.value and unit_figures.overdue > 0
    }
    list_rankings = [group.ranking for group in groups if group.for_lists]
    evaluation = evaluate(rules, period, [*list_rankings, *history], facts)
    return PeriodResult(tuple(results[code] for code in sorted(results)), tuple(groups), evaluation, units)
