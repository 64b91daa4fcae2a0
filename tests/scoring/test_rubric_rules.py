"""Rubrics as data: the default 百分制 rubric is valid and covers the issues service's shipped categories;
each kind of mistake is named."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from services.scoring.rubrics.rules import (
    DEFAULT_RUBRIC,
    Component,
    ComponentWeight,
    DeductionRule,
    Indicator,
    Rubric,
    Severity,
    rubric_problems,
)

ROOT = Path(__file__).resolve().parents[2]


def shipped_category_codes() -> set[str]:
    """The codes the issues service's categories migration ships (read from the migration itself)."""
    (path,) = (ROOT / "alembic" / "issues" / "versions").glob("*categories*.py")
    spec = importlib.util.spec_from_file_location("categories_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {row[0] for row in module.SHIPPED}


def test_the_default_rubric_is_valid_and_out_of_100() -> None:
    assert rubric_problems(DEFAULT_RUBRIC) == []
    assert DEFAULT_RUBRIC.total == 100
    assert sum(w.permille for w in DEFAULT_RUBRIC.weights) == 1000
    assert {w.component: w.permille for w in DEFAULT_RUBRIC.weights} == {
        Component.inspection: 600,
        Component.covert: 200,
        Component.satisfaction: 100,
        Component.rectification: 100,
    }


def test_the_default_rubric_deducts_for_every_shipped_category_and_severity() -> None:
    shipped = shipped_category_codes()
    assert {"luan-dui-fang", "luan-reng-dao", "luan-da-jian", "luan-ting-fang", "luan-tie-hua"} <= shipped
    covered = {rule.category for rule in DEFAULT_RUBRIC.deductions}
    assert covered == shipped
    for code in shipped:
        for severity in Severity:
            assert DEFAULT_RUBRIC.deduction_for(code, severity) is not None
    # Codes compare without case, as the issues service treats them.
    assert DEFAULT_RUBRIC.deduction_for("LUAN-DUI-FANG", Severity.minor) is not None
    assert DEFAULT_RUBRIC.deduction_for("unknown", Severity.minor) is None


def _liu_luan() -> Indicator:
    return DEFAULT_RUBRIC.indicators_by_code()["liu-luan"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: replace(r, weights=(*r.weights[:-1], replace(r.weights[-1], permille=99))),
            "add up to 999‰",
        ),
        (
            lambda r: replace(r, weights=(*r.weights, ComponentWeight(Component.inspection, 0))),
            "weighted twice",
        ),
        (lambda r: replace(r, weights=(ComponentWeight(Component.inspection, 1001),)), "1‰ to 1000‰"),
        (lambda r: replace(r, indicators=(*r.indicators, r.indicators[0])), "appears twice"),
        (
            lambda r: replace(
                r, indicators=(replace(r.indicators[0], max_points=Decimal(-5)), *r.indicators[1:])
            ),
            "max points",
        ),
        (
            lambda r: replace(
                r, indicators=(replace(r.indicators[0], max_points=Decimal("1.005")), *r.indicators[1:])
            ),
            "max points",
        ),
        (
            lambda r: replace(
                r, indicators=(replace(r.indicators[0], auto_cap=Decimal(31)), *r.indicators[1:])
            ),
            "exceeds",
        ),
        (
            lambda r: replace(r, indicators=(replace(r.indicators[0], code="Liu Luan"), *r.indicators[1:])),
            "code must be",
        ),
        (lambda r: replace(r, indicators=()), "at least one indicator"),
        (
            lambda r: replace(
                r,
                deductions=(
                    *r.deductions,
                    DeductionRule("luan-dui-fang", Severity.minor, "la-ji", Decimal(1)),
                ),
            ),
            "appears twice",
        ),
        (
            lambda r: replace(
                r, deductions=(DeductionRule("new-thing", Severity.minor, "nowhere", Decimal(1)),)
            ),
            "no indicator 'nowhere'",
        ),
        (
            lambda r: replace(
                r, deductions=(DeductionRule("new-thing", Severity.minor, "liu-luan", Decimal(-1)),)
            ),
            "must be positive",
        ),
        (
            lambda r: replace(
                r, deductions=(DeductionRule("new-thing", Severity.serious, "liu-luan", Decimal(21)),)
            ),
            "do not fit indicator 'liu-luan'",
        ),
        (
            lambda r: replace(
                r, deductions=(DeductionRule("new-thing", Severity.minor, "chang-xiao", Decimal(1)),)
            ),
            "do not fit indicator 'chang-xiao'",  # its automatic cap is 0
        ),
        (
            lambda r: replace(
                r, deductions=(DeductionRule("bad code!", Severity.minor, "liu-luan", Decimal(1)),)
            ),
            "category",
        ),
        (lambda r: replace(r, name=""), "name"),
        (lambda r: replace(r, version=0), "version"),
    ],
)
def test_each_mistake_is_named(change: Callable[[Rubric], Rubric], message: str) -> None:
    problems = rubric_problems(change(DEFAULT_RUBRIC))
    assert any(message in problem for problem in problems), problems


def test_weights_are_exact_integers() -> None:
    # Three thirds in per-mille do not make 100 %: 333 + 333 + 333 = 999, and the rubric says so.
    thirds = tuple(
        ComponentWeight(c, 333) for c in (Component.inspection, Component.covert, Component.satisfaction)
    )
    assert any("999‰" in p for p in rubric_problems(replace(DEFAULT_RUBRIC, weights=thirds)))
    fixed = (*thirds[:2], ComponentWeight(Component.satisfaction, 334))
    assert rubric_problems(replace(DEFAULT_RUBRIC, weights=fixed)) == []


def test_an_indicator_without_a_cap_caps_at_its_points() -> None:
    uncapped = replace(_liu_luan(), auto_cap=None)
    assert uncapped.cap == uncapped.max_points == 30
    assert _liu_luan().cap == 20
