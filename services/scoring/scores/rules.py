"""The pure core of scores: a unit's round score with every deduction behind it, its period score from
the components by the rubric's weights, and rankings within a parent region.

Round score (测评得分) = the rubric's total − the inspector's item deductions − the automatic deductions
for the issues found in the unit during the round. Per indicator, item deductions count first, then the
automatic ones in the order of their issue codes, each up to what is left: automatic deductions never take
more than the indicator's cap, and nothing takes an indicator below zero (扣完为止). So a round score stays
within [0, total], and the breakdown shows, for every deduction, what it would be and what counted.

Period score (综合得分) = Σ weight × component value, every component on the rubric's scale [0, total]:
rounds of one kind are averaged first (each round scaled from its own maximum), the rectification rate
(0–1) counts `rate × total`, a satisfaction rating (1–5) counts `(rating − 1) / 4 × total` (1 is nothing,
5 is everything). A missing component is handled as the rubric says (`MissingComponents`): by default the
components present share the whole weight; a `required` component missing leaves the unit unscored.

Ranking (排名) is competition ranking on the published scores (two places): equal scores share a rank and
the next rank skips (1, 2, 2, 4). No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Protocol

from services.scoring.levels import UnitLevel
from services.scoring.periods import Period
from services.scoring.rubrics.rules import (
    PERMILLE,
    POINT,
    Component,
    Indicator,
    MissingComponents,
    Rubric,
    Severity,
    is_points,
)

__all__ = [
    "ROUND_COMPONENTS",
    "ComponentValue",
    "Deduction",
    "DeductionSource",
    "Finding",
    "IndicatorResult",
    "ItemDeduction",
    "PeriodInputs",
    "PeriodScore",
    "RankedUnit",
    "Ranking",
    "RoundScore",
    "Scored",
    "ScoringError",
    "competition_ranks",
    "deduction_for_score",
    "mean_score",
    "period_score",
    "publishable",
    "rank_units",
    "rectification_points",
    "round_score",
    "satisfaction_points",
    "scorecard_problems",
]

ZERO = Decimal(0)
# Components that come from rounds (测评轮次 of that kind); rectification is a figure, never a round.
ROUND_COMPONENTS = frozenset(
    {Component.inspection, Component.covert, Component.third_party, Component.satisfaction}
)


class ScoringError(ValueError):
    """Inputs the rules cannot score (an unknown indicator, a negative deduction, a rate above 1)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def publishable(value: Decimal) -> Decimal:
    """A score as it is published and ranked: two places, halves rounded up (四舍五入)."""
    return value.quantize(POINT, rounding=ROUND_HALF_UP)


# ---- a round score ----


class DeductionSource(StrEnum):
    item = "item"  # the inspector's own deduction on the scorecard (扣分项)
    automatic = "automatic"  # by the rubric's rules, for an issue found in the unit during the round


@dataclass(frozen=True, slots=True)
class ItemDeduction:
    """A deduction the inspector writes on a scorecard against one indicator."""

    indicator: str
    points: Decimal
    note: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """An issue found in the unit during the round, as the issues service lists it."""

    code: str  # 370282-2026-001104
    category: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class Deduction:
    """One line of a breakdown: `points` is what the rule or the inspector asked for, `counted` what was
    taken after the caps (the same, less, or 0 once the indicator is exhausted)."""

    indicator: str
    source: DeductionSource
    points: Decimal
    counted: Decimal
    issue_code: str | None = None  # the issue behind an automatic deduction
    category: str | None = None
    severity: Severity | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    code: str
    max_points: Decimal
    deducted: Decimal

    @property
    def score(self) -> Decimal:
        return self.max_points - self.deducted


@dataclass(frozen=True, slots=True)
class RoundScore:
    """A unit's score in one round and everything behind it; `unmatched` names the issues found for which
    the rubric has no deduction rule (listed, so that nothing is silently left out)."""

    score: Decimal
    max_score: Decimal
    indicators: tuple[IndicatorResult, ...]
    deductions: tuple[Deduction, ...]
    unmatched: tuple[str, ...] = ()

    @property
    def deducted(self) -> Decimal:
        return self.max_score - self.score


def scorecard_problems(rubric: Rubric, items: Sequence[ItemDeduction]) -> list[str]:
    """What is wrong with a scorecard's item deductions, as messages; empty when it may be scored."""
    indicators = rubric.indicators_by_code()
    problems: list[str] = []
    for number, item in enumerate(items, 1):
        indicator = indicators.get(item.indicator)
        if indicator is None:
            problems.append(f"item {number}: the rubric has no indicator {item.indicator!r}")
        elif not is_points(item.points):
            problems.append(f"item {number}: points must be 0 or more, in steps of 0.01")
        elif item.points > indicator.max_points:
            problems.append(
                f"item {number}: {item.points} points do not fit indicator {item.indicator!r}"
                f" ({indicator.max_points} points)"
            )
    return problems


