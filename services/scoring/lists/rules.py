"""The pure core of lists and escalations: red and black lists (红黑榜), praise and criticism, 末位管理, and
what staying on them brings (约谈, 书面检查, 组织处理, 上报), as rules that are data.

`SEED_RULES` are the seeds' rules as presets; a county edits them (`dataclasses.replace`) and checks its
version with `rules_problems`. `evaluate` applies a rule set to one period: from the period's rankings
(and the earlier ones, for streaks) and facts such as overdue issues, it says who goes on which list and
which escalations fire, each with its reason and figures. No I/O.

How the rules read the seeds' words, where the words leave room:

- Places are competition ranks (1, 2, 2, 4). "前N名" is a rank of N or better; "后N名" is a place of N or
  better counted from the bottom, where a unit's place from the bottom is 1 + how many scored strictly
  less. By default a tie at the boundary takes in every unit of the tie (`BoundaryTies.include`: if three
  share the 10th place, all three are "in the top 10", and the list is longer than N); `exclude` leaves
  out a tie that does not fit whole.
- "低于80分" is strictly below: exactly 80 is not below 80. Conditions combine with AND on the whole
  ranking: "后10名、低于80分" is the units that are both in the bottom 10 and below 80, never "the bottom
  10 of those below 80".
- A unit a bad list takes (black list, criticism, 末位管理) is not also on a good list of the same ranking:
  in a small ranking "best N" and "worst N" overlap, and nobody is praised and criticised at once.
- "连续N个月" is N consecutive periods of the rule's cadence ending with the evaluated one, in the same
  parent's ranking; a period without a ranking, or without the unit in it, breaks the streak. Streaks are
  recomputed from the earlier rankings with the rules being applied. A rule fires in every period its
  streak reaches its threshold or more (a fourth month on the black list is still three running); a rule
  that `supersedes` others removes theirs for the same unit and period (组织处理 replaces the 约谈).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import NamedTuple

from services.kit.text import is_plain_text
from services.scoring.levels import UnitLevel
from services.scoring.periods import Period, PeriodKind
from services.scoring.rubrics.rules import PERMILLE, is_points
from services.scoring.scores.rules import RankedUnit, Ranking

__all__ = [
    "SEED_RULES",
    "BoundaryTies",
    "End",
    "Escalation",
    "EscalationRule",
    "Evaluation",
    "ListEntry",
    "ListRule",
    "Measure",
    "OnList",
    "Overdue",
    "Placed",
    "Polarity",
    "RuleSet",
    "Selection",
    "Trigger",
    "UnitFacts",
    "evaluate",
    "lists_of",
    "rules_problems",
    "select",
]

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,47}$"
_CODE = re.compile(CODE_PATTERN)
MAX_NAME = 50

Figures = Mapping[str, int | str]


class End(StrEnum):
    top = "top"  # 前N名: the best
    bottom = "bottom"  # 后N名: the worst


class BoundaryTies(StrEnum):
    """What a tie across the Nth place does."""

    include = "include"  # every unit of the tie is in (the list may be longer than N)
    exclude = "exclude"  # a tie that does not fit whole is out (the list may be shorter than N)


class Polarity(StrEnum):
    good = "good"  # 红榜, 通报表扬
    bad = "bad"  # 黑榜, 通报批评, 末位管理


class Measure(StrEnum):
    """What an escalation brings."""

    interview = "interview"  # 约谈
    written_self_criticism = "written_self_criticism"  # 书面检查
    statement = "statement"  # 表态发言
    public_exposure = "public_exposure"  # 公开曝光
    organisational_handling = "organisational_handling"  # 组织处理
    key_management = "key_management"  # 重点管理
    report_upward = "report_upward"  # 上报 (列为市重点管理)


MEASURE_NAMES: Mapping[Measure, str] = {
    Measure.interview: "约谈",
    Measure.written_self_criticism: "书面检查",
    Measure.statement: "表态发言",
    Measure.public_exposure: "公开曝光",
    Measure.organisational_handling: "组织处理",
    Measure.key_management: "重点管理",
    Measure.report_upward: "上报上级",
}

_STREAK_UNIT: Mapping[PeriodKind, str] = {
    PeriodKind.month: "个月",
    PeriodKind.quarter: "个季度",
    PeriodKind.year: "年",
}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which units of a ranking: the best or worst `count`, or a `share` in per-mille of the ranked units
    (rounded half up, at least one), optionally only those scoring `below` (strictly) or `at_least` a mark."""

    end: End
    count: int | None = None
    share_permille: int | None = None
    below: Decimal | None = None
    at_least: Decimal | None = None
    ties: BoundaryTies = BoundaryTies.include

    def places(self, size: int) -> int:
        """How many places the selection spans in a ranking of `size` units."""
        if self.count is not None:
            return self.count
        share = Decimal(self.share_permille or 0) * size / PERMILLE
        return max(1, int(share.to_integral_value(rounding=ROUND_HALF_UP))) if size else 0

    def describe(self) -> str:
        """The selection in the words of a 通报: 排名后10名且低于80分."""
        if self.share_permille is not None:
            head = f"排名{'前' if self.end is End.top else '后'}{Decimal(self.share_permille) / 10:f}%"
        elif self.count == 1:
            head = "排名第一" if self.end is End.top else "排名最后一位"
        else:
            head = f"排名{'前' if self.end is End.top else '后'}{self.count}名"
        if self.below is not None:
            head += f"且低于{self.below}分"
        if self.at_least is not None:
            head += f"且不低于{self.at_least}分"
        return head


