"""Settings: production refuses default secrets and missing stores; development runs on the defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from services.issues.settings import IssuesSettings
from services.kit.settings import DEV_SERVICE_SECRET, ServiceSettings
from services.media.settings import MediaSettings
from services.scoring.settings import ScoringSettings

PG = "postgresql+asyncpg://huanzhi@db.internal:5432/{}"

# What each service needs set in production (beyond environment=production).
PRODUCTION: dict[type[ServiceSettings], dict[str, Any]] = {
    IssuesSettings: {
        "database_url": PG.format("issues"),
        "scoring_client_secret": "s" * 32,
        "signing_keys_dir": "/run/secrets/huanzhi-keys",
    },
    ScoringSettings: {"database_url": PG.format("scoring"), "service_client_secret": "s" * 32},
    MediaSettings: {"database_url": PG.format("media"), "link_signing_secret": "l" * 32},
}
REQUIRED = {
    IssuesSettings: ["scoring_client_secret", "database_url", "signing_keys_dir"],
    ScoringSettings: ["service_client_secret", "database_url"],
    MediaSettings: ["link_signing_secret", "database_url"],
}
SERVICES = list(PRODUCTION)


@pytest.fixture(autouse=True)
def no_huanzhi_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: start each test from none of ours."""
    for name in list(os.environ):
        if name.startswith("HUANZHI_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_production_on_the_defaults_is_refused_naming_every_gap_at_once(cls: type[ServiceSettings]) -> None:
    with pytest.raises(ValidationError) as caught:
        cls(environment="production")
    message = str(caught.value)
    prefix = str(cls.model_config["env_prefix"])
    for name in REQUIRED[cls]:
        assert name in message, f"{name} not named in: {message}"
        assert f"{prefix}{name.upper()}" in message
    assert DEV_SERVICE_SECRET not in message


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_production_with_everything_set_starts(cls: type[ServiceSettings]) -> None:
    settings = cls(environment="production", **PRODUCTION[cls])
    assert settings.resolved_database_url == PRODUCTION[cls]["database_url"]


@pytest.mark.parametrize(
    ("cls", "name"),
    [(cls, name) for cls in SERVICES for name in REQUIRED[cls]],
    ids=lambda v: getattr(v, "__name__", v),
)
@pytest.mark.parametrize("bad_value", ["default", ""])
def test_production_refuses_each_setting_left_at_its_default_or_empty(
    cls: type[ServiceSettings], name: str, bad_value: str
) -> None:
    values = dict(PRODUCTION[cls])
    if bad_value == "default":
        values.pop(name)
    else:
        values[name] = ""
    if name == "signing_keys_dir" and bad_value == "":
        values[name] = None
    with pytest.raises(ValidationError) as caught:
        cls(environment="production", **values)
    message = str(caught.value)
    assert name in message
    others = [n for n in REQUIRED[cls] if n != name]
    assert not any(f"{n} (" in message for n in others), message


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_runs_on_the_defaults(
    cls: type[ServiceSettings], environment: str, tmp_path: Path
) -> None:
    settings = cls(environment=environment, data_dir=tmp_path)  # type: ignore[arg-type]
    assert settings.database_url is None
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / cls.service_name}.db"