def deduction_for_score(indicator: Indicator, score: Decimal, note: str = "") -> ItemDeduction:
    """A scorecard that gives an item's score (得分) rather than its deduction: the deduction it means."""
    if not is_points(score) or score > indicator.max_points:
        raise ScoringError(
            [f"a score of {indicator.code!r} must be 0 to {indicator.max_points}, in steps of 0.01"]
        )
    return ItemDeduction(indicator.code, indicator.max_points - score, note)


def round_score(rubric: Rubric, items: Sequence[ItemDeduction], findings: Iterable[Finding]) -> RoundScore:
    """A unit's score in a round: the rubric's total less the item deductions, less the rubric's deductions
    for the issues found, each capped per indicator, never below 0 (ScoringError on bad items or an issue
    listed twice)."""
    problems = scorecard_problems(rubric, items)
    found = sorted(findings, key=lambda finding: finding.code)
    codes = [finding.code for finding in found]
    if len(set(codes)) != len(codes):
        problems.append("an issue is listed twice among the findings")
    if problems:
        raise ScoringError(problems)

    deducted: dict[str, Decimal] = {indicator.code: ZERO for indicator in rubric.indicators}
    automatic: dict[str, Decimal] = dict(deducted)
    lines: list[Deduction] = []
    indicators = rubric.indicators_by_code()
    for item in items:
        room = indicators[item.indicator].max_points - deducted[item.indicator]
        counted = min(item.points, room)
        deducted[item.indicator] += counted
        lines.append(Deduction(item.indicator, DeductionSource.item, item.points, counted, note=item.note))
    unmatched: list[str] = []
    for finding in found:
        rule = rubric.deduction_for(finding.category, finding.severity)
        if rule is None:
            unmatched.append(finding.code)
            continue
        indicator = indicators[rule.indicator]
        room = min(indicator.cap - automatic[indicator.code], indicator.max_points - deducted[indicator.code])
        counted = max(ZERO, min(rule.points, room))
        automatic[indicator.code] += counted
        deducted[indicator.code] += counted
        lines.append(
            Deduction(
                indicator.code,
                DeductionSource.automatic,
                rule.points,
                counted,
                issue_code=finding.code,
                category=finding.category,
                severity=finding.severity,
            )
        )
    results = tuple(
        IndicatorResult(indicator.code, indicator.max_points, deducted[indicator.code])
        for indicator in rubric.indicators
    )
    total = rubric.total
    score = total - sum((result.deducted for result in results), ZERO)
    return RoundScore(score, total, results, tuple(lines), tuple(unmatched))


# ---- a period score ----


