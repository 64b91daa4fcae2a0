"""Schemathesis hooks for the Huanzhi services (loaded through schemathesis.toml beside this file).

What a schema cannot say, and nothing else:

- An `Idempotency-Key` the schema allows gets a fresh value on every request. Generated keys repeat
  (`0`, `00`, …) across different requests, and the same key with another request is refused (422
  `idempotency_key_reused`) by design; the header's characters are still fuzzed, since a key outside the
  documented pattern is left as generated (and must be refused).
- A schema-valid request may be refused with a problem `code` that its operation documents (for example
  `level_does_not_nest`, `import_rejected`, `invalid_cursor`, and 415 `not_an_image` for bytes that are no
  picture): the rule is not one JSON Schema can state.
  A refusal of schema-valid data with `validation_failed` or `malformed_json`, or with a code the
  operation does not name, still fails the run. A cursor is the server's own opaque token: a generated one
  is refused (400 `invalid_cursor`) as the parameter says ("`next_cursor` of the page before").
- The admin it runs as is left alone (`HUANZHI_SCHEMATHESIS_SELF`, its user id): changing its own password
  or home region would revoke the very token the run is using, and every later answer would be 401.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any

import schemathesis

IDEMPOTENCY_KEY = "Idempotency-Key"
# Refusals that say the request did not match the schema: never excused for schema-valid data.
SCHEMA_REFUSALS = frozenset({"validation_failed", "malformed_json", "bad_request"})
_BACKTICKED = re.compile(r"`([a-z][a-z0-9_]+)`")


def _key_pattern(case: Any) -> re.Pattern[str] | None:
    for parameter in case.operation.definition.raw.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_KEY:
            pattern = parameter.get("schema", {}).get("pattern")
            return re.compile(pattern) if pattern else None
    return None


SELF = os.environ.get("HUANZHI_SCHEMATHESIS_SELF")
NO_SUCH_USER = 2**31 - 1


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if SELF is not None and str((case.path_parameters or {}).get("user_id")) == SELF:
        case.path_parameters["user_id"] = NO_SUCH_USER
    headers = case.headers or {}
    key = headers.get(IDEMPOTENCY_KEY)
    pattern = _key_pattern(case)
    if isinstance(key, str) and pattern is not None and pattern.fullmatch(key):
        headers[IDEMPOTENCY_KEY] = f"st-{uuid.uuid4()}"


def _documented_codes(case: Any) -> set[str]:
    """Every `code` an operation names in its own text: description, parameters, request body."""
    return set(_BACKTICKED.findall(json.dumps(case.operation.definition.raw, ensure_ascii=False)))


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    # 415 too: a schema can say a field holds bytes, not that the bytes must be a picture.
    if getattr(failure, "code", None) != "ST202" or response.status_code not in (400, 415, 422):
        return True
    try:
        code = response.json().get("code")
    except ValueError:
        return True
    if code == "invalid_cursor" and "cursor" in (case.query or {}):
        return False  # a cursor is the server's own opaque token: a generated one is refused as documented
    return not (isinstance(code, str) and code not in SCHEMA_REFUSALS and code in _documented_codes(case))
