"""The pure core of categories: codes, the extra-field specs, checking an issue's `fields`, default deadlines."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.issues.categories.models import FieldType, Severity
from services.kit.errors import FieldError
from services.kit.text import is_plain_text

__all__ = [
    "CODE_PATTERN",
    "FIELD_KEY_PATTERN",
    "MAX_CHOICES",
    "MAX_DEADLINE_DAYS",
    "MAX_FIELDS",
    "MAX_STRING_VALUE",
    "FieldSpec",
    "HasDeadlines",
    "check_fields",
    "deadline_days_for",
    "is_rfc3339",
    "spec_problems",
    "specs_of",
    "valid_code",
]

# `luan-dui-fang`: letters, digits and `-`, at most 32 (an issue stores the code in 32 characters).
CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$"
_CODE = re.compile(CODE_PATTERN)
# `toilet_type`: the key of an extra field, as it appears in an issue's `fields` object.
FIELD_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_FIELD_KEY = re.compile(FIELD_KEY_PATTERN)

MAX_FIELDS = 20
MAX_CHOICES = 50
MAX_LABEL = 50
MAX_STRING_VALUE = 500
MIN_DEADLINE_DAYS, MAX_DEADLINE_DAYS = 1, 365

CHOICE_TYPES = frozenset({FieldType.choice, FieldType.multi_choice})

# RFC 3339 `date-time`: a `T` (either case), seconds, optional fraction, and an offset (`Z` or ±hh:mm).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def valid_code(code: str) -> bool:
    return bool(_CODE.fullmatch(code))  # fullmatch: `$` alone would let a trailing newline through


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One extra field a category asks intake for (e.g. 户厕: `toilet_type`, one of 水冲式 / 三格化粪池 / …)."""

    key: str
    label: str
    type: FieldType
    required: bool = False
    choices: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "type": self.type.value,
            "required": self.required,
            "choices": list(self.choices) if self.choices is not None else None,
        }


def specs_of(fields: Iterable[Mapping[str, Any]]) -> tuple[FieldSpec, ...]:
    """The specs a category stores as JSON (`Category.fields`), as FieldSpec values."""
    return tuple(
        FieldSpec(
            key=str(item["key"]),
            label=str(item["label"]),
            type=FieldType(item["type"]),
            required=bool(item.get("required", False)),
            choices=tuple(item["choices"]) if item.get("choices") is not None else None,
        )
        for item in fields
    )


def spec_problems(specs: Sequence[FieldSpec]) -> list[str]:
    """What is wrong with a list of field specs, as messages; empty when it may be stored."""
    problems: list[str] = []
    if len(specs) > MAX_FIELDS:
        problems.append(f"at most {MAX_FIELDS} fields")
    seen: set[str] = set()
    for spec in specs:
        if not _FIELD_KEY.fullmatch(spec.key):
            problems.append(f"key {spec.key!r} must be lower-case letters, digits and `_` (at most 32)")
        elif spec.key in seen:
            problems.append(f"key {spec.key!r} appears twice")
        seen.add(spec.key)
        if not (1 <= len(spec.label) <= MAX_LABEL and is_plain_text(spec.label)):
            problems.append(f"label of {spec.key!r} must be 1 to {MAX_LABEL} characters of plain text")
        if spec.type in CHOICE_TYPES:
            choices = spec.choices or ()
            if not choices:
                problems.append(f"field {spec.key!r} of type {spec.type} needs choices")
            elif len(choices) > MAX_CHOICES:
                problems.append(f"field {spec.key!r} has more than {MAX_CHOICES} choices")
            elif len(set(choices)) != len(choices):
                problems.append(f"field {spec.key!r} repeats a choice")
            elif not all(1 <= len(c) <= MAX_LABEL and is_plain_text(c) and c == c.strip() for c in choices):
                problems.append(f"choices of {spec.key!r} must be 1 to {MAX_LABEL} characters of plain text")
        elif spec.choices is not None:
            problems.append(f"field {spec.key!r} of type {spec.type} takes no choices")
    return problems


