"""The kit's behaviour through a real service: the issues app (the kit is the same in all three)."""

from __future__ import annotations

import pytest

from tests.support.apps import ISSUES, Service


@pytest.fixture
def service() -> Service:
    return ISSUES
