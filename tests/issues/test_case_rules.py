"""The lifecycle's pure core: random sequences of actions by random roles never leave an illegal state,
and the hash chain notices any change to any event."""

from __future__ import annotations

from dataclasses import replace

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
from services.kit.identity import Role

TERMINAL_ACTIONS = {Action.recur, Action.feedback}


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