@dataclass(frozen=True, slots=True)
class ListRule:
    """A list published every period of `cadence` for the rankings of units of `level`."""

    code: str
    name: str
    cadence: PeriodKind
    level: UnitLevel
    polarity: Polarity
    selection: Selection


@dataclass(frozen=True, slots=True)
class OnList:
    """Fires for a unit on the list `list_code` (of the same cadence and level)."""

    list_code: str


@dataclass(frozen=True, slots=True)
class Placed:
    """Fires for a unit the selection picks from its ranking, whether or not a list is published."""

    selection: Selection


@dataclass(frozen=True, slots=True)
class Overdue:
    """Fires for a unit with at least `at_least` issues past their deadline and not struck off (未按期销号)."""

    at_least: int = 1


Trigger = OnList | Placed | Overdue


@dataclass(frozen=True, slots=True)
class EscalationRule:
    """When `trigger` holds for a unit in `streak` consecutive periods of `cadence` (this one the last), the
    `measures` apply to the `addressees` (who is interviewed, who answers)."""

    code: str
    name: str
    cadence: PeriodKind
    level: UnitLevel
    trigger: Trigger
    measures: tuple[Measure, ...]
    addressees: tuple[str, ...]
    streak: int = 1
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSet:
    lists: tuple[ListRule, ...]
    escalations: tuple[EscalationRule, ...]


@dataclass(frozen=True, slots=True)
class UnitFacts:
    """What the issues service says of a unit at the period's end."""

    level: UnitLevel
    parent: str | None = None
    overdue_issues: int = 0  # open, past the deadline, not struck off


@dataclass(frozen=True, slots=True)
class ListEntry:
    list_code: str
    list_name: str
    polarity: Polarity
    period: Period
    parent: str
    unit: str
    rank: int
    size: int
    score: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class Escalation:
    """One rule firing for one unit in one period: the record a publication writes."""

    rule: str
    name: str
    period: Period
    unit: str
    parent: str | None
    streak: int
    measures: tuple[Measure, ...]
    addressees: tuple[str, ...]
    reason: str
    figures: Figures = field(default_factory=dict)


class Evaluation(NamedTuple):
    lists: tuple[ListEntry, ...]
    escalations: tuple[Escalation, ...]


# ---- checking a rule set ----


def _selection_problems(where: str, selection: Selection) -> list[str]:
    problems: list[str] = []
    if (selection.count is None) == (selection.share_permille is None):
        problems.append(f"{where}: give either a count or a share")
    if selection.count is not None and selection.count < 1:
        problems.append(f"{where}: the count must be 1 or more")
    if selection.share_permille is not None and not 0 < selection.share_permille <= PERMILLE:
        problems.append(f"{where}: the share must be 1‰ to 1000‰")
    for mark in (selection.below, selection.at_least):
        if mark is not None and not is_points(mark):
            problems.append(f"{where}: a mark must be 0 or more, in steps of 0.01")
    return problems


def _named(code: str, name: str) -> bool:
    return bool(_CODE.fullmatch(code)) and 1 <= len(name) <= MAX_NAME and is_plain_text(name)