def test_the_defaults_are_development() -> None:
    assert IssuesSettings().environment == "development"


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError, match="environment"):
        ScoringSettings(environment="staging")  # type: ignore[arg-type]


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUANZHI_ISSUES_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="HUANZHI_ISSUES_SIGNING_KEYS_DIR"):
        IssuesSettings()
    for name, value in PRODUCTION[IssuesSettings].items():
        monkeypatch.setenv(f"HUANZHI_ISSUES_{name.upper()}", value)
    settings = IssuesSettings()
    assert settings.signing_keys_dir == Path("/run/secrets/huanzhi-keys")
    assert settings.scoring_client_secret.get_secret_value() == "s" * 32
    # Another service's prefix is not ours.
    monkeypatch.setenv("HUANZHI_SCORING_DATABASE_URL", PG.format("scoring"))
    assert ScoringSettings().database_url == PG.format("scoring")
    assert IssuesSettings().database_url == PG.format("issues")


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = IssuesSettings(environment="production", **PRODUCTION[IssuesSettings])
    assert "s" * 32 not in repr(settings)


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_the_jwks_url_is_derived_from_the_issuer(cls: type[ServiceSettings]) -> None:
    assert cls().jwks_url == "http://127.0.0.1:8001/.well-known/jwks.json"
    settings = cls(token_issuer="https://api.example.gov.cn/")
    assert settings.jwks_url == "https://api.example.gov.cn/.well-known/jwks.json"


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_removed_variables_are_no_settings(
    cls: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One setting for the issuer: a JWKS or issues URL of its own could only disagree with it.
    prefix = str(cls.model_config["env_prefix"])
    monkeypatch.setenv(prefix + "JWKS_URL", "http://elsewhere/.well-known/jwks.json")
    monkeypatch.setenv(prefix + "ISSUES_URL", "http://elsewhere")
    settings = cls(token_issuer="http://issues:8000")
    assert settings.jwks_url == "http://issues:8000/.well-known/jwks.json"
    assert "issues_url" not in cls.model_fields and "jwks_url" not in cls.model_fields


def test_service_credentials_only_where_a_service_calls_another() -> None:
    # Scoring calls the issues service with client credentials; media calls nobody; issues knows scoring's.
    assert {"service_client_id", "service_client_secret"} <= set(ScoringSettings.model_fields)
    for cls in (IssuesSettings, MediaSettings, ServiceSettings):
        assert not {"service_client_id", "service_client_secret"} & set(cls.model_fields)
    assert "media_client_secret" not in IssuesSettings.model_fields
    assert ScoringSettings().service_client_id == "svc-scoring"


def test_media_on_s3_needs_the_stores_keys_and_no_link_secret() -> None:
    # Links are signed by S3 then; the link secret signs only the local store's.
    values = {"database_url": PG.format("media"), "store": "s3"}
    with pytest.raises(ValidationError) as caught:
        MediaSettings(environment="production", **values)
    message = str(caught.value)
    assert "s3_access_key" in message and "s3_secret_key" in message
    assert "link_signing_secret" not in message
    MediaSettings(environment="production", s3_access_key="k", s3_secret_key="s" * 32, **values)


PASSWORD_HASH = ("password_hash_time_cost", "password_hash_memory_kib", "password_hash_parallelism")


def test_password_hashes_cost_argon2s_own_defaults_outside_tests() -> None:
    library = PasswordHasher()
    for environment in ("development", "production"):
        values = PRODUCTION[IssuesSettings] if environment == "production" else {}
        settings = IssuesSettings(environment=environment, **values)  # type: ignore[arg-type]
        costs = [getattr(settings, name) for name in PASSWORD_HASH]
        assert costs == [library.time_cost, library.memory_cost, library.parallelism]


def test_password_hashes_are_cheap_in_tests_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = IssuesSettings(environment="test")
    assert [getattr(settings, name) for name in PASSWORD_HASH] == [1, 8192, 1]
    assert not set(PASSWORD_HASH) & settings.model_fields_set
    # Set explicitly, by argument or by environment variable, a cost holds in tests too.
    assert IssuesSettings(environment="test", password_hash_time_cost=2).password_hash_time_cost == 2
    monkeypatch.setenv("HUANZHI_ISSUES_PASSWORD_HASH_MEMORY_KIB", "16384")
    settings = IssuesSettings(environment="test")
    assert (settings.password_hash_memory_kib, settings.password_hash_time_cost) == (16384, 1)


def test_a_password_hash_memory_below_argon2s_minimum_is_refused() -> None:
    with pytest.raises(ValidationError, match="password_hash_memory_kib"):
        IssuesSettings(password_hash_memory_kib=16, password_hash_parallelism=4)


@pytest.mark.parametrize("name", ["LOGIN_MAX_FAILURES", "LOGIN_MAX_FAILURES_PER_ADDRESS"])
def test_a_login_limit_below_one_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(f"HUANZHI_ISSUES_{name}", "0")
    with pytest.raises(ValidationError):
        IssuesSettings()
