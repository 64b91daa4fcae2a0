"""The tests' own county, its users, and builders of rows and request bodies.

Every test database of the issues service starts from this tree and these users (not the demo seed of
`services/issues/demo.py`, which only the launcher's test looks at). The shape is a county with two towns,
a 管区 between a town and two of its villages, and grids under villages: every nesting the rules allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.issues.clients.models import ApiClient
from services.issues.regions.models import Level, Region
from services.issues.users.models import User
from services.kit.identity import ROOT_PATH, Role, Scope, child_path

# The password of every user of the tree (a test's own users may have their own).
TEST_PASSWORD = "tree-users-pass-2026"

PROVINCE = "37"
CITY = "3702"
COUNTY = "370282"  # 即墨区: home of the county staff
TOWN = "370282103"  # 蓝村街道: the town officer's home
ZONE = "370282103-GQ01"  # 蓝村第一管区, between the town and two of its villages
VILLAGE = "370282103201"  # 前庄村: the village cadre's home, under the zone
NEIGHBOUR = "370282103202"  # 后庄村: another village of the zone
TOWN_VILLAGE = "370282103203"  # 西河村: a village straight under the town
GRID = "370282103201-W01"
GRID_2 = "370282103201-W02"
OTHER_TOWN = "370282104"  # 移风店镇
FAR_VILLAGE = "370282104201"  # 七级村: a village of the other town
FAR_VILLAGE_2 = "370282104202"
FAR_GRID = "370282104201-W01"


@dataclass(frozen=True)
class TreeRegion:
    code: str
    name: str
    level: Level
    parent: str | None


@dataclass(frozen=True)
class TreeUser:
    username: str
    display_name: str
    role: Role
    region: str


TEST_REGIONS: tuple[TreeRegion, ...] = (
    TreeRegion(PROVINCE, "山东省", Level.province, None),
    TreeRegion(CITY, "青岛市", Level.city, PROVINCE),
    TreeRegion(COUNTY, "即墨区", Level.county, CITY),
    TreeRegion(TOWN, "蓝村街道", Level.town, COUNTY),
    TreeRegion(ZONE, "蓝村第一管区", Level.zone, TOWN),
    TreeRegion(VILLAGE, "前庄村", Level.village, ZONE),
    TreeRegion(NEIGHBOUR, "后庄村", Level.village, ZONE),
    TreeRegion(TOWN_VILLAGE, "西河村", Level.village, TOWN),
    TreeRegion(GRID, "前庄村第一网格", Level.grid, VILLAGE),
    TreeRegion(GRID_2, "前庄村第二网格", Level.grid, VILLAGE),
    TreeRegion(OTHER_TOWN, "移风店镇", Level.town, COUNTY),
    TreeRegion(FAR_VILLAGE, "七级村", Level.village, OTHER_TOWN),
    TreeRegion(FAR_VILLAGE_2, "大欧村", Level.village, OTHER_TOWN),
    TreeRegion(FAR_GRID, "七级村第一网格", Level.grid, FAR_VILLAGE),
)

# One user per staff role at its natural home, a second officer in the other town, and a citizen.
TEST_USERS: tuple[TreeUser, ...] = (
    TreeUser("admin", "即墨区整治办 管理员", Role.admin, COUNTY),
    TreeUser("inspector", "区测评组 检查员", Role.inspector, COUNTY),
    TreeUser("viewer", "区纪委 查阅", Role.viewer, COUNTY),
    TreeUser("officer", "蓝村街道 干部", Role.officer, TOWN),
    TreeUser("officer2", "移风店镇 干部", Role.officer, OTHER_TOWN),
    TreeUser("village", "前庄村 村两委", Role.village, VILLAGE),
    TreeUser("grid", "前庄村 网格员", Role.grid, GRID),
    TreeUser("citizen", "前庄村 村民", Role.citizen, VILLAGE),
)

REGION_PATHS: dict[str, str] = {}
for _region in TEST_REGIONS:
    REGION_PATHS[_region.code] = child_path(
        REGION_PATHS[_region.parent] if _region.parent else None, _region.code
    )
REGION_NAMES = {r.code: r.name for r in TEST_REGIONS}
USERS_BY_NAME = {u.username: u for u in TEST_USERS}


def region_path(code: str) -> str:
    """The materialized path of a tree region; `*` (the whole tree, for services) is the root."""
    return ROOT_PATH if code == "*" else REGION_PATHS[code]


def codes_under(code: str) -> set[str]:
    """The codes of a tree region and everything below it."""
    return {c for c, path in REGION_PATHS.items() if path.startswith(REGION_PATHS[code])}


def users_under(code: str) -> set[str]:
    """The usernames of the tree users homed in a region's subtree."""
    return {u.username for u in TEST_USERS if u.region in codes_under(code)}


# ---- rows ----


async def add_regions(
    session: AsyncSession, regions: Iterable[TreeRegion] = TEST_REGIONS
) -> dict[str, Region]:
    """Insert regions parents first (a parent is looked up among those already added); by code."""
    by_code: dict[str, Region] = {}
    for spec in regions:
        parent = by_code[spec.parent] if spec.parent else None
        region = Region(
            code=spec.code,
            name=spec.name,
            level=spec.level,
            parent_id=parent.id if parent else None,
            path=child_path(parent.path if parent else None, spec.code),
        )
        session.add(region)
        await session.flush()
        by_code[spec.code] = region
    return by_code


def user_row(
    spec: TreeUser, region: Region, password_hash: str | None, *, created_by: str = "tests", **fields: Any
) -> User:
    assert region.id is not None
    return User(
        username=spec.username,
        display_name=spec.display_name,
        role=spec.role,
        region_id=region.id,
        password_hash=password_hash,
        created_by=created_by,
        **fields,
    )


async def seed_tree(session: AsyncSession, password_hash: str) -> None:
    """The test tree and its users (every one with `password_hash`, the hash of TEST_PASSWORD)."""
    regions = await add_regions(session)
    for spec in TEST_USERS:
        session.add(user_row(spec, regions[spec.region], password_hash))
    await session.flush()


def api_client_row(
    region: Region,
    secret_hash: str,
    *,
    client_id: str = "cli_0123456789abcdef",
    name: str = "测试集成",
    scopes: Iterable[str] = (Scope.regions_read, Scope.issues_read),
    role: Role = Role.integration,
    created_by: str = "tests",
) -> ApiClient:
    assert region.id is not None
    return ApiClient(
        client_id=client_id,
        name=name,
        secret_hash=secret_hash,
        role=role,
        scopes=" ".join(sorted(scopes)),
        region_id=region.id,
        created_by=created_by,
    )


# ---- request bodies ----


def new_user(**changes: Any) -> dict[str, Any]:
    """A valid POST /v1/users body: a village cadre of 前庄村."""
    return {
        "username": "zhang.wei",
        "display_name": "前庄村 张伟",
        "phone": "13812345678",
        "role": "village",
        "region_code": VILLAGE,
        "password": "qianzhuang-2026!",
        **changes,
    }


def new_client(**changes: Any) -> dict[str, Any]:
    """A valid POST /v1/clients body: a town's platform reading regions and issues."""
    return {
        "name": "蓝村街道 数字乡村平台",
        "scopes": ["regions:read", "issues:read"],
        "region_code": TOWN,
        **changes,
    }


def new_region(**changes: Any) -> dict[str, Any]:
    """A valid POST /v1/regions body: a new village straight under the town."""
    return {"code": "370282103204", "name": "北庄村", "level": "village", "parent_code": TOWN, **changes}