def rules_problems(rules: RuleSet) -> list[str]:
    """What is wrong with a rule set, as messages; empty when it may be stored and applied."""
    problems: list[str] = []
    lists: dict[str, ListRule] = {}
    for rule in rules.lists:
        where = f"list {rule.code!r}"
        if not _named(rule.code, rule.name):
            problems.append(
                f"{where}: a code of lower-case letters, digits and `-`, a name of 1 to {MAX_NAME}"
            )
        if rule.code in lists:
            problems.append(f"{where} appears twice")
        lists[rule.code] = rule
        problems += _selection_problems(where, rule.selection)
    escalations = {rule.code: rule for rule in rules.escalations}
    seen: set[str] = set()
    for escalation in rules.escalations:
        where = f"escalation {escalation.code!r}"
        if not _named(escalation.code, escalation.name):
            problems.append(
                f"{where}: a code of lower-case letters, digits and `-`, a name of 1 to {MAX_NAME}"
            )
        if escalation.code in seen:
            problems.append(f"{where} appears twice")
        seen.add(escalation.code)
        if escalation.streak < 1:
            problems.append(f"{where}: the streak must be 1 or more")
        if not escalation.measures or len(set(escalation.measures)) != len(escalation.measures):
            problems.append(f"{where}: name each measure once, at least one")
        if (
            not all(1 <= len(a) <= MAX_NAME and is_plain_text(a) for a in escalation.addressees)
            or not escalation.addressees
        ):
            problems.append(f"{where}: name who answers (1 to {MAX_NAME} characters each)")
        trigger = escalation.trigger
        if isinstance(trigger, OnList):
            target = lists.get(trigger.list_code)
            if target is None:
                problems.append(f"{where}: no list {trigger.list_code!r}")
            elif target.cadence is not escalation.cadence or target.level is not escalation.level:
                problems.append(f"{where}: list {trigger.list_code!r} is of another cadence or level")
        elif isinstance(trigger, Placed):
            problems += _selection_problems(where, trigger.selection)
        else:
            if trigger.at_least < 1:
                problems.append(f"{where}: at least 1 overdue issue")
            if escalation.streak != 1:
                problems.append(f"{where}: overdue issues are judged in one period only (streak 1)")
        for other in escalation.supersedes:
            superseded = escalations.get(other)
            if other == escalation.code or superseded is None:
                problems.append(f"{where}: supersedes no rule {other!r}")
            elif superseded.cadence is not escalation.cadence or superseded.level is not escalation.level:
                problems.append(f"{where}: supersedes {other!r} of another cadence or level")
    return problems


# ---- applying it ----


def select(selection: Selection, ranking: Ranking) -> tuple[RankedUnit, ...]:
    """The units of a ranking a selection picks, best first (see the module's note on ties and marks)."""
    limit = selection.places(ranking.size)
    if selection.end is End.top:
        places = {entry.unit: entry.rank for entry in ranking.entries}
    else:
        places = ranking.places_from_bottom()
    tied: dict[Decimal, int] = {}
    for entry in ranking.entries:
        tied[entry.score] = tied.get(entry.score, 0) + 1
    chosen = []
    for entry in ranking.entries:
        place = places[entry.unit]
        last_place_of_tie = place + tied[entry.score] - 1
        inside = place <= limit if selection.ties is BoundaryTies.include else last_place_of_tie <= limit
        if not inside:
            continue
        if selection.below is not None and not entry.score < selection.below:
            continue
        if selection.at_least is not None and not entry.score >= selection.at_least:
            continue
        chosen.append(entry)
    return tuple(chosen)


def lists_of(rules: RuleSet, ranking: Ranking) -> dict[str, tuple[RankedUnit, ...]]:
    """The lists of one ranking by list code: every list rule of its cadence and level, a unit on a bad
    list taken off the good ones."""
    applicable = [
        rule for rule in rules.lists if rule.cadence is ranking.period.kind and rule.level is ranking.level
    ]
    picked = {rule.code: select(rule.selection, ranking) for rule in applicable}
    on_bad = {
        entry.unit for rule in applicable if rule.polarity is Polarity.bad for entry in picked[rule.code]
    }
    return {
        rule.code: tuple(
            entry for entry in picked[rule.code] if rule.polarity is Polarity.bad or entry.unit not in on_bad
        )
        for rule in applicable
    }


