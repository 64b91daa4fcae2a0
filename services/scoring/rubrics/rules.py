"""The pure core of rubrics (考评办法): indicators, automatic deduction rules, component weights, and the
default 百分制 rubric.

Points are Decimals with at most two places (0.5 分 per issue is common); weights are integers in
per-mille (‰) so that "they add up to 100 %" is an exact integer sum. No I/O: the service stores a rubric
as rows or JSON, checks it with `rubric_problems`, and hands it to the scoring rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from services.kit.text import is_plain_text

__all__ = [
    "CATEGORY_CODE_PATTERN",
    "CODE_PATTERN",
    "DEFAULT_RUBRIC",
    "PERMILLE",
    "POINT",
    "Component",
    "ComponentWeight",
    "DeductionRule",
    "Indicator",
    "MissingComponents",
    "Rubric",
    "Severity",
    "TownScore",
    "is_points",
    "rubric_problems",
]

# An indicator's code: `liu-luan`, `la-ji`, `chang-xiao` (lower-case, digits, `-`; at most 32).
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
_CODE = re.compile(CODE_PATTERN)
# A category code as the issues service spells it (`luan-dui-fang`); matched case-insensitively there.
CATEGORY_CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$"
_CATEGORY_CODE = re.compile(CATEGORY_CODE_PATTERN)

POINT = Decimal("0.01")  # the finest step of points anywhere in scoring
PERMILLE = 1000  # all the weights of a rubric add up to exactly this
MAX_NAME = 50
MAX_INDICATORS = 100


class Severity(StrEnum):
    """How bad an issue is, as the issues service names it (its categories' severities)."""

    minor = "minor"  # 轻微
    normal = "normal"  # 一般
    serious = "serious"  # 严重


class Component(StrEnum):
    """What a period score is made of; the first four are round kinds (测评轮次), the last is a figure read
    from the issues service's statistics."""

    inspection = "inspection"  # 督查检查: the month's two inspection rounds (上旬, 下旬)
    covert = "covert"  # 暗访
    third_party = "third_party"  # 第三方评估
    satisfaction = "satisfaction"  # 群众满意度: survey rounds, or else the 1–5 rating of issue feedback
    rectification = "rectification"  # 整改率: fixed / found, 0–1


class MissingComponents(StrEnum):
    """What a period score does when a weighted component has no value for a unit (no 暗访 this month,
    no issues found so no rectification rate)."""

    # The components present share the whole weight in their own proportions: a month without a covert
    # visit is scored on the rest, as if that part were not in the rubric. The default.
    reweight = "reweight"
    # A missing component scores zero: whatever is not assessed is lost.
    zero = "zero"


class TownScore(StrEnum):
    """Where a town's score comes from."""

    own_rounds = "own_rounds"  # the town is scored by rounds of its own (unit level town)
    villages_mean = "villages_mean"  # the mean of its villages' period scores


@dataclass(frozen=True, slots=True)
class Indicator:
    """One scored item (考评指标) worth `max_points`; `auto_cap` bounds what automatic deductions may take
    from it (None: all of it). Whatever is deducted, an indicator never goes below zero (扣完为止)."""

    code: str
    name: str
    max_points: Decimal
    group: str
    auto_cap: Decimal | None = None

    @property
    def cap(self) -> Decimal:
        """The most that automatic deductions take from this indicator."""
        return self.max_points if self.auto_cap is None else self.auto_cap


@dataclass(frozen=True, slots=True)
class DeductionRule:
    """Each issue of `category` and `severity` found in a unit during a round deducts `points` from
    `indicator` (up to the indicator's cap)."""

    category: str
    severity: Severity
    indicator: str
    points: Decimal


@dataclass(frozen=True, slots=True)
class ComponentWeight:
    """A component's share of the period score in per-mille (600 = 60 %); `required` components must have
    a value for the unit to get a period score at all (a unit nobody inspected is not ranked)."""

    component: Component
    permille: int
    required: bool = False


@dataclass(frozen=True, slots=True)
class Rubric:
    """A version of a 考评办法. Its total (the sum of the indicators' points) is the base every round
    score starts from, and the scale every component is mapped onto."""

    code: str
    name: str
    version: int
    indicators: tuple[Indicator, ...]
    deductions: tuple[DeductionRule, ...]
    weights: tuple[ComponentWeight, ...]
    missing: MissingComponents = MissingComponents.reweight
    town_score: TownScore = TownScore.own_rounds
    # The sum of the indicators' points, added up once (a province's publication reads it per unit).
    _total: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_total", sum((indicator.max_points for indicator in self.indicators), Decimal(0))
        )

    @property
    def total(self) -> Decimal:
        return self._total

    def indicators_by_code(self) -> dict[str, Indicator]:
        return {indicator.code: indicator for indicator in self.indicators}

    def deduction_for(self, category: str, severity: Severity) -> DeductionRule | None:
        """The rule for an issue of this category and severity (category codes compare without case, as
        the issues service treats them); None when the rubric does not deduct for it."""
        wanted = category.lower()
        for rule in self.deductions:
            if rule.category.lower() == wanted and rule.severity is severity:
                return rule
        return None

    def weights_by_component(self) -> dict[Component, ComponentWeight]:
        return {weight.component: weight for weight in self.weights}


