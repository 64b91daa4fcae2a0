"""Password and client-secret hashing with Argon2id (argon2-cffi), at the cost the settings name.

Each hash carries its own parameters, so any hash verifies whatever the settings are now; `needs_rehash`
tells a hash made at another cost. The functions take the service's settings; without them they read
the settings from the environment (`IssuesSettings()`), as the service does when started.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.issues.settings import IssuesSettings


class SecretHasher:
    """Argon2id with one set of cost parameters, and a dummy hash made at that cost."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # Verified against when the user does not exist, so a wrong user costs what a wrong password costs.
        self._dummy_hash = self._hasher.hash("no-such-user-placeholder")

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, stored_hash: str | None, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, secret) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


@cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> SecretHasher:
    return SecretHasher(time_cost, memory_kib, parallelism)


def hasher_for(settings: IssuesSettings | None = None) -> SecretHasher:
    """The hasher for `settings` (default: the settings in the environment); one per set of parameters."""
    if settings is None:
        settings = IssuesSettings()
    return _hasher(
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )


def hash_secret(secret: str, settings: IssuesSettings | None = None) -> str:
    return hasher_for(settings).hash(secret)


def verify_secret(stored_hash: str | None, secret: str, settings: IssuesSettings | None = None) -> bool:
    return hasher_for(settings).verify(stored_hash, secret)


def needs_rehash(stored_hash: str, settings: IssuesSettings | None = None) -> bool:
    return hasher_for(settings).needs_rehash(stored_hash)