class _History:
    """The rankings by (period, parent, level), with each one's lists worked out once."""

    def __init__(self, rules: RuleSet, rankings: Iterable[Ranking]) -> None:
        self.rules = rules
        self.rankings: dict[tuple[Period, str, UnitLevel], Ranking] = {}
        for ranking in rankings:
            key = (ranking.period, ranking.parent, ranking.level)
            if key in self.rankings:
                raise ValueError(f"two rankings of {ranking.parent} ({ranking.level}) for {ranking.period}")
            self.rankings[key] = ranking
        self._lists: dict[tuple[Period, str, UnitLevel], dict[str, tuple[RankedUnit, ...]]] = {}
        self._placed: dict[tuple[Period, str, UnitLevel, Selection], set[str]] = {}

    def holds(self, trigger: OnList | Placed, ranking: Ranking, unit: str) -> bool:
        key = (ranking.period, ranking.parent, ranking.level)
        if isinstance(trigger, OnList):
            if key not in self._lists:
                self._lists[key] = lists_of(self.rules, ranking)
            return any(entry.unit == unit for entry in self._lists[key].get(trigger.list_code, ()))
        placed_key = (*key, trigger.selection)
        if placed_key not in self._placed:
            self._placed[placed_key] = {entry.unit for entry in select(trigger.selection, ranking)}
        return unit in self._placed[placed_key]

    def streak(self, trigger: OnList | Placed, ranking: Ranking, unit: str) -> int:
        """In how many consecutive periods up to the ranking's the trigger held for the unit."""
        count = 0
        period = ranking.period
        while True:
            earlier = self.rankings.get((period, ranking.parent, ranking.level))
            # Membership is looked up in sets worked out once per ranking: no scan per unit.
            if earlier is None or not self.holds(trigger, earlier, unit):
                return count
            count += 1
            period = period.previous()


def _figures(ranking: Ranking, entry: RankedUnit, streak: int) -> dict[str, int | str]:
    return {
        "rank": entry.rank,
        "size": ranking.size,
        "place_from_bottom": ranking.places_from_bottom()[entry.unit],
        "score": f"{entry.score:f}",
        "streak": streak,
    }


def _ranked_reason(
    rule: EscalationRule, list_names: Mapping[str, str], ranking: Ranking, entry: RankedUnit, streak: int
) -> str:
    trigger = rule.trigger
    if isinstance(trigger, OnList):
        what = f"列入{list_names.get(trigger.list_code, trigger.list_code)}"
    else:
        assert isinstance(trigger, Placed)
        what = trigger.selection.describe()
    running = f"连续{streak}{_STREAK_UNIT[rule.cadence]}" if streak > 1 else ranking.period.label
    return f"{running}{what}（第{entry.rank}名，共{ranking.size}个，{entry.score:f}分）"


def evaluate(
    rules: RuleSet,
    period: Period,
    rankings: Iterable[Ranking],
    facts: Mapping[str, UnitFacts] | None = None,
) -> Evaluation:
    """The lists and escalations of `period`: `rankings` holds the period's rankings and the earlier ones
    (for streaks), `facts` what the issues service says per unit. Rules of another cadence than the
    period's are not applied; the result is in a stable order (rule, parent, rank, unit)."""
    list_names = {rule.code: rule.name for rule in rules.lists}
    history = _History(rules, rankings)
    current = sorted(
        (r for key, r in history.rankings.items() if key[0] == period),
        key=lambda r: (r.level, r.parent),
    )
    entries: list[ListEntry] = []
    for ranking in current:
        lists = lists_of(rules, ranking)
        for rule in rules.lists:
            for entry in lists.get(rule.code, ()):
                entries.append(
                    ListEntry(
                        rule.code,
                        rule.name,
                        rule.polarity,
                        period,
                        ranking.parent,
                        entry.unit,
                        entry.rank,
                        ranking.size,
                        entry.score,
                        f"{period.label}{rule.selection.describe()}（第{entry.rank}名，共{ranking.size}个，"
                        f"{entry.score:f}分）",
                    )
                )

    fired: list[Escalation] = []
    for escalation_rule in rules.escalations:
        if escalation_rule.cadence is not period.kind:
            continue
        trigger = escalation_rule.trigger
        if isinstance(trigger, Overdue):
            for unit, unit_facts in sorted((facts or {}).items()):
                if (
                    unit_facts.level is escalation_rule.level
                    and unit_facts.overdue_issues >= trigger.at_least
                ):
                    fired.append(
                        Escalation(
                            escalation_rule.code,
                            escalation_rule.name,
                            period,
                            unit,
                            unit_facts.parent,
                            1,
                            escalation_rule.measures,
                            escalation_rule.addressees,
                            f"{unit_facts.overdue_issues}个问题未按期销号",
                            {"overdue_issues": unit_facts.overdue_issues, "streak": 1},
                        )
                    )
            continue
        for ranking in current:
            if ranking.level is not escalation_rule.level:
                continue
            for entry in ranking.entries:
                streak = history.streak(trigger, ranking, entry.unit)
                if streak >= escalation_rule.streak:
                    fired.append(
                        Escalation(
                            escalation_rule.code,
                            escalation_rule.name,
                            period,
                            entry.unit,
                            ranking.parent,
                            streak,
                            escalation_rule.measures,
                            escalation_rule.addressees,
                            _ranked_reason(escalation_rule, list_names, ranking, entry, streak),
                            _figures(ranking, entry, streak),
                        )
                    )
    superseded = {
        (other, escalation.unit, escalation.parent)
        for escalation in fired
        for rule in rules.escalations
        if rule.code == escalation.rule
        for other in rule.supersedes
    }
    kept = tuple(e for e in fired if (e.rule, e.unit, e.parent) not in superseded)
    return Evaluation(tuple(entries), kept)


