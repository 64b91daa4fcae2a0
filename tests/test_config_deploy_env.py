"""The deployment files name only settings that exist, and deploy/env.example filled in starts in production."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from services.issues.settings import IssuesSettings
from services.kit.settings import ServiceSettings
from services.media.settings import MediaSettings
from services.scoring.settings import ScoringSettings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
EXAMPLE = DEPLOY / "env.example"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "HUANZHI_ISSUES_": IssuesSettings,
    "HUANZHI_SCORING_": ScoringSettings,
    "HUANZHI_MEDIA_": MediaSettings,
}


def _setting_of(variable: str) -> tuple[type[ServiceSettings], str] | None:
    for prefix, cls in SETTINGS.items():
        if variable.startswith(prefix):
            return cls, variable.removeprefix(prefix).lower()
    return None


@pytest.mark.parametrize(
    "path", [EXAMPLE, DEPLOY / "compose.yaml", *sorted((DEPLOY / "k8s").glob("*.yaml"))], ids=lambda p: p.name
)
def test_every_variable_the_deployment_sets_is_a_setting(path: Path) -> None:
    # A removed setting (JWKS_URL, ISSUES_URL, MEDIA_CLIENT_SECRET, …) left here would be silently ignored.
    # Whole names only: a family such as HUANZHI_MEDIA_S3_* in a comment is no variable.
    for variable in set(re.findall(r"\bHUANZHI_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])", path.read_text())):
        found = _setting_of(variable)
        assert found is not None, f"{path.name}: {variable} belongs to no service"
        cls, name = found
        assert name in cls.model_fields, f"{path.name}: {variable} is not a setting of {cls.__name__}"


@pytest.fixture
def example_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/env.example in the environment, every empty value (the secrets to fill in) filled in."""
    for name in list(os.environ):
        if name.startswith("HUANZHI_"):
            monkeypatch.delenv(name)
    for name, value in dotenv_values(EXAMPLE).items():
        if name.startswith("HUANZHI_"):
            monkeypatch.setenv(name, value or "filled-in-" + "x" * 32)


@pytest.mark.usefixtures("example_environment")
@pytest.mark.parametrize("cls", list(SETTINGS.values()), ids=lambda c: c.__name__)
def test_the_example_filled_in_starts_in_production(cls: type[ServiceSettings]) -> None:
    settings = cls()
    assert settings.environment == "production"
    assert settings.database_url is not None and settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.token_issuer == IssuesSettings().token_issuer  # one issuer for all three
    assert settings.jwks_url == settings.token_issuer + "/.well-known/jwks.json"
