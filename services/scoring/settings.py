"""Scoring service settings, from environment variables prefixed `HUANZHI_SCORING_`."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HUANZHI_SCORING_", extra="ignore")
    service_name: ClassVar[str] = "scoring"

    service_client_id: str = "svc-scoring"
    issues_url: str = "http://127.0.0.1:8001"
