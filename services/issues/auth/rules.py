"""Roles, their rank and the scopes each may hold: the pure core of authorization."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"  # county office 整治办
    inspector = "inspector"  # 测评组 / 督查组
    officer = "officer"  # town or 管区 cadre
    viewer = "viewer"  # read-only, e.g. discipline inspection
    village = "village"  # village cadre 村两委
    grid = "grid"  # 网格员
    citizen = "citizen"  # the public, via WeChat
    integration = "integration"  # API client with scopes
    service = "service"  # another Huanzhi service


# Who outranks whom when creating users: nobody grants a role ranked above their own.
RANK: dict[Role, int] = {
    Role.admin: 100,
    Role.inspector: 80,
    Role.officer: 70,
    Role.viewer: 60,
    Role.village: 50,
    Role.grid: 40,
    Role.citizen: 10,
    Role.integration: 0,
    Role.service: 0,
}

STAFF_ROLES = frozenset({Role.admin, Role.inspector, Role.officer, Role.viewer, Role.village, Role.grid})
USER_ROLES = STAFF_ROLES | {Role.citizen}

ALL_SCOPES: dict[str, str] = {
    "regions:read": "read the region tree",
    "regions:write": "create, change and import regions",
    "users:read": "read users",
    "users:write": "create, change and disable users",
    "clients:write": "create and revoke API clients",
    "issues:read": "read issues",
    "issues:write": "report and update issues",
    "issues:verify": "verify (立案) or reject reports",
    "issues:accept": "accept (销号) or return submitted rectifications",
    "scoring:read": "read scores, rankings and lists",
    "scoring:write": "file scorecards and manage rounds",
    "photos:read": "read photos and their variants",
    "photos:write": "upload photos",
    "photos:original": "download unaltered originals",
    "photos:attach": "pin photos to issues (service only)",
}

_READ = {"regions:read", "issues:read", "scoring:read", "photos:read"}

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.admin: frozenset(ALL_SCOPES) - {"photos:attach"},
    Role.inspector: frozenset(
        _READ
        | {
            "users:read",
            "issues:write",
            "issues:verify",
            "issues:accept",
            "scoring:write",
            "photos:write",
            "photos:original",
        }
    ),
    Role.officer: frozenset(
        _READ
        | {
            "regions:write",
            "users:read",
            "users:write",
            "clients:write",
            "issues:write",
            "issues:verify",
            "photos:write",
            "photos:original",
        }
    ),
    Role.viewer: frozenset(_READ | {"users:read", "photos:original"}),
    Role.village: frozenset(_READ | {"users:read", "users:write", "issues:write", "photos:write"}),
    Role.grid: frozenset(_READ | {"issues:write", "photos:write"}),
    Role.citizen: frozenset({"regions:read", "issues:read", "issues:write", "photos:read", "photos:write"}),
    Role.integration: frozenset(),  # granted per client, within its creator's scopes
    Role.service: frozenset(
        {"regions:read", "users:read", "issues:read", "scoring:read", "photos:read", "photos:attach"}
    ),
}


def may_grant_role(granter: str, role: str) -> bool:
    """A caller may give a user a staff or citizen role no higher than its own."""
    try:
        granter_role, target = Role(granter), Role(role)
    except ValueError:
        return False
    return target in USER_ROLES and RANK[target] <= RANK[granter_role]


def may_grant_scopes(granter_scopes: frozenset[str], requested: frozenset[str]) -> bool:
    """An API client gets only scopes its creator holds (and never the service-only attach)."""
    return requested <= granter_scopes and "photos:attach" not in requested and requested <= set(ALL_SCOPES)
