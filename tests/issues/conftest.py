"""The issues service under test, on the test tree and its users (tests/support/builders.py)."""

from __future__ import annotations

import pytest

from tests.support.apps import ISSUES, Service


@pytest.fixture
def service() -> Service:
    return ISSUES
