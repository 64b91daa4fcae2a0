"""Demo data for the embedded default: 即墨区 with towns, 管区, villages and grids, and one user per role."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.issues.auth.passwords import hash_secret
from services.issues.regions.models import Level, Region
from services.issues.settings import IssuesSettings
from services.issues.users.models import User
from services.kit.identity import Role, child_path

DEMO_PASSWORD = "huanzhi-demo-2026"

# (code, name, level, parent code)
DEMO_REGIONS: list[tuple[str, str, Level, str | None]] = [
    ("37", "山东省", Level.province, None),
    ("3702", "青岛市", Level.city, "37"),
    ("370282", "即墨区", Level.county, "3702"),
    ("370282103", "蓝村街道", Level.town, "370282"),
    ("370282103-GQ01", "蓝村第一管区", Level.zone, "370282103"),
    ("370282103201", "前庄村", Level.village, "370282103-GQ01"),
    ("370282103202", "后庄村", Level.village, "370282103-GQ01"),
    ("370282103203", "西河村", Level.village, "370282103"),
    ("370282103201-W01", "前庄村第一网格", Level.grid, "370282103201"),
    ("370282103201-W02", "前庄村第二网格", Level.grid, "370282103201"),
    ("370282104", "移风店镇", Level.town, "370282"),
    ("370282104201", "七级村", Level.village, "370282104"),
    ("370282104202", "大欧村", Level.village, "370282104"),
    ("370282104201-W01", "七级村第一网格", Level.grid, "370282104201"),
]

# (username, display name, role, home region code)
DEMO_USERS: list[tuple[str, str, Role, str]] = [
    ("admin", "即墨区整治办 管理员", Role.admin, "370282"),
    ("inspector", "区测评组 检查员", Role.inspector, "370282"),
    ("viewer", "区纪委 查阅", Role.viewer, "370282"),
    ("officer", "蓝村街道 干部", Role.officer, "370282103"),
    ("officer2", "移风店镇 干部", Role.officer, "370282104"),
    ("village", "前庄村 村两委", Role.village, "370282103201"),
    ("grid", "前庄村 网格员", Role.grid, "370282103201-W01"),
    ("citizen", "前庄村 村民", Role.citizen, "370282103201"),
]


async def seed_demo_data(
    session: AsyncSession, *, password_hash: str | None = None, settings: IssuesSettings | None = None
) -> bool:
    """Insert the demo tree and users into an empty database; a database with regions is left alone."""
    if (await session.execute(select(func.count()).select_from(Region))).scalar_one():
        return False
    by_code: dict[str, Region] = {}
    for code, name, level, parent_code in DEMO_REGIONS:
        parent = by_code[parent_code] if parent_code else None
        region = Region(
            code=code,
            name=name,
            level=level,
            parent_id=parent.id if parent else None,
            path=child_path(parent.path if parent else None, code),
        )
        session.add(region)
        await session.flush()
        by_code[code] = region
    password_hash = password_hash or hash_secret(DEMO_PASSWORD, settings)
    for username, display_name, role, region_code in DEMO_USERS:
        session.add(
            User(
                username=username,
                display_name=display_name,
                role=role,
                region_id=by_code[region_code].id,  # type: ignore[arg-type]
                password_hash=password_hash,
                created_by="demo",
            )
        )
    await session.flush()
    return True