def is_rfc3339(value: str) -> bool:
    """An RFC 3339 date-time with an offset (`2026-11-23T09:30:00+08:00`, `…Z`) naming a real moment."""
    if not _RFC3339.fullmatch(value):
        return False
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:  # 2026-02-30, 25:00, +24:00 …
        return False
    return parsed.tzinfo is not None


def _is_number(value: object) -> bool:
    # JSON numbers; bool is an int to Python but never a number here, and NaN/∞ are not JSON.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def check_fields(
    specs: Sequence[FieldSpec], values: Mapping[str, Any], *, location: str = "body.fields"
) -> list[FieldError]:
    """Check an issue's `fields` object against its category's specs; every problem, none when it is good.

    A required field must be present and not blank (null, whitespace, an empty list); an optional one may be
    left out or null. Keys the category does not name are refused. Error types: `missing`,
    `extra_forbidden`, `string_type`, `string_too_long`, `number_type`, `datetime_format`, `choice_invalid`,
    `list_type`, `choice_duplicate`; `field` is `{location}.{key}`.
    """
    errors: list[FieldError] = []

    def refuse(key: str, kind: str, message: str) -> None:
        errors.append(FieldError(field=f"{location}.{key}", message=message, type=kind))

    by_key = {spec.key: spec for spec in specs}
    for key in sorted(set(values) - set(by_key)):
        refuse(key, "extra_forbidden", f"this category has no field {key!r}")
    for spec in specs:
        value = values.get(spec.key)
        if value is None or (spec.required and _blank(value)):
            if spec.required:
                refuse(spec.key, "missing", f"{spec.label} is required")
            continue
        if spec.type is FieldType.string:
            if not isinstance(value, str):
                refuse(spec.key, "string_type", f"{spec.label} must be a string")
            elif len(value) > MAX_STRING_VALUE:
                refuse(spec.key, "string_too_long", f"{spec.label} has at most {MAX_STRING_VALUE} characters")
        elif spec.type is FieldType.number:
            if not _is_number(value):
                refuse(spec.key, "number_type", f"{spec.label} must be a number")
        elif spec.type is FieldType.datetime:
            if not (isinstance(value, str) and is_rfc3339(value)):
                refuse(
                    spec.key,
                    "datetime_format",
                    f"{spec.label} must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T09:30:00+08:00",
                )
        elif spec.type is FieldType.choice:
            if not (isinstance(value, str) and value in (spec.choices or ())):
                refuse(
                    spec.key, "choice_invalid", f"{spec.label} must be one of {', '.join(spec.choices or ())}"
                )
        elif not isinstance(value, list):
            refuse(spec.key, "list_type", f"{spec.label} must be a list of choices")
        elif not all(isinstance(item, str) and item in (spec.choices or ()) for item in value):
            refuse(
                spec.key,
                "choice_invalid",
                f"every {spec.label} must be one of {', '.join(spec.choices or ())}",
            )
        elif len(set(value)) != len(value):
            refuse(spec.key, "choice_duplicate", f"{spec.label} names a choice twice")
    return errors


class HasDeadlines(Protocol):
    """A category, stored or shown: its default deadline in working days per severity."""

    @property
    def deadline_minor_days(self) -> int: ...
    @property
    def deadline_normal_days(self) -> int: ...
    @property
    def deadline_serious_days(self) -> int: ...


def deadline_days_for(category: HasDeadlines, severity: Severity | str) -> int:
    """The category's default deadline for a severity, in working days (计算 with calendar.rules.deadline_after)."""
    match Severity(severity):
        case Severity.minor:
            return category.deadline_minor_days
        case Severity.normal:
            return category.deadline_normal_days
        case Severity.serious:
            return category.deadline_serious_days
