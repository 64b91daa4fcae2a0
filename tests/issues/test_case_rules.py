"""The lifecycle's pure core: random sequences of actions by random roles never leave an illegal state,
the statistics of a county's issues always add up, and the hash chain notices any change to any event."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from services.issues.cases.rules import (
    FROM,
    GENESIS,
    OPEN_STATUSES,
    ROLES,
    Action,
    CaseState,
    ChainLink,
    Source,
    Status,
    actions_for,
    allowed_actions,
    first_break,
    initial_status,
    issue_code,
    link_hash,
    may_take,
    next_state,
)
from services.issues.stats.rules import IssueFacts, figures, tally
from services.kit.identity import Role

TERMINAL_ACTIONS = {Action.recur, Action.feedback}
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)


class Lifecycle(RuleBasedStateMachine):
    """One issue: any role tries any action; only what the rules allow happens."""

    def __init__(self) -> None:
        super().__init__()
        self.state = CaseState(status=Status.reported, probable_duplicate=True)
        self.history: list[tuple[Role, Action]] = []
        self.reworks = 0

    @rule(role=st.sampled_from(list(Role)), action=st.sampled_from(list(Action)))
    def someone_tries(self, role: Role, action: Action) -> None:
        allowed = action in allowed_actions(self.state) and may_take(role, action)
        assert allowed == (action in actions_for(self.state, role))
        if not allowed:
            return
        before = self.state
        self.state = next_state(self.state, action)
        self.history.append((role, action))
        if action is Action.return_:
            self.reworks += 1
        # What only the office or inspectors may do was never done by a village or grid cadre.
        if action in (Action.accept, Action.return_):
            assert role in (Role.admin, Role.inspector)
        if action is Action.accept:
            assert before.status is Status.submitted and self.state.status is Status.closed

    @invariant()
    def the_state_is_legal(self) -> None:
        state = self.state
        assert state.status in set(Status)
        if state.extension_pending:
            assert state.status is Status.assigned  # asked for only while the fix is due
        if state.status is Status.closed:
            assert not state.on_account and not state.extension_pending
        if state.status is Status.rejected:  # never fixed, nothing left pending or on account
            assert all(a is not Action.accept for _, a in self.history)
            assert not state.on_account and not state.extension_pending
        if state.has_feedback:
            assert state.status is Status.closed
        terminal = state.status not in OPEN_STATUSES
        if terminal:
            assert not set(allowed_actions(state)) - TERMINAL_ACTIONS

    @invariant()
    def every_allowed_action_comes_from_an_allowed_status(self) -> None:
        for action in allowed_actions(self.state):
            assert self.state.status in FROM[action]
            assert ROLES[action]


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


class County(RuleBasedStateMachine):
    """A county's issues: reports come in as staff or citizens file them, anyone tries any action on any
    of them as the clock moves; the statistics of whatever the rules let happen always add up."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.issues: list[dict[str, Any]] = []  # the state and the facts the statistics read
        self.accepted = self.returns = self.extensions = 0

    @rule(source=st.sampled_from(list(Source)), role=st.sampled_from(list(Role)), days=st.integers(1, 30))
    def someone_reports(self, source: Source, role: Role, days: int) -> None:
        status = initial_status(source, role)
        deadline = self.now + timedelta(days=days) if status is Status.assigned else None
        self.issues.append(
            {
                "state": CaseState(status=status),
                "reported_at": self.now,
                "deadline": deadline,
                "closed_at": None,
            }
        )

    @rule(pick=st.integers(0, 1_000), data=st.data(), hours=st.integers(0, 24 * 20))
    def someone_acts(self, pick: int, data: st.DataObject, hours: int) -> None:
        """Someone who may takes an action the issue's state allows (recur opens a new issue: a report)."""
        self.now += timedelta(hours=hours)
        if not self.issues:
            return
        issue = self.issues[pick % len(self.issues)]
        state = issue["state"]
        possible = [a for a in allowed_actions(state) if a is not Action.recur]
        if not possible:
            return
        action = data.draw(st.sampled_from(possible))
        data.draw(st.sampled_from(sorted(ROLES[action])))  # who: any role the rules let take it
        issue["state"] = next_state(state, action)
        if action in (Action.verify, Action.assign, Action.return_) and issue["deadline"] is None:
            issue["deadline"] = self.now + timedelta(days=7)
        if action is Action.accept:
            issue["closed_at"], self.accepted = self.now, self.accepted + 1
        if action is Action.return_:
            issue["reworks"], self.returns = issue.get("reworks", 0) + 1, self.returns + 1
        if action is Action.approve_extension:
            issue["extensions"], self.extensions = issue.get("extensions", 0) + 1, self.extensions + 1

    @invariant()
    def the_statistics_add_up(self) -> None:
        facts = [
            IssueFacts(
                status=i["state"].status,
                reported_at=i["reported_at"],
                closed_at=i["closed_at"],
                deadline=i["deadline"],
                rework_count=i.get("reworks", 0),
                extension_count=i.get("extensions", 0),
            )
            for i in self.issues
        ]
        counts = tally(facts, self.now)
        assert counts.found + counts.rejected == len(self.issues)
        assert counts.found == counts.fixed + counts.open  # every issue counted is fixed or still open
        assert counts.fixed == self.accepted  # 销号 is the only way to fixed, and nothing leaves it
        assert counts.overdue <= counts.open and counts.closed_on_time <= counts.fixed
        assert counts.reworked <= min(counts.fixed, self.returns)
        assert counts.extended <= min(counts.found, self.extensions)
        assert counts.days_to_close >= 0
        shown = figures(counts, None)
        for rate in (shown.rectification_rate, shown.on_time_rate, shown.rework_rate, shown.extension_rate):
            assert rate is None or 0 <= rate <= 1
        if counts.found:
            assert shown.rectification_rate == counts.fixed / counts.found


