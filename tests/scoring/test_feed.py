"""feed.py: what scoring reads of the issues service, in bulk, and how a failing issues service reads (503)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.issues.regions.models import Level
from services.kit.errors import NotFound, ServiceUnavailable
from services.kit.peers import Peer
from services.scoring.feed import IssuesFeed, Rectification, RegionNode, UnitIndex, by_unit
from services.scoring.levels import RegionLevel, UnitLevel, levels_between
from services.scoring.periods import SHANGHAI
from services.scoring.rubrics.rules import Severity
from services.scoring.scores.rules import Finding
from tests.scoring.conftest import FakeIssue, FakeIssues
from tests.support.builders import COUNTY, FAR_VILLAGE, GRID, GRID_2, NEIGHBOUR, TOWN, VILLAGE, ZONE

START, END = datetime(2026, 11, 1, tzinfo=SHANGHAI), datetime(2026, 12, 1, tzinfo=SHANGHAI)


def feed_of(fake: FakeIssues) -> IssuesFeed:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
    return IssuesFeed(Peer("issues", "http://issues.test", client, None))


def nov(day: int) -> datetime:
    return datetime(2026, 11, day, 9, tzinfo=SHANGHAI)


def test_scorings_region_levels_are_the_issues_services_in_its_order() -> None:
    """Scoring keeps its own copy of the contract (services do not import each other): the same levels,
    top down, and the scored levels among them."""
    assert [level.value for level in RegionLevel] == [level.value for level in Level]
    assert {level.value for level in UnitLevel} <= {level.value for level in RegionLevel}
    assert levels_between(RegionLevel.county, RegionLevel.village) == [
        RegionLevel.town,
        RegionLevel.zone,
        RegionLevel.village,
    ]
    assert levels_between(RegionLevel.village, RegionLevel.town) == []
    assert RegionLevel.of("hamlet") is None


async def test_a_snapshot_is_one_listing_per_level_followed_through_its_pages() -> None:
    fake = FakeIssues(page_size=2)
    feed = feed_of(fake)
    root = await feed.region(COUNTY)
    assert root == RegionNode(COUNTY, "即墨区", "county", "3702", "/37/3702/370282/")
    nodes = await feed.snapshot(root, "village")
    assert [(n.level, n.code) for n in nodes] == [
        ("town", TOWN),
        ("town", "370282104"),
        ("zone", ZONE),
        ("village", VILLAGE),
        ("village", NEIGHBOUR),
        ("village", "370282103203"),
        ("village", FAR_VILLAGE),
        ("village", "370282104202"),
    ]
    # town: 1 page, zone: 1, village: 3 (five villages, two a page); plus the scope itself.
    assert fake.calls.count("GET /v1/regions/370282/subtree") == 5
    assert feed.calls == 6
    towns = await feed.snapshot(root, "town")
    assert [n.code for n in towns] == [TOWN, "370282104"]


async def test_the_issues_found_are_the_verified_ones_reported_in_the_window() -> None:
    fake = FakeIssues()
    fake.add(
        FakeIssue("370282-2026-000001", "luan-dui-fang", "normal", VILLAGE, nov(3)),
        FakeIssue(
            "370282-2026-000002", "luan-da-jian", "serious", GRID, nov(4), status="closed", satisfaction=4
        ),
        FakeIssue("370282-2026-000003", "luan-dui-fang", "minor", VILLAGE, nov(5), status="rejected"),
        FakeIssue("370282-2026-000004", "luan-dui-fang", "minor", VILLAGE, nov(5), status="reported"),
        FakeIssue(
            "370282-2026-000005", "luan-dui-fang", "minor", VILLAGE, datetime(2026, 12, 1, tzinfo=SHANGHAI)
        ),
        FakeIssue("370282-2026-000006", "luan-dui-fang", "minor", FAR_VILLAGE, nov(5)),
    )
    feed = feed_of(fake)
    found = await feed.issues_found(TOWN, START, END)
    assert [(i.code, i.severity, i.region) for i in found] == [
        ("370282-2026-000001", Severity.normal, VILLAGE),
        ("370282-2026-000002", Severity.serious, GRID),
    ]
    assert found[1].finding() == Finding("370282-2026-000002", "luan-da-jian", Severity.serious)
    assert (found[1].satisfaction, found[1].region_path) == (
        4,
        f"/37/3702/370282/{TOWN}/{ZONE}/{VILLAGE}/{GRID}/",
    )
    assert feed.calls == 1


async def test_issues_are_attributed_to_units_through_the_grids_they_were_filed_on() -> None:
    fake = FakeIssues()
    fake.add(
        FakeIssue("370282-2026-000001", "luan-dui-fang", "normal", GRID, nov(3)),
        FakeIssue("370282-2026-000002", "luan-dui-fang", "normal", GRID_2, nov(3)),
        FakeIssue("370282-2026-000003", "luan-dui-fang", "normal", NEIGHBOUR, nov(3)),
        FakeIssue("370282-2026-000004", "luan-dui-fang", "normal", TOWN, nov(3)),  # on the town itself
    )
    feed = feed_of(fake)
    nodes = await feed.snapshot(await feed.region(TOWN), "village")
    units = UnitIndex([n for n in nodes if n.level == "village"], nodes)
    before = feed.calls
    issues = await feed.issues_found(TOWN, START, END)
    assert feed.calls == before + 1  # the paths come with the issues: no listing of the grids
    grouped = by_unit(issues, units)
    assert {unit: sorted(i.code for i in found) for unit, found in grouped.items()} == {
        VILLAGE: ["370282-2026-000001", "370282-2026-000002"],
        NEIGHBOUR: ["370282-2026-000003"],
    }
    assert units.unit_of(ZONE) is None
    assert units.unit_of(VILLAGE) == VILLAGE


async def test_rectification_figures_per_unit_and_the_mean_satisfaction() -> None:
    fake = FakeIssues()
    fake.add(
        FakeIssue(
            "370282-2026-000001",
            "a",
            "normal",
            VILLAGE,
            nov(3),
            status="closed",
            satisfaction=5,
            closed_at=nov(6),
        ),
        FakeIssue(
            "370282-2026-000002",
            "a",
            "normal",
            GRID,
            nov(3),
            status="closed",
            satisfaction=2,
            closed_at=nov(7),
        ),
        FakeIssue("370282-2026-000003", "a", "normal", VILLAGE, nov(3)),
        FakeIssue("370282-2026-000004", "a", "normal", NEIGHBOUR, nov(3), status="closed", closed_at=nov(8)),
    )
    feed = feed_of(fake)
    figures = await feed.rectification(TOWN, START, END, "village")
    assert figures[VILLAGE] == Rectification(found=3, fixed=2, overdue=0)
    assert figures[VILLAGE].rate == Decimal(2) / Decimal(3)
    assert figures["370282103203"].rate is None
    nodes = await feed.snapshot(await feed.region(TOWN), "village")
    units = UnitIndex([n for n in nodes if n.level == "village"], nodes)
    assert await feed.satisfaction(TOWN, START, END, units) == {VILLAGE: Decimal("3.5")}


@pytest.mark.parametrize("failure", ["down", 500, 502, 503, 401, 403])
async def test_an_issues_service_that_cannot_be_read_is_503(failure: str | int) -> None:
    fake = FakeIssues(failure=failure)
    feed = feed_of(fake)
    for call in (
        feed.region(COUNTY),
        feed.issues_found(COUNTY, START, END),
        feed.rectification(COUNTY, START, END, "village"),
    ):
        with pytest.raises(ServiceUnavailable) as raised:
            await call
        assert (raised.value.status, raised.value.instance_code) == (503, "issues_unavailable")
        assert raised.value.headers == {"Retry-After": "5"}


async def test_answers_that_are_not_what_the_api_documents_are_503_and_an_unknown_region_404() -> None:
    fake = FakeIssues()
    fake.add(
        FakeIssue("370282-2026-000001", "a", "awful", VILLAGE, nov(3))
    )  # a severity scoring does not know
    feed = feed_of(fake)
    with pytest.raises(ServiceUnavailable):
        await feed.issues_found(COUNTY, START, END)
    with pytest.raises(NotFound) as raised:
        await feed.region("370299")
    assert raised.value.instance_code == "region_not_found"


_CODES = st.text(alphabet="abc", min_size=1, max_size=2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_CODES, min_size=1, max_size=4), min_size=1, max_size=8), st.data())
def test_a_region_lies_in_the_nearest_unit_on_its_path(paths: list[list[str]], data: st.DataObject) -> None:
    nodes = {}
    for codes in paths:
        for depth in range(1, len(codes) + 1):
            code = "-".join(codes[:depth])  # unique per place in the tree, as region codes are
            path = "/" + "".join(f"{'-'.join(codes[:d])}/" for d in range(1, depth + 1))
            nodes[code] = RegionNode(code, code, "x", None, path)
    chosen = data.draw(st.sets(st.sampled_from(sorted(nodes))))
    index = UnitIndex([nodes[c] for c in chosen], nodes.values())
    for code, node in nodes.items():
        ancestors = [c for c in node.path.strip("/").split("/") if c in chosen]
        assert index.unit_of(code) == (ancestors[-1] if ancestors else None)
    assert index.unit_of("nowhere") is None
