"""Who may grant what: the pure core of handing out roles and scopes (the roles themselves are the kit's)."""

from __future__ import annotations

from services.kit.identity import RANK, SERVICE_ONLY_SCOPES, USER_ROLES, Scope, parse_role


def may_grant_role(granter: str, role: str) -> bool:
    """A caller may give a user a staff or citizen role no higher than its own."""
    granter_role, target = parse_role(granter), parse_role(role)
    if granter_role is None or target is None:
        return False
    return target in USER_ROLES and RANK[target] <= RANK[granter_role]


def may_grant_scopes(granter_scopes: frozenset[str], requested: frozenset[str]) -> bool:
    """An API client gets only scopes its creator holds (and never a service-only one such as attach)."""
    return (
        requested <= granter_scopes
        and not requested & SERVICE_ONLY_SCOPES
        and requested <= {scope.value for scope in Scope}
    )
