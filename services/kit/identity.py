"""The identity model every service shares: roles, scopes, token subjects and region paths.

Defined once here so that a service never writes `"village"` or `f"user:{id}"` by hand: the issuer mints
tokens from these names and every verifier reads them back with the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


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
# Staff above the village: they check others' work (accept, return, redact).
SUPERVISOR_ROLES = frozenset({Role.admin, Role.inspector, Role.officer})


class Scope(StrEnum):
    regions_read = "regions:read"
    regions_write = "regions:write"
    users_read = "users:read"
    users_write = "users:write"
    clients_write = "clients:write"
    issues_read = "issues:read"
    issues_write = "issues:write"
    issues_verify = "issues:verify"
    issues_accept = "issues:accept"
    scoring_read = "scoring:read"
    scoring_write = "scoring:write"
    photos_read = "photos:read"
    photos_write = "photos:write"
    photos_original = "photos:original"
    photos_attach = "photos:attach"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.regions_read: "read the region tree",
    Scope.regions_write: "create, change and import regions",
    Scope.users_read: "read users",
    Scope.users_write: "create, change and disable users",
    Scope.clients_write: "create and revoke API clients",
    Scope.issues_read: "read issues",
    Scope.issues_write: "report and update issues",
    Scope.issues_verify: "verify (立案) or reject reports",
    Scope.issues_accept: "accept (销号) or return submitted rectifications",
    Scope.scoring_read: "read scores, rankings and lists",
    Scope.scoring_write: "file scorecards and manage rounds",
    Scope.photos_read: "read photos and their variants",
    Scope.photos_write: "upload photos",
    Scope.photos_original: "download unaltered originals",
    Scope.photos_attach: "pin photos to issues (service only)",
}

# Scopes only the services' own tokens carry: never granted to a user or an API client.
SERVICE_ONLY_SCOPES = frozenset({Scope.photos_attach})

_READ = {Scope.regions_read, Scope.issues_read, Scope.scoring_read, Scope.photos_read}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.admin: frozenset(Scope) - SERVICE_ONLY_SCOPES,
    Role.inspector: frozenset(
        _READ
        | {
            Scope.users_read,
            Scope.issues_write,
            Scope.issues_verify,
            Scope.issues_accept,
            Scope.scoring_write,
            Scope.photos_write,
            Scope.photos_original,
        }
    ),
    Role.officer: frozenset(
        _READ
        | {
            Scope.regions_write,
            Scope.users_read,
            Scope.users_write,
            Scope.clients_write,
            Scope.issues_write,
            Scope.issues_verify,
            Scope.photos_write,
            Scope.photos_original,
        }
    ),
    Role.viewer: frozenset(_READ | {Scope.users_read, Scope.photos_original}),
    Role.village: frozenset(
        _READ | {Scope.users_read, Scope.users_write, Scope.issues_write, Scope.photos_write}
    ),
    Role.grid: frozenset(_READ | {Scope.issues_write, Scope.photos_write}),
    Role.citizen: frozenset(
        {Scope.regions_read, Scope.issues_read, Scope.issues_write, Scope.photos_read, Scope.photos_write}
    ),
    Role.integration: frozenset(),  # granted per client, within its creator's scopes
    Role.service: frozenset(
        {
            Scope.regions_read,
            Scope.users_read,
            Scope.issues_read,
            Scope.scoring_read,
            Scope.photos_read,
            Scope.photos_attach,
        }
    ),
}


def parse_role(value: object) -> Role | None:
    """The role a claim names, or None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return Role(value)
    except ValueError:
        return None


# ---- token subjects: `user:42` for a person, `client:svc-scoring` for an API client or a service ----

SubjectKind = Literal["user", "client"]
_SUBJECT_KINDS: tuple[SubjectKind, ...] = ("user", "client")


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a token speaks for: a user by numeric id, or an API client (a service too) by client id."""

    kind: SubjectKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def user(cls, user_id: int) -> Subject:
        return cls("user", str(user_id))

    @classmethod
    def client(cls, client_id: str) -> Subject:
        return cls("client", client_id)

    @classmethod
    def parse(cls, text: str) -> Subject | None:
        """`user:42` or `client:ID`; None for anything else (a user id is a positive integer)."""
        kind, sep, ident = text.partition(":")
        if not sep or not ident or kind not in _SUBJECT_KINDS or not ident.isprintable() or " " in ident:
            return None
        if kind == "user" and not (ident.isascii() and ident.isdigit() and int(ident) > 0):
            return None
        return cls("user" if kind == "user" else "client", ident)

    @property
    def user_id(self) -> int | None:
        return int(self.id) if self.kind == "user" else None

    @property
    def client_id(self) -> str | None:
        return self.id if self.kind == "client" else None


def service_client_id(service: str) -> str:
    """The client id a Huanzhi service signs in with: `svc-scoring`."""
    return f"svc-{service}"


# ---- region paths: `/37/3702/370282/370282103/` holds every ancestor's code, root first ----

ROOT_PATH = "/"


def child_path(parent_path: str | None, code: str) -> str:
    """`/37/3702/` + `370282` → `/37/3702/370282/`; a root region's path is `/code/`."""
    return f"{parent_path or ROOT_PATH}{code}/"


def codes_in_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def parent_code_of(path: str) -> str | None:
    """The parent's code read off a materialized path; None for a root."""
    codes = codes_in_path(path)
    return codes[-2] if len(codes) > 1 else None


def tree_depth(path: str) -> int:
    """How many ancestors a region has: 0 for a root."""
    return len(codes_in_path(path)) - 1


def is_within(path: str, ancestor_path: str) -> bool:
    """True when `path` is `ancestor_path` itself or lies below it."""
    return path.startswith(ancestor_path)


def path_prefix(path: str, depth: int) -> str:
    """The path cut to its first `depth` levels: `path_prefix('/37/3702/370282/370282103/', 3)` is the county's."""
    return ROOT_PATH + "".join(f"{code}/" for code in codes_in_path(path)[:depth])
