"""Publishing periods across the running services: rounds scored by inspectors' scorecards and closed
against the real issues service, months published with the issues service's statistics read over HTTP,
the seeds' black-list rules escalating over two and three months, concurrent publishing writing once,
and nothing stored while the issues service is down."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.scoring.periods import SHANGHAI, PeriodKind, period_of
from tests.crossservice.conftest import LiveStack
from tests.support.builders import (
    COUNTY,
    FAR_VILLAGE,
    FAR_VILLAGE_2,
    NEIGHBOUR,
    TOWN,
    TOWN_VILLAGE,
    VILLAGE,
)

pytestmark = pytest.mark.crossservice

# The default rubric's indicators and their points, spent in this order to reach a target score.
INDICATORS = (
    ("liu-luan", 30),
    ("la-ji", 20),
    ("wu-shui", 10),
    ("ce-suo", 10),
    ("ting-yuan", 10),
    ("dao-lu", 5),
    ("lv-hua", 5),
    ("chu-qin", 5),
    ("chang-xiao", 5),
)
# Months long past, so that no issue of the live stack falls in them: the scores are the scorecards'.
MONTHS = {
    "2025-01": {VILLAGE: 95, TOWN_VILLAGE: 90, NEIGHBOUR: 80, FAR_VILLAGE: 75, FAR_VILLAGE_2: 60},
    "2025-02": {VILLAGE: 95, NEIGHBOUR: 90, TOWN_VILLAGE: 80, FAR_VILLAGE: 75, FAR_VILLAGE_2: 60},
    "2025-03": {NEIGHBOUR: 95, FAR_VILLAGE: 90, VILLAGE: 80, TOWN_VILLAGE: 75, FAR_VILLAGE_2: 60},
}


def deductions(target: int) -> list[dict[str, Any]]:
    left, items = 100 - target, []
    for indicator, points in INDICATORS:
        if left <= 0:
            break
        taken = min(points, left)
        items.append({"indicator": indicator, "deduction": taken, "note": "现场检查扣分"})
        left -= taken
    return items


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def inspect_month(
    live_stack: LiveStack,
    http: httpx.Client,
    inspector: dict[str, str],
    period: str,
    scope: str,
    scores: dict[str, int],
) -> None:
    scoring = live_stack.urls["scoring"]
    rubric = ok(
        http.get(f"{scoring}/v1/rubrics", params={"code": "default", "latest": "true"}, headers=inspector)
    )
    pair = ok(
        http.post(
            f"{scoring}/v1/rounds/monthly",
            json={
                "period": period,
                "scope": scope,
                "unit_level": "village",
                "rubric_id": rubric["items"][0]["id"],
            },
            headers=inspector,
        ),
        201,
    )
    for round_ in pair["items"]:
        for code, target in scores.items():
            ok(
                http.post(
                    f"{scoring}/v1/rounds/{round_['id']}/scorecards",
                    json={"unit_code": code, "items": deductions(target)},
                    headers=inspector,
                ),
                201,
            )
        ok(http.post(f"{scoring}/v1/rounds/{round_['id']}/close", headers=inspector))


def test_the_seeds_black_list_rules_escalate_over_months_and_concurrent_publishing_writes_once(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    scoring = live_stack.urls["scoring"]
    admin, inspector = bearer(live_stack.login(http, "admin")), bearer(live_stack.login(http, "inspector"))
    for period, scores in MONTHS.items():
        inspect_month(live_stack, http, inspector, period, COUNTY, scores)
        if period != "2025-03":
            ok(http.post(f"{scoring}/v1/periods/{period}/publish", headers=admin), 201)

    def publish(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as own:
            return own.post(f"{scoring}/v1/periods/2025-03/publish", json={"scope": COUNTY}, headers=admin)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(publish, range(2)))
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    published = answers[0].json()
    assert published["summary"]["scored"] == 5
    assert ok(http.get(f"{scoring}/v1/bulletins", params={"period": "2025-03"}, headers=admin))["items"] != []

    def fired(period: str) -> list[tuple[str, str, int]]:
        """Every escalation of the period, sorted: one written twice (two publishers) would show twice."""
        items = ok(
            http.get(f"{scoring}/v1/escalations", params={"period": period, "limit": 200}, headers=admin)
        )
        return sorted((e["rule_code"], e["unit"]["code"], e["streak"]) for e in items["items"])

    assert fired("2025-01") == []
    assert fired("2025-02") == [("black-two-months", FAR_VILLAGE, 2), ("black-two-months", FAR_VILLAGE_2, 2)]
    assert fired("2025-03") == [
        ("black-three-months", FAR_VILLAGE_2, 3),
        ("black-two-months", TOWN_VILLAGE, 2),
    ]
    ranking = ok(
        http.get(f"{scoring}/v1/rankings", params={"period": "2025-03", "parent": COUNTY}, headers=admin)
    )["items"]
    assert [(e["unit"]["code"], e["score"], e["rank"]) for e in ranking] == [
        (NEIGHBOUR, 95.0, 1),
        (FAR_VILLAGE, 90.0, 2),
        (VILLAGE, 80.0, 3),
        (TOWN_VILLAGE, 75.0, 4),
        (FAR_VILLAGE_2, 60.0, 5),
    ]
    # The village cadre sees its own place only.
    mine = ok(
        http.get(
            f"{scoring}/v1/rankings",
            params={"period": "2025-03"},
            headers=bearer(live_stack.login(http, "village")),
        )
    )
    assert {e["unit"]["code"] for e in mine["items"]} == {VILLAGE}


def test_a_period_reads_the_issues_statistics_and_stores_nothing_while_issues_is_down(
    live_stack: LiveStack, http: httpx.Client
) -> None:
    issues, scoring = live_stack.urls["issues"], live_stack.urls["scoring"]
    admin, inspector = bearer(live_stack.login(http, "admin")), bearer(live_stack.login(http, "inspector"))
    now = datetime.now(SHANGHAI)
    month = period_of(PeriodKind.month, now)
    reported = http.post(
        f"{issues}/v1/issues",
        json={
            "category": "luan-dui-fang",
            "region": VILLAGE,
            "source": "inspection",
            "severity": "normal",
            "description": "村口柴草乱堆",
            "latitude": 36.4312,
            "longitude": 120.4471,
        },
        headers=inspector,
    )
    assert reported.status_code == 201, reported.text
    inspect_month(
        live_stack, http, inspector, month.code, TOWN, {VILLAGE: 90, NEIGHBOUR: 85, TOWN_VILLAGE: 80}
    )

    live_stack.stop_service("issues")
    try:
        down = http.post(f"{scoring}/v1/periods/{month.code}/publish", json={"scope": TOWN}, headers=admin)
    finally:
        live_stack.start_service("issues")
    assert down.status_code == 503 and down.json()["code"] == "issues_unavailable", down.text
    missing = http.get(f"{scoring}/v1/periods/{month.code}", params={"scope": TOWN}, headers=admin)
    assert missing.status_code == 404, missing.text

    stats = ok(
        http.get(
            f"{issues}/v1/stats/rectification",
            params={
                "region": TOWN,
                "level": "village",
                "from": month.starts_at.isoformat(),
                "to": month.ends_at.isoformat(),
            },
            headers=admin,
        )
    )
    expected = {row["key"]: (row["found"], row["fixed"], row["overdue"]) for row in stats["items"]}
    assert expected[VILLAGE][0] >= 1  # the issue reported above
    ok(http.post(f"{scoring}/v1/periods/{month.code}/publish", json={"scope": TOWN}, headers=admin), 201)
    history = ok(http.get(f"{scoring}/v1/rankings/units/{VILLAGE}", headers=admin))
    this = next(p for p in history["periods"] if p["period"] == month.code)
    figures = this["rectification"]
    assert (figures["found"], figures["fixed"], figures["overdue"]) == expected[VILLAGE]
    components = {c["component"]: c for c in this["components"]}
    assert components["rectification"]["value"] is not None
    # The issue reported in the 上旬 window was deducted automatically when that round closed.
    breakdowns = history["breakdowns"]
    assert any(reported.json()["code"] in str(b) for b in breakdowns.values())
