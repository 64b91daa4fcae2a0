"""List and escalation rule sets as the JSON a row stores and the API shows, and back (pure).

The seeds' rules (`services.scoring.lists.rules.SEED_RULES`) are the presets: what applies where a region
has stored no rule set of its own.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

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
    Trigger,
)
from services.scoring.periods import PeriodKind

__all__ = ["PRESET_BODY", "RuleSetError", "rule_set_body", "rule_set_from_body"]


class RuleSetError(ValueError):
    """A stored or sent body that does not describe a rule set."""


def _mark(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def selection_body(selection: Selection) -> dict[str, Any]:
    return {
        "end": selection.end.value,
        "count": selection.count,
        "share_permille": selection.share_permille,
        "below": _mark(selection.below),
        "at_least": _mark(selection.at_least),
        "ties": selection.ties.value,
    }


def trigger_body(trigger: Trigger) -> dict[str, Any]:
    if isinstance(trigger, OnList):
        return {"kind": "on_list", "list_code": trigger.list_code}
    if isinstance(trigger, Placed):
        return {"kind": "placed", "selection": selection_body(trigger.selection)}
    return {"kind": "overdue", "at_least": trigger.at_least}


def rule_set_body(rules: RuleSet) -> dict[str, Any]:
    """A rule set as JSON: marks as decimal text, enums by value."""
    return {
        "lists": [
            {
                "code": rule.code,
                "name": rule.name,
                "cadence": rule.cadence.value,
                "level": rule.level.value,
                "polarity": rule.polarity.value,
                "selection": selection_body(rule.selection),
            }
            for rule in rules.lists
        ],
        "escalations": [
            {
                "code": rule.code,
                "name": rule.name,
                "cadence": rule.cadence.value,
                "level": rule.level.value,
                "trigger": trigger_body(rule.trigger),
                "measures": [measure.value for measure in rule.measures],
                "addressees": list(rule.addressees),
                "streak": rule.streak,
                "supersedes": list(rule.supersedes),
            }
            for rule in rules.escalations
        ],
    }


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RuleSetError('a mark is decimal text such as "80" or "79.5"')
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise RuleSetError(f"{value!r} is not a number of points") from exc


def _whole(value: Any, what: str, default: int | None = None) -> int | None:
    """A whole number of the body (a JSON integer; `2.5`, `true` or `"3"` are refused), or `default`."""
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleSetError(f"{what} must be a whole number, not {value!r}")
    return value


def _selection(body: dict[str, Any]) -> Selection:
    return Selection(
        end=End(body["end"]),
        count=_whole(body.get("count"), "count"),
        share_permille=_whole(body.get("share_permille"), "share_permille"),
        below=_decimal(body.get("below")),
        at_least=_decimal(body.get("at_least")),
        ties=BoundaryTies(body.get("ties", BoundaryTies.include.value)),
    )


def _trigger(body: dict[str, Any]) -> Trigger:
    kind = body["kind"]
    if kind == "on_list":
        return OnList(str(body["list_code"]))
    if kind == "placed":
        return Placed(_selection(body["selection"]))
    if kind == "overdue":
        return Overdue(_whole(body.get("at_least"), "at_least", 1) or 0)
    raise RuleSetError(f"no trigger kind {kind!r}")


def rule_set_from_body(body: dict[str, Any]) -> RuleSet:
    """The pure rule set a body describes (RuleSetError when it cannot be read; check the result with
    `rules_problems`)."""
    try:
        lists = tuple(
            ListRule(
                str(rule["code"]),
                str(rule["name"]),
                PeriodKind(rule["cadence"]),
                UnitLevel(rule["level"]),
                Polarity(rule["polarity"]),
                _selection(rule["selection"]),
            )
            for rule in body["lists"]
        )
        escalations = tuple(
            EscalationRule(
                str(rule["code"]),
                str(rule["name"]),
                PeriodKind(rule["cadence"]),
                UnitLevel(rule["level"]),
                _trigger(rule["trigger"]),
                tuple(Measure(m) for m in rule["measures"]),
                tuple(str(a) for a in rule["addressees"]),
                _whole(rule.get("streak"), "streak", 1) or 0,
                tuple(str(s) for s in rule.get("supersedes", ())),
            )
            for rule in body["escalations"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RuleSetError(f"not a rule set: {exc}") from exc
    return RuleSet(lists, escalations)


PRESET_BODY = rule_set_body(SEED_RULES)