class Scored(Protocol):
    """Anything with a score out of a maximum: a RoundScore, or a stored round result."""

    @property
    def score(self) -> Decimal: ...

    @property
    def max_score(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class PeriodInputs:
    """What a unit has in a period: its round scores by kind, the rectification rate (整改率, 0–1) and the
    satisfaction rating (满意度, 1–5) read from the issues service; None where there is none."""

    rounds: Mapping[Component, Sequence[Scored]] = field(default_factory=dict)
    rectification_rate: Decimal | None = None
    satisfaction_rating: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ComponentValue:
    """One component of a period score: its weight, its value on the rubric's scale (None: missing) and
    how many rounds it averages."""

    component: Component
    permille: int
    value: Decimal | None
    rounds: int = 0


@dataclass(frozen=True, slots=True)
class PeriodScore:
    """A unit's period score (None when it cannot be scored, with the reason) and its components."""

    score: Decimal | None
    max_score: Decimal
    components: tuple[ComponentValue, ...]
    unscored_reason: str | None = None

    @property
    def missing(self) -> tuple[Component, ...]:
        return tuple(value.component for value in self.components if value.value is None)


def rectification_points(rate: Decimal, total: Decimal) -> Decimal:
    """A rectification rate of 0–1 on a scale of `total` points: 92 % of 100 is 92."""
    if not (rate.is_finite() and 0 <= rate <= 1):
        raise ScoringError([f"a rectification rate is 0 to 1, not {rate}"])
    return rate * total


def satisfaction_points(rating: Decimal, total: Decimal) -> Decimal:
    """A satisfaction rating of 1–5 on a scale of `total` points, linearly: 1 → 0, 3 → half, 5 → all."""
    if not (rating.is_finite() and 1 <= rating <= 5):
        raise ScoringError([f"a satisfaction rating is 1 to 5, not {rating}"])
    return (rating - 1) / 4 * total


def _scaled(round_: Scored, total: Decimal) -> Decimal:
    if not (is_points(round_.score) and round_.max_score > 0 and round_.score <= round_.max_score):
        raise ScoringError(
            [f"a round score must be 0 to its maximum, not {round_.score} of {round_.max_score}"]
        )
    return round_.score if round_.max_score == total else round_.score / round_.max_score * total


def _component_value(
    total: Decimal, component: Component, inputs: PeriodInputs
) -> tuple[Decimal | None, int]:
    rounds = inputs.rounds.get(component, ())
    if rounds:
        values = [_scaled(round_, total) for round_ in rounds]
        return sum(values, ZERO) / len(values), len(values)
    if component is Component.rectification and inputs.rectification_rate is not None:
        return rectification_points(inputs.rectification_rate, total), 0
    # A survey round is the satisfaction component when there is one; the issues' feedback rating otherwise.
    if component is Component.satisfaction and inputs.satisfaction_rating is not None:
        return satisfaction_points(inputs.satisfaction_rating, total), 0
    return None, 0


def period_score(rubric: Rubric, inputs: PeriodInputs) -> PeriodScore:
    """A unit's period score: its components by the rubric's weights, on the rubric's scale, to two places.

    Rounds of a kind the rubric does not weigh are not counted. A missing component is reweighted away or
    counts 0, as the rubric says; a missing `required` component, or no component at all, leaves the unit
    unscored (score None: it is not ranked)."""
    if Component.rectification in inputs.rounds:
        raise ScoringError(["the rectification rate is a figure, not a round"])
    total = rubric.total  # added up once per rubric, read once per unit
    values: list[ComponentValue] = []
    required_missing: list[Component] = []
    weighted, present_permille = ZERO, 0
    for weight in rubric.weights:
        value, count = _component_value(total, weight.component, inputs)
        values.append(ComponentValue(weight.component, weight.permille, value, count))
        if value is None:
            if weight.required:
                required_missing.append(weight.component)
        else:
            weighted += weight.permille * value
            present_permille += weight.permille
    components = tuple(values)
    if required_missing:
        reason = "no " + ", ".join(required_missing) + " in the period"
        return PeriodScore(None, total, components, reason)
    if not present_permille:
        return PeriodScore(None, total, components, "nothing scored in the period")
    if rubric.missing is MissingComponents.reweight:
        score = weighted / present_permille
    else:
        score = weighted / PERMILLE
    return PeriodScore(min(publishable(score), total), total, components)


def mean_score(scores: Iterable[Decimal]) -> Decimal | None:
    """The mean of scores to two places (a town scored from its villages); None of nothing."""
    values = list(scores)
    if not values:
        return None
    return publishable(sum(values, ZERO) / len(values))


# ---- rankings ----


@dataclass(frozen=True, slots=True)
class RankedUnit:
    """A unit's place: `change` is previous rank − rank (+2: two places up), None for a unit that was not
    in the previous ranking."""

    unit: str
    score: Decimal
    rank: int
    previous_rank: int | None = None
    change: int | None = None


@dataclass(frozen=True, slots=True)
class Ranking:
    """The units of one level within one parent region for one period, best first (equal scores in the
    order of their codes)."""

    period: Period
    parent: str
    level: UnitLevel
    entries: tuple[RankedUnit, ...]

    @property
    def size(self) -> int:
        return len(self.entries)

    def entry(self, unit: str) -> RankedUnit | None:
        for entry in self.entries:
            if entry.unit == unit:
                return entry
        return None

    def places_from_bottom(self) -> dict[str, int]:
        """Each unit's place counted from the bottom, ties ranked alike: 1 + how many scored lower."""
        return competition_ranks({entry.unit: -entry.score for entry in self.entries})


def competition_ranks(scores: Mapping[str, Decimal]) -> dict[str, int]:
    """Each unit's rank, higher scores first: 1 + how many units scored strictly more (1, 2, 2, 4)."""
    ordered = sorted(scores.values(), reverse=True)
    first_place: dict[Decimal, int] = {}
    for place, score in enumerate(ordered, 1):
        first_place.setdefault(score, place)
    return {unit: first_place[score] for unit, score in scores.items()}


def rank_units(
    period: Period,
    parent: str,
    level: UnitLevel,
    scores: Mapping[str, Decimal],
    previous: Ranking | None = None,
) -> Ranking:
    """The ranking of the units' scores (as published: two places) with each unit's change since
    `previous`, an earlier ranking of the same parent and level (None: no change for anyone)."""
    if previous is not None and (
        previous.parent != parent
        or previous.level is not level
        or previous.period.kind is not period.kind
        or not previous.period < period
    ):
        raise ValueError("the previous ranking must be an earlier one of the same parent, level and kind")
    published = {unit: publishable(score) for unit, score in scores.items()}
    before = {entry.unit: entry.rank for entry in previous.entries} if previous is not None else {}
    # Best first, equal scores in the order of their codes: each unit's rank is the place of the first
    # unit with its score (competition ranking, as `competition_ranks` gives), worked out in one pass.
    entries = []
    rank, last = 0, None
    for place, (unit, score) in enumerate(sorted(published.items(), key=_best_first), 1):
        if score != last:
            rank, last = place, score
        previous_rank = before.get(unit)
        change = None if previous_rank is None else previous_rank - rank
        entries.append(RankedUnit(unit, score, rank, previous_rank, change))
    return Ranking(period, parent, level, tuple(entries))


def _best_first(item: tuple[str, Decimal]) -> tuple[Decimal, str]:
    return -item[1], item[0]
