"""Scoring service settings, from environment variables prefixed `HUANZHI_SCORING_`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.settings import DEV_SERVICE_SECRET, ServiceSettings


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HUANZHI_SCORING_", extra="ignore")
    service_name: ClassVar[str] = "scoring"
    secret_defaults: ClassVar[dict[str, str]] = {"service_client_secret": DEV_SERVICE_SECRET}

    # This service calls the issues service (at `token_issuer`) with a token of its own, got by the
    # client_credentials grant; the secret is the issues service's HUANZHI_ISSUES_SCORING_CLIENT_SECRET.
    service_client_id: str = "svc-scoring"
    service_client_secret: SecretStr = SecretStr(DEV_SERVICE_SECRET)
    # The media service, where scorecard photos are checked and pinned ("" : photos cannot be given).
    media_url: str = "http://127.0.0.1:8003"
    # How often pending effects (pinning photos) are retried.
    outbox_interval_seconds: float = Field(default=30.0, gt=0)