def is_points(value: Decimal) -> bool:
    """A finite, non-negative Decimal with at most two decimal places."""
    return value.is_finite() and value >= 0 and value == value.quantize(POINT)


def _name_ok(name: str) -> bool:
    return 1 <= len(name) <= MAX_NAME and is_plain_text(name) and name == name.strip()


def rubric_problems(rubric: Rubric) -> list[str]:
    """What is wrong with a rubric, as messages; empty when it may be stored and used."""
    problems: list[str] = []
    if not _CODE.fullmatch(rubric.code):
        problems.append(f"code {rubric.code!r} must be lower-case letters, digits and `-` (at most 32)")
    if not _name_ok(rubric.name):
        problems.append(f"name must be 1 to {MAX_NAME} characters of plain text")
    if rubric.version < 1:
        problems.append("version must be 1 or more")
    problems += _indicator_problems(rubric.indicators)
    problems += _deduction_problems(rubric.deductions, rubric.indicators_by_code())
    problems += _weight_problems(rubric.weights)
    return problems


def _indicator_problems(indicators: Sequence[Indicator]) -> list[str]:
    problems: list[str] = []
    if not indicators:
        problems.append("a rubric needs at least one indicator")
    if len(indicators) > MAX_INDICATORS:
        problems.append(f"at most {MAX_INDICATORS} indicators")
    seen: set[str] = set()
    for indicator in indicators:
        code = indicator.code
        if not _CODE.fullmatch(code):
            problems.append(
                f"indicator {code!r}: code must be lower-case letters, digits and `-` (at most 32)"
            )
        elif code in seen:
            problems.append(f"indicator {code!r} appears twice")
        seen.add(code)
        if not _name_ok(indicator.name) or not _name_ok(indicator.group):
            problems.append(
                f"indicator {code!r}: name and group must be 1 to {MAX_NAME} characters of plain text"
            )
        if not is_points(indicator.max_points) or indicator.max_points == 0:
            problems.append(f"indicator {code!r}: max points must be positive, in steps of 0.01")
        cap = indicator.auto_cap
        if cap is not None:
            if not is_points(cap):
                problems.append(f"indicator {code!r}: the automatic cap must be 0 or more, in steps of 0.01")
            elif is_points(indicator.max_points) and cap > indicator.max_points:
                problems.append(
                    f"indicator {code!r}: the automatic cap {cap} exceeds its {indicator.max_points} points"
                )
    return problems


def _deduction_problems(rules: Sequence[DeductionRule], indicators: Mapping[str, Indicator]) -> list[str]:
    problems: list[str] = []
    seen: set[tuple[str, Severity]] = set()
    for rule in rules:
        key = (rule.category.lower(), rule.severity)
        where = f"deduction {rule.category!r}/{rule.severity}"
        if not _CATEGORY_CODE.fullmatch(rule.category):
            problems.append(f"{where}: category must be a category code (letters, digits, `-`; at most 32)")
        elif key in seen:
            problems.append(f"{where} appears twice")  # an issue would be deducted twice
        seen.add(key)
        if not is_points(rule.points) or rule.points == 0:
            problems.append(f"{where}: points per issue must be positive, in steps of 0.01")
        indicator = indicators.get(rule.indicator)
        if indicator is None:
            problems.append(f"{where}: no indicator {rule.indicator!r}")
        elif is_points(rule.points) and is_points(indicator.cap) and rule.points > indicator.cap:
            problems.append(
                f"{where}: {rule.points} points per issue do not fit indicator {rule.indicator!r}"
                f" (automatic deductions capped at {indicator.cap})"
            )
    return problems