TestCounty = County.TestCase
TestCounty.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@given(st.sampled_from(list(Source)), st.sampled_from(list(Role)))
def test_only_staff_findings_start_assigned(source: Source, role: Role) -> None:
    status = initial_status(source, role)
    assert status in (Status.reported, Status.assigned)
    if status is Status.assigned:
        assert role in (Role.admin, Role.inspector, Role.officer)
        assert source in (Source.inspection, Source.covert)


@given(st.integers(min_value=1, max_value=999_999), st.integers(min_value=2000, max_value=2100))
def test_codes_sort_as_they_count(number: int, year: int) -> None:
    code = issue_code("370282", year, number)
    assert code == f"370282-{year}-{number:06d}" and len(code) == 18
    if number < 999_999:
        assert code < issue_code("370282", year, number + 1)


REPLACEMENTS: dict[str, object] = {
    "note": "改过",
    "actor": "user:999",
    "at": "2026-12-01T00:00:00+00:00",
    "changes": {"n": -1},
    "photos": [],
    "role": "admin",
}


def _chain(n: int) -> list[tuple[ChainLink, str]]:
    links: list[tuple[ChainLink, str]] = []
    previous = GENESIS
    for seq in range(1, n + 1):
        link = ChainLink(
            issue_id=7,
            seq=seq,
            action="supervise" if seq > 1 else "report",
            actor=f"user:{seq}",
            role="inspector",
            at=f"2026-11-0{1 + seq % 8}T08:00:00+00:00",
            note=f"第{seq}条",
            changes={"n": seq},
            photos=[{"id": "a" * 32, "sha256": "b" * 64, "flags": []}],
            prev_hash=previous,
        )
        previous = link_hash(link)
        links.append((link, previous))
    return links


@given(st.integers(min_value=1, max_value=8), st.data())
def test_any_change_to_any_event_breaks_the_chain_there(n: int, data: st.DataObject) -> None:
    chain = _chain(n)
    assert first_break(chain, expected_head=chain[-1][1]) is None
    victim = data.draw(st.integers(min_value=0, max_value=n - 1))
    link, stored = chain[victim]
    field = data.draw(st.sampled_from(["note", "actor", "at", "changes", "photos", "role"]))
    changed = replace(link, **{field: REPLACEMENTS[field]})
    tampered = [*chain[:victim], (changed, stored), *chain[victim + 1 :]]
    found = first_break(tampered, expected_head=chain[-1][1])
    assert found is not None and found.seq == victim + 1


@given(st.integers(min_value=2, max_value=8), st.data())
def test_a_removed_or_swapped_event_breaks_the_chain(n: int, data: st.DataObject) -> None:
    chain = _chain(n)
    head = chain[-1][1]
    gone = data.draw(st.integers(min_value=0, max_value=n - 1))
    assert first_break([*chain[:gone], *chain[gone + 1 :]], expected_head=head) is not None
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    swapped = [*chain[:i], chain[i + 1], chain[i], *chain[i + 2 :]]
    assert first_break(swapped, expected_head=head) is not None
