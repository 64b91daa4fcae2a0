"""Plain text as every service accepts it in names and labels: no control or direction-changing characters.

C0/C1 controls break logs and CSV lines (and PostgreSQL refuses NUL); the Unicode bidirectional overrides,
embeddings, isolates and marks make `村\\u202egpj.exe` display as `村exe.jpg` in a front end or a
spreadsheet. Both are refused wherever a person's text becomes a name others will read.
"""

from __future__ import annotations

import re

from pydantic import AfterValidator

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def is_plain_text(text: str) -> bool:
    """No control characters, no bidirectional formatting characters, no byte-order mark."""
    return _UNSAFE.search(text) is None


def _plain(text: str) -> str:
    if not is_plain_text(text):
        raise ValueError("must not contain control or text-direction characters")
    return text


# Add to an `Annotated[str, …]` field: `Annotated[str, StringConstraints(max_length=100), PLAIN_TEXT]`.
PLAIN_TEXT = AfterValidator(_plain)
