"""The scoring service under test: tokens signed with the session's test keys (the issuer is not running)."""

from __future__ import annotations

import pytest

from tests.support.apps import SCORING, Service


@pytest.fixture
def service() -> Service:
    return SCORING
