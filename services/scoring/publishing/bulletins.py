"""Bulletins (通报制): what is written into one when it is issued, what a reader below its scope sees of it,
and its spreadsheet (Chinese headers, one sheet per list).

A bulletin's body is built once from frozen data (a published period, closed rounds, the issues
service's figures as read at issue time) and stored; reading it never recomputes anything, so it never
changes afterwards. A reader below the bulletin's scope (a town, a village) sees the rows of its own
subtree only, cut from the stored body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.kit.exports import Cell, Sheet
from services.scoring.levels import UnitLevel
from services.scoring.lists.rules import MEASURE_NAMES
from services.scoring.periods import SHANGHAI, parse_period
from services.scoring.publishing.models import Publication
from services.scoring.publishing.rules import PeriodResult, UnitFigures

__all__ = ["period_body", "sheets", "visible_body", "week_title", "weekly_body"]

LEVEL_NAMES = {UnitLevel.village.value: "村(居)", UnitLevel.town.value: "镇(街道)"}
POLARITY_NAMES = {"good": "红榜/表扬", "bad": "黑榜/批评"}


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def period_body(publication: Publication, computed: PeriodResult) -> dict[str, Any]:
    """A published period's bulletin: its rankings, lists and escalations as frozen rows."""
    units = computed.units
    period = parse_period(publication.period)
    return {
        "kind": "period",
        "period": publication.period,
        "label": period.label,
        "scope": {"code": publication.scope_code, "name": publication.scope_name},
        "published_at": publication.published_at.isoformat(),
        "rankings": [
            {
                "parent": {"code": group.ranking.parent, "name": group.parent_name},
                "level": group.ranking.level.value,
                "for_lists": group.for_lists,
                "entries": [
                    {
                        "rank": entry.rank,
                        "unit_code": entry.unit,
                        "unit_name": units[entry.unit].name,
                        "path": units[entry.unit].path,
                        "score": _number(entry.score),
                        "previous_rank": entry.previous_rank,
                        "change": entry.change,
                    }
                    for entry in group.ranking.entries
                ],
            }
            # The scope's own rankings (a town's ranking of its villages is in /v1/rankings, as frozen).
            for group in computed.rankings
            if group.for_lists
        ],
        "lists": [
            {
                "code": code,
                "name": name,
                "polarity": polarity,
                "entries": [
                    {
                        "rank": e.rank,
                        "size": e.size,
                        "unit_code": e.unit,
                        "unit_name": units[e.unit].name,
                        "path": units[e.unit].path,
                        "score": _number(e.score),
                        "reason": e.reason,
                    }
                    for e in computed.evaluation.lists
                    if e.list_code == code
                ],
            }
            for code, name, polarity in _list_rules(publication)
        ],
        "escalations": [
            {
                "rule_code": e.rule,
                "rule_name": e.name,
                "unit_code": e.unit,
                "unit_name": units[e.unit].name,
                "path": units[e.unit].path,
                "streak": e.streak,
                "measures": [MEASURE_NAMES[m] for m in e.measures],
                "addressees": list(e.addressees),
                "reason": e.reason,
            }
            for e in computed.evaluation.escalations
        ],
    }


def _list_rules(publication: Publication) -> list[tuple[str, str, str]]:
    """The lists of the period's cadence in the rules applied (an empty list still gets its sheet)."""
    return [
        (rule["code"], rule["name"], rule["polarity"])
        for rule in publication.rules.get("lists", [])
        if rule["cadence"] == publication.kind
    ]


def week_title(scope_name: str, week_start: date) -> str:
    week_end = week_start + timedelta(days=6)
    number = week_start.isocalendar().week
    return f"{scope_name}{week_start.year}年第{number}周人居环境整治通报（{week_start:%m月%d日}—{week_end:%m月%d日}）"


def weekly_body(
    *,
    scope: dict[str, str],
    week_start: date,
    rounds: Sequence[dict[str, Any]],
    rates_from: datetime,
    rates_to: datetime,
    villages: Sequence[tuple[str, str, str]],
    figures: dict[str, UnitFigures],
) -> dict[str, Any]:
    """A weekly bulletin (每周一通报): the inspection rounds closed in the week with each unit's score, and
    each village's rectification rate (整改率) from the start of the year to the week's end."""
    rows = []
    for code, name, path in villages:
        unit = figures.get(code)
        rate = None if unit is None else unit.rectification_rate
        rows.append(
            {
                "unit_code": code,
                "unit_name": name,
                "path": path,
                "found": 0 if unit is None else unit.found,
                "fixed": 0 if unit is None else unit.fixed,
                "overdue": 0 if unit is None else unit.overdue,
                "rate": None if rate is None else float(rate.quantize(Decimal("0.0001"))),
            }
        )
    return {
        "kind": "weekly",
        "week_start": week_start.isoformat(),
        "week_end": (week_start + timedelta(days=6)).isoformat(),
        "scope": scope,
        "inspections": list(rounds),
        "rectification": {
            "from": rates_from.astimezone(SHANGHAI).isoformat(),
            "to": rates_to.astimezone(SHANGHAI).isoformat(),
            "rows": rows,
        },
    }


