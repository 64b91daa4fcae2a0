"""PLAIN_TEXT: what a field accepts is exactly what the `pattern` in its JSON Schema says."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, StringConstraints, ValidationError

from services.kit.text import PLAIN_TEXT

# The characters that matter (controls, direction marks, whitespace of every kind) and some that do not.
_INTERESTING = "\x00\t\n\r\x0b\x1f \x7f\x85\x9f\xa0\u061c\u200b\u200e\u202e\u2066\u2028\u3000\ufeff村a-"


class Stripped(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), PLAIN_TEXT]


class StrippedMaybeEmpty(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50), PLAIN_TEXT]


class Verbatim(BaseModel):
    name: Annotated[str, StringConstraints(max_length=50), PLAIN_TEXT]


def _accepts(model: type[BaseModel], text: str) -> bool:
    try:
        model(name=text)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("model", [Stripped, StrippedMaybeEmpty, Verbatim])
@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(_INTERESTING), max_size=8) | st.text(max_size=8))
def test_the_documented_pattern_is_what_the_field_accepts(model: type[BaseModel], text: str) -> None:
    pattern = model.model_json_schema()["properties"]["name"]["pattern"]
    assert bool(re.fullmatch(pattern, text)) == _accepts(model, text), (pattern, text)


def test_bidi_overrides_and_controls_are_refused_and_documented() -> None:
    for text in ("村\u202egpj.exe", "a\x00b", "名\u2066字"):
        assert not _accepts(Verbatim, text)
        assert not _accepts(Stripped, text)
    assert _accepts(Stripped, "  前庄村 \n")
    assert not _accepts(Stripped, " \t ")
