"""Password hashing at the cost the issues settings name; any stored hash verifies whatever that cost is."""

from __future__ import annotations

import os

import pytest

from services.issues.auth.passwords import hash_secret, hasher_for, needs_rehash, verify_secret
from services.issues.settings import IssuesSettings

CHEAP = IssuesSettings(environment="test")
OTHER = IssuesSettings(environment="test", password_hash_time_cost=2, password_hash_memory_kib=16384)


def test_hashes_carry_the_cost_of_the_settings() -> None:
    assert hash_secret("geheim", CHEAP).startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert hash_secret("geheim", OTHER).startswith("$argon2id$v=19$m=16384,t=2,p=1$")


def test_a_hash_made_at_another_cost_verifies_and_asks_to_be_redone() -> None:
    stored = hash_secret("geheim", OTHER)
    assert verify_secret(stored, "geheim", CHEAP)
    assert not verify_secret(stored, "wrong", CHEAP)
    assert needs_rehash(stored, CHEAP)
    assert not needs_rehash(stored, OTHER)


def test_no_stored_hash_and_a_malformed_one_never_verify() -> None:
    assert not verify_secret(None, "no-such-user-placeholder", CHEAP)
    assert not verify_secret("not-a-hash", "geheim", CHEAP)


def test_one_hasher_per_set_of_costs() -> None:
    assert hasher_for(CHEAP) is hasher_for(IssuesSettings(environment="test"))
    assert hasher_for(CHEAP) is not hasher_for(OTHER)


def test_without_settings_the_environments_settings_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HUANZHI_ISSUES_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HUANZHI_ISSUES_ENVIRONMENT", "test")
    monkeypatch.setenv("HUANZHI_ISSUES_PASSWORD_HASH_TIME_COST", "2")
    assert hash_secret("geheim").startswith("$argon2id$v=19$m=8192,t=2,p=1$")
