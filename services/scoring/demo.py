"""Demo data of the scoring service, so a newcomer sees rankings, red and black lists and escalations at once.

Made the way a county office would make it, through the public APIs: the demo county's last two months of
inspection rounds (上旬 and 下旬, each with the region snapshot read from the issues service), an
inspector's scorecard for every village, every round closed (the issues found in the demo county deduct
automatically), both months published (so the second shows each village's change and the black list's
second month), and the weekly bulletin of the last full week. It runs once the three services answer
(the launcher calls it), against the issues service's demo tree and users; a stack that already has a
published period is left alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

from services.scoring.periods import PeriodKind, period_of

__all__ = ["DEMO_SCOPE", "DemoOutcome", "DemoSeedingFailed", "seed_demo_scoring"]

DEMO_SCOPE = "370282"  # 即墨区, the issues service's demo county
DEMO_PASSWORD = "huanzhi-demo-2026"  # the issues service's demo users' password

# What inspectors write on a village's scorecard (indicator, points off, note).
_FINDINGS = (
    ("liu-luan", 2, "村内主干道两侧柴草乱堆"),
    ("wu-shui", 1, "村南排水沟有积存污水"),
    ("la-ji", 1.5, "垃圾桶满溢未及时清运"),
    ("ting-yuan", 1, "部分农户庭院杂物堆放"),
    ("chang-xiao", 2, "保洁台账记录不全"),
    ("dao-lu", 1, "道路沿线绿化带有白色垃圾"),
)


class DemoSeedingFailed(RuntimeError):
    """A call of the seeding did not answer as the API documents."""


@dataclass(frozen=True)
class DemoOutcome:
    periods: tuple[str, ...]
    rounds: int
    scorecards: int
    bulletins: int
    skipped: bool = False


def _checked(answer: httpx.Response, *expected: int) -> Any:
    if answer.status_code not in (expected or (200,)):
        raise DemoSeedingFailed(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}: {answer.text[:300]}"
        )
    return answer.json()


async def _login(issues: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    token = _checked(
        await issues.post(
            "/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
        )
    )
    return {"Authorization": f"Bearer {token['access_token']}"}


async def _villages(scoring: httpx.AsyncClient, round_id: int, headers: dict[str, str]) -> list[str]:
    codes: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"level": "village", "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = _checked(await scoring.get(f"/v1/rounds/{round_id}/units", params=params, headers=headers))
        codes += [unit["code"] for unit in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return codes


def scorecard(unit_code: str, round_id: int, month: str) -> dict[str, Any]:
    """An inspector's scorecard for a village: a few findings, the same ones on every run."""
    picker = random.Random(f"{unit_code}/{month}/{round_id % 2}")  # noqa: S311 - demo data, not secrets
    findings = picker.sample(_FINDINGS, picker.randint(0, 4))
    return {
        "unit_code": unit_code,
        "items": [{"indicator": code, "deduction": points, "note": note} for code, points, note in findings],
        "notes": "测评组现场检查" if findings else "村容整洁，保洁到位",
    }


async def seed_demo_scoring(
    issues: httpx.AsyncClient,
    scoring: httpx.AsyncClient,
    *,
    today: date,
    password: str = DEMO_PASSWORD,
    scope: str = DEMO_SCOPE,
) -> DemoOutcome:
    """Seed the demo (see the module's note) through the issues and scoring APIs; `today` is the local
    date. DemoSeedingFailed when a call is refused."""
    admin = await _login(issues, "admin", password)
    inspector = await _login(issues, "inspector", password)
    if _checked(await scoring.get("/v1/periods", headers=admin))["items"]:
        return DemoOutcome((), 0, 0, 0, skipped=True)
    rubrics = _checked(
        await scoring.get("/v1/rubrics", params={"code": "default", "latest": "true"}, headers=admin)
    )
    rubric_id = rubrics["items"][0]["id"]

    this_month = period_of(PeriodKind.month, today)
    months = (this_month.previous(2), this_month.previous(1))
    rounds = cards = 0
    for month in months:
        pair = _checked(
            await scoring.post(
                "/v1/rounds/monthly",
                json={"period": month.code, "scope": scope, "unit_level": "village", "rubric_id": rubric_id},
                headers=inspector,
            ),
            201,
        )
        for round_ in pair["items"]:
            round_id = int(round_["id"])
            for code in await _villages(scoring, round_id, inspector):
                _checked(
                    await scoring.post(
                        f"/v1/rounds/{round_id}/scorecards",
                        json=scorecard(code, round_id, month.code),
                        headers=inspector,
                    ),
                    201,
                )
                cards += 1
            _checked(await scoring.post(f"/v1/rounds/{round_id}/close", headers=inspector))
            rounds += 1
        _checked(
            await scoring.post(f"/v1/periods/{month.code}/publish", json={"scope": scope}, headers=admin), 201
        )
    last_monday = today - timedelta(days=today.weekday() + 7)
    _checked(
        await scoring.post(
            "/v1/bulletins/weekly",
            json={"week_start": last_monday.isoformat(), "scope": scope},
            headers=admin,
        ),
        201,
    )
    return DemoOutcome(tuple(m.code for m in months), rounds, cards, len(months) + 1)
