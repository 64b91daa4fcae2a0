"""The pure core of the region tree: codes, level order and materialized paths."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.issues.regions.models import DEPTH, Level
from services.kit.identity import child_path, is_within
from services.kit.text import is_plain_text

# Statistical division codes are digits; 管区 and grids get local codes such as 370282103-GQ01.
CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$"
_CODE = re.compile(CODE_PATTERN)


def valid_code(code: str) -> bool:
    return bool(_CODE.fullmatch(code))  # fullmatch: `$` alone would let a trailing newline through


def may_nest(parent: Level | None, child: Level) -> bool:
    """A child sits strictly deeper than its parent (管区 is optional, so a village may sit under a town).

    Only a province (or a county, for a county-only deployment) may be a root.
    """
    if parent is None:
        return child in (Level.province, Level.city, Level.county)
    return DEPTH[child] > DEPTH[parent]


def parse_level(value: str) -> Level | None:
    try:
        return Level(value)
    except ValueError:
        return None


def level_fits(parent: Level | None, level: Level, child_levels: Iterable[Level] = ()) -> bool:
    """A region's level nests under its parent and above every one of its children."""
    return may_nest(parent, level) and all(DEPTH[child] > DEPTH[level] for child in child_levels)


# ---- CSV import planning: which rows of a file may be stored, and why the others may not ----

MAX_NAME_LENGTH = 100


def valid_name(name: str) -> bool:
    """A trimmed display name: 1 to 100 characters, no control or text-direction characters."""
    return 1 <= len(name) <= MAX_NAME_LENGTH and is_plain_text(name)


@dataclass(frozen=True, slots=True)
class ImportLine:
    """One data row of an import file as read, before any check (`problem` set when it could not be read)."""

    code: str
    name: str
    level: str
    parent_code: str
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class KnownRegion:
    """A stored region the file names, as a code or as a parent; it may lie outside the caller's scope."""

    code: str
    path: str
    level: Level


@dataclass(frozen=True, slots=True)
class PlannedRow:
    """The verdict on one row: a path to store it at, or an error code and a message."""

    code: str
    name: str
    level: Level | None
    parent_code: str | None
    path: str | None = None
    error_code: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


def plan_import(
    lines: Sequence[ImportLine], known: Mapping[str, KnownRegion], scope_path: str
) -> list[PlannedRow]:
    """Check every row against the stored tree and the rows before it; nothing here touches a database.

    A parent outside `scope_path` is reported exactly like an unknown one, so an import reveals nothing.
    """
    planned: list[PlannedRow] = []
    accepted: dict[str, PlannedRow] = {}
    seen: set[str] = set()  # lowered: codes are unique whatever their case
    taken = {code.lower() for code in known}
    for line in lines:
        row = _plan_row(line, known, taken, scope_path, accepted, seen)
        seen.add(line.code.strip().lower())
        if row.ok:
            accepted[row.code] = row
        planned.append(row)
    return planned


def _plan_row(
    line: ImportLine,
    known: Mapping[str, KnownRegion],
    taken: set[str],
    scope_path: str,
    accepted: Mapping[str, PlannedRow],
    seen: set[str],
) -> PlannedRow:
    code, name, parent_code = line.code.strip(), line.name.strip(), line.parent_code.strip() or None
    level = parse_level(line.level.strip())

    def refuse(error_code: str, detail: str) -> PlannedRow:
        return PlannedRow(code, name, level, parent_code, error_code=error_code, detail=detail)

    if line.problem is not None:
        return refuse("bad_row", line.problem)
    if not valid_code(code):
        return refuse("invalid_code", f"code {code!r} must be letters, digits and '-' (at most 32)")
    if not valid_name(name):
        return refuse(
            "invalid_name",
            f"name must be 1 to {MAX_NAME_LENGTH} characters, without control or text-direction characters",
        )
    if level is None:
        return refuse("invalid_level", f"level {line.level.strip()!r} is not one of {', '.join(Level)}")
    if code.lower() in taken:
        return refuse("region_code_taken", f"region code {code} is already taken")
    if code.lower() in seen:
        return refuse("duplicate_in_file", f"region code {code} appears on an earlier row")
    parent_path: str | None
    parent_level: Level | None
    if parent_code is None:
        if scope_path != "/":
            return refuse("cannot_create_root", "only a caller over the whole tree may create a root region")
        parent_path, parent_level = None, None
    elif parent_code in accepted:
        parent_path, parent_level = accepted[parent_code].path, accepted[parent_code].level
    elif parent_code in known and is_within(known[parent_code].path, scope_path):
        parent_path, parent_level = known[parent_code].path, known[parent_code].level
    elif parent_code.lower() in seen:
        return refuse("parent_refused", f"parent region {parent_code} was refused on an earlier row")
    else:
        return refuse(
            "unknown_parent",
            f"parent region {parent_code} not found (a parent in the file must come before its children)",
        )
    if not may_nest(parent_level, level):
        under = f"a {parent_level}" if parent_level else "the top"
        return refuse("level_does_not_nest", f"a {level} may not sit under {under}")
    return PlannedRow(code, name, level, parent_code, path=child_path(parent_path, code))