def _mine(rows: list[dict[str, Any]], region_path: str) -> list[dict[str, Any]]:
    return [row for row in rows if str(row.get("path", "")).startswith(region_path)]


def visible_body(body: dict[str, Any], region_path: str, whole: bool) -> dict[str, Any]:
    """The stored body as a reader sees it: all of it (`whole`: the reader's region holds the bulletin's
    scope), else only the rows of the reader's subtree."""
    if whole:
        return body
    cut = dict(body)
    if body.get("kind") == "period":
        cut["rankings"] = [
            {**group, "entries": _mine(group["entries"], region_path)}
            for group in body["rankings"]
            if _mine(group["entries"], region_path)
        ]
        cut["lists"] = [{**lst, "entries": _mine(lst["entries"], region_path)} for lst in body["lists"]]
        cut["escalations"] = _mine(body["escalations"], region_path)
    else:
        cut["inspections"] = [
            {**round_, "entries": _mine(round_["entries"], region_path)} for round_ in body["inspections"]
        ]
        cut["rectification"] = {
            **body["rectification"],
            "rows": _mine(body["rectification"]["rows"], region_path),
        }
    return cut


async def _rows(values: Sequence[Sequence[Cell]]) -> AsyncIterator[Sequence[Cell]]:
    for row in values:
        yield row


def _change(value: int | None) -> str:
    if value is None:
        return "新进"
    if value > 0:
        return f"↑{value}"
    if value < 0:
        return f"↓{-value}"
    return "持平"


def sheets(body: dict[str, Any]) -> list[Sheet]:
    """The bulletin as spreadsheets: the ranking, one sheet per list and the escalations (a period), or
    one sheet per inspection round and the rectification rates (a week)."""
    if body.get("kind") == "period":
        ranking_rows: list[list[Cell]] = [
            [
                group["parent"]["name"],
                LEVEL_NAMES.get(group["level"], group["level"]),
                entry["rank"],
                entry["unit_code"],
                entry["unit_name"],
                entry["score"],
                entry["previous_rank"],
                _change(entry["change"]),
            ]
            for group in body["rankings"]
            for entry in group["entries"]
        ]
        result = [
            Sheet(
                "排名",
                ["排名范围", "层级", "名次", "区划代码", "名称", "综合得分", "上期名次", "名次变化"],
                _rows(ranking_rows),
            )
        ]
        for lst in body["lists"]:
            result.append(
                Sheet(
                    lst["name"],
                    ["名次", "参评数", "区划代码", "名称", "综合得分", "事由"],
                    _rows(
                        [
                            [e["rank"], e["size"], e["unit_code"], e["unit_name"], e["score"], e["reason"]]
                            for e in lst["entries"]
                        ]
                    ),
                )
            )
        result.append(
            Sheet(
                "问责",
                ["规则", "区划代码", "名称", "连续期数", "措施", "对象", "事由"],
                _rows(
                    [
                        [
                            e["rule_name"],
                            e["unit_code"],
                            e["unit_name"],
                            e["streak"],
                            "、".join(e["measures"]),
                            "、".join(e["addressees"]),
                            e["reason"],
                        ]
                        for e in body["escalations"]
                    ]
                ),
            )
        )
        return result
    result = [
        Sheet(
            round_["name"],
            ["区划代码", "名称", "得分", "满分", "扣分"],
            _rows(
                [
                    [e["unit_code"], e["unit_name"], e["score"], e["max_score"], e["deducted"]]
                    for e in round_["entries"]
                ]
            ),
        )
        for round_ in body["inspections"]
    ]
    result.append(
        Sheet(
            "整改率",
            ["区划代码", "名称", "发现问题", "已整改", "逾期未销号", "整改率"],
            _rows(
                [
                    [r["unit_code"], r["unit_name"], r["found"], r["fixed"], r["overdue"], r["rate"]]
                    for r in body["rectification"]["rows"]
                ]
            ),
        )
    )
    return result
