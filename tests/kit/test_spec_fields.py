"""Documented patterns are exactly what the validation takes: names, phones, query booleans."""

from __future__ import annotations

import random
import re
import sys
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.issues.clients.schemas import ClientCreate
from services.issues.regions.schemas import RegionName
from services.issues.users.schemas import DisplayName, Phone
from services.kit.fields import QueryBool, not_nullable

# Every code point an HTTP JSON body can carry (lone surrogates cannot be encoded as UTF-8).
CODE_POINTS = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
# The characters that decide: controls, Latin-1, the Unicode spaces and formatting marks, a CJK one.
EDGES = [c for c in CODE_POINTS if ord(c) < 0x3100 or ord(c) in (0xFEFF, 0xFFFE, 0x1F600, 0x10FFFF)]


def documented_pattern(adapter: TypeAdapter[Any]) -> re.Pattern[str]:
    schema = adapter.json_schema()
    assert schema["type"] == "string"
    assert "maxLength" not in schema and "minLength" not in schema, "lengths would count untrimmed text"
    return re.compile(schema["pattern"])


def takes(adapter: TypeAdapter[Any], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def shapes(c: str) -> list[str]:
    return [c, "a" + c, c + "a", "a" + c + "a", c + c, " " + c, c + " "]


LENGTHED = [
    "a" * 100,
    "a" * 101,
    " " + "a" * 100 + "\t",
    "\u3000" + "村" * 100,
    "a" + " " * 98 + "b",
    "a" + " " * 99 + "b",
    "",
    " ",
    "\u3000\u3000",
]


@pytest.mark.parametrize("name_type", [RegionName, DisplayName], ids=["region-name", "display-name"])
def test_a_name_is_taken_exactly_when_it_matches_the_documented_pattern(name_type: Any) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(name_type)
    pattern = documented_pattern(adapter)
    rng = random.Random(11)
    samples = [s for c in EDGES for s in shapes(c)]
    samples += ["".join(rng.choice(EDGES) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    samples += [rng.choice(CODE_POINTS) + "x" for _ in range(3000)]
    for value in samples + LENGTHED:
        assert takes(adapter, value) == bool(pattern.fullmatch(value)), repr(value)


def test_the_client_name_is_documented_like_the_other_names() -> None:
    name = ClientCreate.model_json_schema()["properties"]["name"]
    assert name["pattern"] == TypeAdapter(DisplayName).json_schema()["pattern"]


PHONES = [
    "13812345678",
    "+86 138-1234-5678",
    " 13812345678 ",
    "\t+8613812345678\n",
    "12345",
    "1234",
    "1234 ",
    "1234-",
    "+1234",
    "+12345",
    "1" * 32,
    "1" * 33,
    "+" + "1" * 31,
    "+" + "1" * 32,
    " " + "1" * 32 + " ",
    "",
    "+",
    "-12345",
    "12345\n6",
    "１２３４５",
]


def test_a_phone_is_taken_exactly_when_it_matches_the_documented_pattern() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(Phone)
    schema = adapter.json_schema()
    pattern = re.compile(schema["pattern"])
    rng = random.Random(5)
    alphabet = "0123456789 -+\t\u3000a\n"
    samples = PHONES + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 36))) for _ in range(20000)
    ]
    for value in samples:
        assert takes(adapter, value) == bool(pattern.fullmatch(value)), repr(value)


@pytest.mark.parametrize(("value", "taken"), [("true", True), ("false", False)])
def test_a_query_boolean_is_true_or_false(value: str, taken: bool) -> None:
    assert TypeAdapter(QueryBool).validate_python(value) is taken


@pytest.mark.parametrize(
    "value", ["1", "0", "True", "FALSE", "yes", "no", "on", "off", "t", "f", "", " true"]
)
def test_a_query_boolean_refuses_other_spellings(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(QueryBool).validate_python(value)


def test_not_nullable_leaves_the_non_null_branches() -> None:
    class Shape(BaseModel):
        one: int | None = None
        two: int | str | None = None

    schema = {name: dict(s) for name, s in Shape.model_json_schema()["properties"].items()}
    for field in schema.values():
        not_nullable(field)
    assert schema["one"]["type"] == "integer" and "anyOf" not in schema["one"]
    assert schema["two"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
