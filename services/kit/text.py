"""Plain text as every service accepts it in names and labels: no control or direction-changing characters.

C0/C1 controls break logs and CSV lines (and PostgreSQL refuses NUL); the Unicode bidirectional overrides,
embeddings, isolates and marks make `村\\u202egpj.exe` display as `村exe.jpg` in a front end or a
spreadsheet. Both are refused wherever a person's text becomes a name others will read.

The OpenAPI documents say so too: a field marked PLAIN_TEXT carries the `pattern` of exactly what it
accepts. Where the field strips surrounding whitespace first, whitespace (controls among it) is allowed at
either end and the pattern counts the length of what is kept, as the checks do.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

__all__ = ["PLAIN_TEXT", "TRIMMED", "is_plain_text", "plain_text_pattern", "plain_text_schema"]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# What `StringConstraints(strip_whitespace=True)` trims (Unicode White_Space, as pydantic-core's trim).
TRIMMED = r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# A character that is not unsafe, and (at the ends of a trimmed value) not whitespace either. Written for
# JSON Schema (ECMA-262) readers and Python's `re` alike.
_PLAIN = r"[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
_PLAIN_EDGE = (
    r"[^\x00-\x20\x7f-\xa0\u061c\u1680\u2000-\u200a\u200e\u200f\u2028-\u202f\u205f\u2066-\u2069\u3000\ufeff]"
)


def is_plain_text(text: str) -> bool:
    """No control characters, no bidirectional formatting characters, no byte-order mark."""
    return _UNSAFE.search(text) is None


def plain_text_pattern(max_length: int | None = None, *, min_length: int = 1) -> str:
    """The JSON Schema pattern of trimmed plain text of `min_length` (0 or 1) to `max_length` characters
    (`StringConstraints(strip_whitespace=True, …)` with PLAIN_TEXT): surrounding whitespace is allowed, as it
    is trimmed before the checks, and the length counts what is kept."""
    middle = f"{_PLAIN}*" if max_length is None else f"{_PLAIN}{{0,{max_length - 2}}}"
    kept = f"{_PLAIN_EDGE}(?:{middle}{_PLAIN_EDGE})?"
    if min_length <= 0:
        kept = f"(?:{kept})?"
    return f"^{TRIMMED}*{kept}{TRIMMED}*$"


def plain_text_schema(max_length: int) -> WithJsonSchema:
    """Document a trimmed plain-text name by its pattern alone (lengths in the document would count the
    untrimmed value)."""
    return WithJsonSchema({"type": "string", "pattern": plain_text_pattern(max_length)})


def _plain(text: str) -> str:
    if not is_plain_text(text):
        raise ValueError("must not contain control or text-direction characters")
    return text


def _strips(schema: CoreSchema) -> bool:
    inner: Any = schema.get("schema", schema)
    return bool(inner.get("strip_whitespace"))


class _PlainText:
    """Validates like `AfterValidator(_plain)` and adds the rule's `pattern` to the JSON Schema."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_plain, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if "pattern" in json_schema:
            return json_schema  # the field's own, stricter pattern
        if _strips(schema):
            # minLength/maxLength would count the untrimmed value: the pattern says the length instead.
            min_length = json_schema.pop("minLength", 0)
            json_schema["pattern"] = plain_text_pattern(
                json_schema.pop("maxLength", None), min_length=min_length
            )
        else:
            json_schema["pattern"] = f"^{_PLAIN}*$"
        return json_schema


# Add to an `Annotated[str, …]` field: `Annotated[str, StringConstraints(max_length=100), PLAIN_TEXT]`.
PLAIN_TEXT = _PlainText()