def _weight_problems(weights: Sequence[ComponentWeight]) -> list[str]:
    problems: list[str] = []
    seen: set[Component] = set()
    for weight in weights:
        if weight.component in seen:
            problems.append(f"component {weight.component} is weighted twice")
        seen.add(weight.component)
        if not 0 < weight.permille <= PERMILLE:
            problems.append(
                f"component {weight.component}: weight must be 1‰ to 1000‰ (leave out what weighs 0)"
            )
    total = sum(weight.permille for weight in weights)
    if total != PERMILLE:
        problems.append(f"weights add up to {total}‰, not 1000‰ (100 %)")
    return problems


# ---- the default 百分制 rubric, built from the categories the issues service ships ----

# The issues service's shipped category codes (its categories migration) by the indicator they count
# against. Scoring never imports the issues service: the codes are the contract between the two.
_CATEGORY_INDICATORS: tuple[tuple[str, str], ...] = (
    ("luan-dui-fang", "liu-luan"),  # 乱堆乱放
    ("luan-reng-dao", "liu-luan"),  # 乱扔乱倒
    ("luan-da-jian", "liu-luan"),  # 乱搭乱建
    ("luan-ting-fang", "liu-luan"),  # 乱停乱放
    ("luan-tie-hua", "liu-luan"),  # 乱贴乱画
    ("luan-pai-fang", "liu-luan"),  # 乱排乱放
    ("xiao-guang-gao", "liu-luan"),  # 小广告: judged with 乱贴乱画
    ("sheng-huo-la-ji", "la-ji"),  # 生活垃圾
    ("jian-zhu-la-ji", "la-ji"),  # 建筑垃圾
    ("wu-shui-hei-chou", "wu-shui"),  # 污水/黑臭水体
    ("hu-ce-gai-ce", "ce-suo"),  # 户厕/改厕
    ("ting-yuan", "ting-yuan"),  # 庭院
    ("dao-lu-yan-xian", "dao-lu"),  # 道路沿线
    ("lv-hua-luo-tu", "lv-hua"),  # 绿化/裸土
    ("chu-qin-fen-wu", "chu-qin"),  # 畜禽粪污
)

# Per issue: 轻微 0.5, 一般 1, 严重 2 points; 乱搭乱建 and 黑臭水体 weigh more when serious.
_POINTS = {Severity.minor: Decimal("0.5"), Severity.normal: Decimal(1), Severity.serious: Decimal(2)}
_SERIOUS_EXTRA = {"luan-da-jian": Decimal(3), "wu-shui-hei-chou": Decimal(3)}


def _default_rubric() -> Rubric:
    def indicator(code: str, name: str, points: int, group: str, cap: int) -> Indicator:
        return Indicator(code, name, Decimal(points), group, Decimal(cap))

    indicators = (
        indicator("liu-luan", "六乱整治", 30, "村容村貌", 20),
        indicator("la-ji", "垃圾治理", 20, "环境卫生", 15),
        indicator("wu-shui", "污水治理", 10, "基础设施", 8),
        indicator("ce-suo", "厕所革命", 10, "基础设施", 8),
        indicator("ting-yuan", "庭院环境", 10, "村容村貌", 8),
        indicator("dao-lu", "道路沿线", 5, "村容村貌", 4),
        indicator("lv-hua", "绿化美化", 5, "村容村貌", 4),
        indicator("chu-qin", "畜禽粪污", 5, "环境卫生", 4),
        # Scored by the inspectors only (保洁队伍, 制度上墙, 台账): no issue category deducts from it.
        indicator("chang-xiao", "长效管理", 5, "长效机制", 0),
    )
    deductions = tuple(
        DeductionRule(
            category,
            severity,
            target,
            _SERIOUS_EXTRA.get(category, points) if severity is Severity.serious else points,
        )
        for category, target in _CATEGORY_INDICATORS
        for severity, points in _POINTS.items()
    )
    weights = (
        ComponentWeight(Component.inspection, 600, required=True),
        ComponentWeight(Component.covert, 200),
        ComponentWeight(Component.satisfaction, 100),
        ComponentWeight(Component.rectification, 100),
    )
    return Rubric("default", "农村人居环境整治考评办法（百分制）", 1, indicators, deductions, weights)


DEFAULT_RUBRIC = _default_rubric()
