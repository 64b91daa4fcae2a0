"""Lists and escalations: the seeds' rules, table by table (two and three months on the black list, ties
at the 10th place, exactly 80 points, last place, overdue issues, 末位管理), and properties of selections
and streaks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.levels import UnitLevel
from services.scoring.lists.rules import (
    SEED_RULES,
    BoundaryTies,
    End,
    EscalationRule,
    ListRule,
    Measure,
    OnList,
    Overdue,
    Placed,
    Polarity,
    RuleSet,
    Selection,
    UnitFacts,
    evaluate,
    lists_of,
    rules_problems,
    select,
)
from services.scoring.periods import Period, month, quarter, year
from services.scoring.scores.rules import Ranking, rank_units

D = Decimal
VILLAGE, TOWN = UnitLevel.village, UnitLevel.town


def ranking(
    period: Period, scores: dict[str, float | str], level: UnitLevel = VILLAGE, parent: str = "P"
) -> Ranking:
    return rank_units(period, parent, level, {unit: D(str(score)) for unit, score in scores.items()})


def fired(rankings: list[Ranking], period: Period, **facts: UnitFacts) -> set[tuple[str, str, int]]:
    _, escalations = evaluate(SEED_RULES, period, rankings, facts)
    return {(e.rule, e.unit, e.streak) for e in escalations}


def on_list(rankings: list[Ranking], period: Period, code: str) -> set[str]:
    lists, _ = evaluate(SEED_RULES, period, rankings)
    return {entry.unit for entry in lists if entry.list_code == code}


def test_the_seed_rules_are_valid() -> None:
    assert rules_problems(SEED_RULES) == []


# ---- monthly red and black lists, two and three months running ----

# Eight villages; v6, v7, v8 are the worst three every month unless a month says otherwise.
BASE = {"v1": 95, "v2": 92, "v3": 90, "v4": 88, "v5": 85, "v6": 70, "v7": 65, "v8": 60}


def months_of_black(*worst_each_month: tuple[str, ...]) -> list[Ranking]:
    """Rankings for 2026-08 onwards in which the named villages score lowest in their month."""
    rankings = []
    for n, worst in enumerate(worst_each_month):
        scores: dict[str, float | str] = {unit: 90 + i for i, unit in enumerate(sorted(BASE))}
        scores.update({unit: 50 + i for i, unit in enumerate(worst)})
        rankings.append(ranking(month(2026, 8 + n), scores))
    return rankings


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        # One month on the black list: listed, nothing more.
        ([("v6", "v7", "v8")], set()),
        # Two months running → 约谈 and 书面检查 for each.
        ([("v6", "v7", "v8")] * 2, {("black-two-months", u, 2) for u in ("v6", "v7", "v8")}),
        # Three → 组织处理, which replaces the 约谈.
        ([("v6", "v7", "v8")] * 3, {("black-three-months", u, 3) for u in ("v6", "v7", "v8")}),
        # A fourth month is still three running (and more): 组织处理 again, with the streak as it is.
        ([("v6", "v7", "v8")] * 4, {("black-three-months", u, 4) for u in ("v6", "v7", "v8")}),
        # v8 left the black list in the middle month: its streak starts again.
        (
            [("v6", "v7", "v8"), ("v6", "v7", "v1"), ("v6", "v7", "v8")],
            {("black-three-months", "v6", 3), ("black-three-months", "v7", 3)},
        ),
        (
            [("v1", "v2", "v3"), ("v6", "v7", "v8"), ("v6", "v7", "v5")],
            {("black-two-months", "v6", 2), ("black-two-months", "v7", 2)},
        ),
    ],
)
def test_months_on_the_black_list(months: list[tuple[str, ...]], expected: set[tuple[str, str, int]]) -> None:
    rankings = months_of_black(*months)
    current = rankings[-1].period
    assert on_list(rankings, current, "black-monthly") == set(months[-1])
    assert fired(rankings, current) == expected
    _, escalations = evaluate(SEED_RULES, current, rankings)
    for escalation in escalations:
        assert escalation.period == current and escalation.parent == "P"
        assert escalation.figures["streak"] == escalation.streak
        assert f"连续{escalation.streak}个月列入月度黑榜" in escalation.reason
        if escalation.rule == "black-two-months":
            assert escalation.measures == (Measure.interview, Measure.written_self_criticism)
            assert escalation.addressees == ("村(居)主要负责人", "管区主要负责人")
        else:
            assert escalation.measures == (Measure.organisational_handling,)


def test_a_month_missing_from_the_history_breaks_the_streak() -> None:
    august, september, october = months_of_black(("v6", "v7", "v8"), ("v6", "v7", "v8"), ("v6", "v7", "v8"))
    assert fired([august, october], october.period) == set()  # September was never published
    assert fired([august, september, october], september.period) == {
        ("black-two-months", u, 2) for u in ("v6", "v7", "v8")
    }  # what comes later does not count


def test_another_parents_ranking_does_not_continue_a_streak() -> None:
    august, september = months_of_black(("v6", "v7", "v8"), ("v6", "v7", "v8"))
    elsewhere = replace(august, parent="Q")
    assert fired([elsewhere, september], september.period) == set()


def test_red_and_black_lists_and_the_overlap_of_a_small_ranking() -> None:
    rankings = [ranking(month(2026, 11), {"a": 90, "b": 80, "c": 70, "d": 60, "e": 50})]
    # Best three and worst three of five overlap at c: it goes on the black list only.
    assert on_list(rankings, month(2026, 11), "red-monthly") == {"a", "b"}
    assert on_list(rankings, month(2026, 11), "black-monthly") == {"c", "d", "e"}


def test_lists_are_editable_data() -> None:
    five = replace(
        SEED_RULES,
        lists=tuple(
            replace(rule, selection=Selection(End.bottom, share_permille=250))
            if rule.code == "black-monthly"
            else rule
            for rule in SEED_RULES.lists
        ),
    )
    assert rules_problems(five) == []
    rankings = [ranking(month(2026, 11), BASE)]
    # 25 % of eight villages is two.
    lists = lists_of(five, rankings[0])
    assert {e.unit for e in lists["black-monthly"]} == {"v7", "v8"}
    assert {e.unit for e in lists["red-monthly"]} == {"v1", "v2", "v3"}


# ---- monthly last place among towns (seed 002) and overdue issues (seed 003) ----


def test_the_last_town_of_the_month_is_interviewed_with_the_lead_unit() -> None:
    towns = ranking(month(2026, 11), {"t1": 91, "t2": 88, "t3": 79.5}, level=TOWN, parent="county")
    villages = ranking(month(2026, 11), BASE)
    _, escalations = evaluate(SEED_RULES, month(2026, 11), [towns, villages])
    (last,) = [e for e in escalations if e.rule == "town-last-monthly"]
    assert (last.unit, last.parent, last.streak) == ("t3", "county", 1)
    assert last.addressees == ("乡镇主要负责人", "牵头单位负责人")
    assert last.measures == (Measure.interview, Measure.statement, Measure.public_exposure)
    assert last.figures == {"rank": 3, "size": 3, "place_from_bottom": 1, "score": "79.50", "streak": 1}
    assert "排名最后一位" in last.reason
    # Two towns sharing the last place are both last.
    tied = ranking(month(2026, 11), {"t1": 91, "t2": 79.5, "t3": 79.5}, level=TOWN, parent="county")
    assert {e.unit for e in evaluate(SEED_RULES, month(2026, 11), [tied]).escalations} == {"t2", "t3"}


def test_a_village_with_overdue_issues_has_its_secretary_interviewed() -> None:
    villages = ranking(month(2026, 11), {"v1": 95, "v2": 94, "v3": 93, "v4": 92})
    result = fired(
        [villages],
        month(2026, 11),
        v1=UnitFacts(VILLAGE, "P", overdue_issues=2),
        v2=UnitFacts(VILLAGE, "P", overdue_issues=0),
        t1=UnitFacts(TOWN, "county", overdue_issues=5),  # the rule is the village secretary's
        unranked=UnitFacts(VILLAGE, "P", overdue_issues=1),  # judged whether or not it was scored
    )
    assert result == {("overdue-interview", "v1", 1), ("overdue-interview", "unranked", 1)}
    _, escalations = evaluate(SEED_RULES, month(2026, 11), [], {"v1": UnitFacts(VILLAGE, "P", 2)})
    assert escalations[0].addressees == ("村党支部书记",)
    assert escalations[0].reason == "2个问题未按期销号"
    assert escalations[0].figures == {"overdue_issues": 2, "streak": 1}


# ---- quarterly 暗访: top 20 praised, bottom 10 and below 80 criticised, bottom 10 twice interviewed ----


def thirty_towns(**overrides: float | str) -> dict[str, float | str]:
    """t01 … t30 scoring 100, 99, …, 71 (t21 … t30 are the bottom ten), with changes."""
    scores: dict[str, float | str] = {f"t{n:02d}": 101 - n for n in range(1, 31)}
    scores.update(overrides)
    return scores


def quarterly(scores: dict[str, float | str], number: int = 4) -> Ranking:
    return ranking(quarter(2026, number), scores, level=TOWN, parent="city")


def test_quarterly_lists_without_ties() -> None:
    q4 = [quarterly(thirty_towns())]
    assert on_list(q4, quarter(2026, 4), "praised-quarterly") == {f"t{n:02d}" for n in range(1, 21)}
    # The bottom ten score 80 … 71: t21 has exactly 80, which is not below 80.
    assert on_list(q4, quarter(2026, 4), "criticised-quarterly") == {f"t{n:02d}" for n in range(22, 31)}


@pytest.mark.parametrize(
    ("score", "criticised"),
    [("80", False), ("80.00", False), ("79.99", True), ("80.01", False), ("0", True)],
)
def test_exactly_80_is_not_below_80(score: str, criticised: bool) -> None:
    # Whatever t30 scores here it stays within the bottom ten (t22 … t29 score 79 or less besides it).
    scores = thirty_towns(t30=score, t29="79.5")
    assert ("t30" in on_list([quarterly(scores)], quarter(2026, 4), "criticised-quarterly")) is criticised


def test_ties_at_the_tenth_place_from_the_bottom_are_all_in() -> None:
    # t20, t21, t22 share 80.5 with eight towns below them: the tie holds places 9–11 from the bottom, so
    # the 10th place is shared. All three are in the bottom ten (eleven towns on it).
    scores = thirty_towns(
        t20="80.5", t21="80.5", t22="80.5", t23="79", t24="78", t25="77", t26="76", t27="75"
    )
    scores.update({"t28": 74, "t29": 73, "t30": 72})
    q4 = quarterly(scores)
    assert {u: p for u, p in q4.places_from_bottom().items() if u in ("t20", "t21", "t22")} == {
        "t20": 9,
        "t21": 9,
        "t22": 9,
    }
    bottom = {e.unit for e in select(Selection(End.bottom, count=10), q4)}
    assert bottom == {f"t{n:02d}" for n in range(20, 31)}
    # …and criticised only below 80: the tied three at 80.5 are not.
    assert on_list([q4], quarter(2026, 4), "criticised-quarterly") == {f"t{n:02d}" for n in range(23, 31)}


def test_a_tie_across_the_tenth_place() -> None:
    # Eight towns score below 75.5 and four share it: the tie holds places 9–12 from the bottom, across the
    # 10th. `include` takes all four (twelve on the list), `exclude` none of them (eight).
    scores = {f"t{n:02d}": 100 - n for n in range(1, 31)}  # 99 … 70, all distinct
    scores.update({"t19": 75.5, "t20": 75.5, "t21": 75.5, "t22": 75.5})
    for n in range(23, 31):
        scores[f"t{n:02d}"] = 70 - n / 10
    q4 = ranking(quarter(2026, 4), dict(scores), level=TOWN, parent="city")
    tied = {"t19", "t20", "t21", "t22"}
    assert {q4.places_from_bottom()[u] for u in tied} == {9}
    include = {e.unit for e in select(Selection(End.bottom, count=10), q4)}
    exclude = {e.unit for e in select(Selection(End.bottom, count=10, ties=BoundaryTies.exclude), q4)}
    below8 = {f"t{n:02d}" for n in range(23, 31)}
    assert include == below8 | tied  # twelve: the whole tie is in
    assert exclude == below8  # eight: the tie does not fit whole, so none of it


def test_praise_ties_at_the_twentieth_place() -> None:
    scores = thirty_towns(t21="81")  # t20 and t21 share the 20th place
    q4 = [quarterly(scores)]
    praised = on_list(q4, quarter(2026, 4), "praised-quarterly")
    assert praised == {f"t{n:02d}" for n in range(1, 22)}


def test_bottom_ten_twice_running_interviews_the_party_secretary() -> None:
    q3 = quarterly(thirty_towns(t21="85", t11="80"), number=3)  # t21 was in the top 20 in Q3
    q4 = quarterly(thirty_towns())
    result = fired([q3, q4], quarter(2026, 4))
    twice = {unit for rule, unit, _ in result if rule == "bottom-ten-twice"}
    # Bottom ten in both quarters: t22 … t30 (t21 is bottom ten in Q4 only).
    assert twice == {f"t{n:02d}" for n in range(22, 31)}
    assert all(streak == 2 for rule, _, streak in result if rule == "bottom-ten-twice")
    statements = {unit for rule, unit, _ in result if rule == "criticised-statement"}
    assert statements == {f"t{n:02d}" for n in range(22, 31)}
    # At exactly 80 and bottom ten twice: interviewed, though never criticised.
    q3b = quarterly(thirty_towns(), number=3)
    result = fired([q3b, q4], quarter(2026, 4))
    assert ("bottom-ten-twice", "t21", 2) in result
    assert not any(rule == "criticised-statement" and unit == "t21" for rule, unit, _ in result)


def test_monthly_rules_wait_for_a_month_and_quarterly_ones_for_a_quarter() -> None:
    q4 = quarterly(thirty_towns())
    assert fired([q4], month(2026, 12)) == set()
    lists, _ = evaluate(SEED_RULES, month(2026, 12), [q4])
    assert lists == ()


# ---- yearly 末位管理 ----


def test_the_bottom_three_of_the_year_and_the_last_reported_upward() -> None:
    towns = ranking(
        year(2026), {"t1": 90, "t2": 85, "t3": 84, "t4": 83, "t5": 70}, level=TOWN, parent="county"
    )
    lists, escalations = evaluate(SEED_RULES, year(2026), [towns])
    assert {(e.list_code, e.unit) for e in lists} == {
        ("key-management-yearly", u) for u in ("t3", "t4", "t5")
    }
    assert all(e.polarity is Polarity.bad for e in lists)
    (upward,) = escalations
    assert (upward.rule, upward.unit) == ("yearly-last-upward", "t5")
    assert upward.measures == (Measure.key_management, Measure.report_upward)


# ---- the rule set's checks ----


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: replace(r, lists=(*r.lists, r.lists[0])), "appears twice"),
        (
            lambda r: replace(r, lists=(replace(r.lists[0], selection=Selection(End.top)),)),
            "either a count or a share",
        ),
        (
            lambda r: replace(r, lists=(replace(r.lists[0], selection=Selection(End.top, count=0)),)),
            "1 or more",
        ),
        (
            lambda r: replace(
                r, lists=(replace(r.lists[0], selection=Selection(End.top, share_permille=1001)),)
            ),
            "1‰ to 1000‰",
        ),
        (
            lambda r: replace(r, escalations=(replace(r.escalations[0], trigger=OnList("nowhere")),)),
            "no list 'nowhere'",
        ),
        (
            lambda r: replace(
                r, escalations=(replace(r.escalations[0], trigger=OnList("praised-quarterly")),)
            ),
            "another cadence or level",
        ),
        (lambda r: replace(r, escalations=(replace(r.escalations[0], streak=0),)), "streak must be"),
        (lambda r: replace(r, escalations=(replace(r.escalations[0], measures=()),)), "measure"),
        (lambda r: replace(r, escalations=(replace(r.escalations[0], addressees=()),)), "who answers"),
        (
            lambda r: replace(r, escalations=(replace(r.escalations[1], supersedes=("nothing",)),)),
            "supersedes no rule",
        ),
        (
            lambda r: replace(r, escalations=(replace(r.escalations[0], trigger=Overdue(1), streak=2),)),
            "one period only",
        ),
        (
            lambda r: replace(
                r,
                escalations=(
                    replace(r.escalations[0], trigger=Placed(Selection(End.bottom, count=1, below=D(-1)))),
                ),
            ),
            "a mark must be",
        ),
        (lambda r: replace(r, lists=(replace(r.lists[0], code="Red List"),)), "a code of"),
    ],
)
def test_each_rule_mistake_is_named(change: Callable[[RuleSet], RuleSet], message: str) -> None:
    problems = rules_problems(change(SEED_RULES))
    assert any(message in problem for problem in problems), problems


def test_two_rankings_of_one_parent_and_period_are_refused() -> None:
    villages = ranking(month(2026, 11), BASE)
    with pytest.raises(ValueError, match="two rankings"):
        evaluate(SEED_RULES, month(2026, 11), [villages, villages])


# ---- properties ----

unit_scores = st.dictionaries(
    st.sampled_from([f"u{n:02d}" for n in range(40)]),
    st.sampled_from([D(x) for x in ("60", "70", "79.99", "80", "80.01", "85", "90", "100")]),
    max_size=40,
)


@given(unit_scores, st.integers(1, 15), st.sampled_from(list(End)), st.sampled_from(list(BoundaryTies)))
def test_a_selection_takes_its_places_and_only_them(
    scores: dict[str, Decimal], count: int, end: End, ties: BoundaryTies
) -> None:
    board = rank_units(month(2026, 11), "P", VILLAGE, scores)
    chosen = {e.unit for e in select(Selection(end, count=count, ties=ties), board)}
    places = {e.unit: e.rank for e in board.entries} if end is End.top else board.places_from_bottom()
    tie_size = {u: sum(1 for v in scores.values() if v == scores[u]) for u in scores}
    for unit in scores:
        fits = (
            places[unit] <= count
            if ties is BoundaryTies.include
            else places[unit] + tie_size[unit] - 1 <= count
        )
        assert (unit in chosen) == fits
    if ties is BoundaryTies.include:
        assert len(chosen) >= min(count, len(scores))  # ties only add
    else:
        assert len(chosen) <= count  # ties only take away
    # A unit is in with every unit that scores the same: ties are never split.
    for unit in chosen:
        assert {u for u in scores if scores[u] == scores[unit]} <= chosen


@given(unit_scores, st.sampled_from([D(x) for x in ("70", "79.99", "80", "80.01")]))
def test_below_is_strict(scores: dict[str, Decimal], mark: Decimal) -> None:
    board = rank_units(month(2026, 11), "P", VILLAGE, scores)
    chosen = select(Selection(End.bottom, count=10, below=mark), board)
    everything = {e.unit for e in select(Selection(End.bottom, count=10), board)}
    assert {e.unit for e in chosen} == {u for u in everything if scores[u] < mark}


@given(st.lists(st.sampled_from(["black", "clear", "unpublished", "absent"]), min_size=1, max_size=8))
def test_streaks_count_consecutive_periods_only(history: list[str]) -> None:
    """One village's months, oldest first: on the black list, clear of it, a month without a ranking, or a
    ranking without the village. The streak is the run of black months at the end, nothing else."""
    rules = RuleSet(
        (
            ListRule(
                "black", "黑榜", month(2026, 1).kind, VILLAGE, Polarity.bad, Selection(End.bottom, count=1)
            ),
        ),
        (
            EscalationRule(
                "any-streak",
                "黑榜",
                month(2026, 1).kind,
                VILLAGE,
                OnList("black"),
                (Measure.interview,),
                ("村",),
            ),
        ),
    )
    assert rules_problems(rules) == []
    rankings = []
    start = month(2026, 12).previous(len(history) - 1)
    for offset, state in enumerate(history):
        period = start.next(offset)
        if state == "unpublished":
            continue
        scores = {"other": D(90), "another": D(85)}
        if state != "absent":
            scores["x"] = D(50) if state == "black" else D(95)
        rankings.append(rank_units(period, "P", VILLAGE, scores))
    expected = 0
    for state in reversed(history):
        if state != "black":
            break
        expected += 1
    _, escalations = evaluate(rules, month(2026, 12), rankings)
    streaks = {e.unit: e.streak for e in escalations}
    assert streaks.get("x", 0) == expected