# ---- the seeds' rules as presets ----


def _seed_rules() -> RuleSet:
    month, quarter, year_ = PeriodKind.month, PeriodKind.quarter, PeriodKind.year
    village, town = UnitLevel.village, UnitLevel.town
    lists = (
        # 红黑榜 (seed 003): the best and the worst villages of the month; N is the county's choice.
        ListRule("red-monthly", "月度红榜", month, village, Polarity.good, Selection(End.top, count=3)),
        ListRule("black-monthly", "月度黑榜", month, village, Polarity.bad, Selection(End.bottom, count=3)),
        # 暗访评估 (seed 003): 前20名通报表扬; 后10名、低于80分通报批评.
        ListRule(
            "praised-quarterly", "季度通报表扬", quarter, town, Polarity.good, Selection(End.top, count=20)
        ),
        ListRule(
            "criticised-quarterly",
            "季度通报批评",
            quarter,
            town,
            Polarity.bad,
            Selection(End.bottom, count=10, below=Decimal(80)),
        ),
        # 末位管理 (seed 002): 年度排名后三位的乡镇实施重点管理.
        ListRule(
            "key-management-yearly", "年度末位管理", year_, town, Polarity.bad, Selection(End.bottom, count=3)
        ),
    )
    escalations = (
        # Seed 003: 连续2个月列入月度黑榜的,约谈村庄、管区主要负责人,向党工委做出深刻书面检查.
        EscalationRule(
            "black-two-months",
            "连续两个月黑榜约谈",
            month,
            village,
            OnList("black-monthly"),
            (Measure.interview, Measure.written_self_criticism),
            ("村(居)主要负责人", "管区主要负责人"),
            streak=2,
        ),
        # Seed 003: 连续3个月列入月度黑榜的,一律采取组织处理.
        EscalationRule(
            "black-three-months",
            "连续三个月黑榜组织处理",
            month,
            village,
            OnList("black-monthly"),
            (Measure.organisational_handling,),
            ("村(居)主要负责人", "管区主要负责人"),
            streak=3,
            supersedes=("black-two-months",),
        ),
        # Seed 002: 对排名最后一位的乡镇和牵头单位负责人约谈,大会表态发言,电视台公开曝光.
        EscalationRule(
            "town-last-monthly",
            "月度排名末位约谈",
            month,
            town,
            Placed(Selection(End.bottom, count=1)),
            (Measure.interview, Measure.statement, Measure.public_exposure),
            ("乡镇主要负责人", "牵头单位负责人"),
        ),
        # Seed 003: 不能按期销号的村庄支部书记由纪工委约谈.
        EscalationRule(
            "overdue-interview",
            "未按期销号约谈",
            month,
            village,
            Overdue(1),
            (Measure.interview,),
            ("村党支部书记",),
        ),
        # Seed 003: 通报批评的由镇(街道)党(工)委书记在现场推进会上表态发言.
        EscalationRule(
            "criticised-statement",
            "通报批评表态发言",
            quarter,
            town,
            OnList("criticised-quarterly"),
            (Measure.statement,),
            ("镇(街道)党(工)委书记",),
        ),
        # Seed 003: 连续两次排名在后10名的镇(街道)党(工)委书记进行约谈 (后10名 alone, whatever the score).
        EscalationRule(
            "bottom-ten-twice",
            "连续两次后10名约谈",
            quarter,
            town,
            Placed(Selection(End.bottom, count=10)),
            (Measure.interview,),
            ("镇(街道)党(工)委书记",),
            streak=2,
        ),
        # Seed 002: 排名最后一位的直接列为市重点管理乡镇.
        EscalationRule(
            "yearly-last-upward",
            "年度末位上报市重点管理",
            year_,
            town,
            Placed(Selection(End.bottom, count=1)),
            (Measure.key_management, Measure.report_upward),
            ("乡镇主要负责人",),
        ),
    )
    return RuleSet(lists, escalations)


SEED_RULES = _seed_rules()
