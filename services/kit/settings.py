"""Settings shared by every service, read from environment variables (12-factor)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SERVICE_SECRET = "dev-service-secret-change-me"


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class ServiceSettings(BaseSettings):
    """Base for each service's settings class; a subclass sets its own `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: ClassVar[str] = "service"
    # Fields whose value must differ from this default in production; a subclass names its own.
    secret_defaults: ClassVar[dict[str, str]] = {}

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".data")
    database_url: str | None = None
    db_echo: bool = False

    # The issues service's base URL as this service reaches it: the `iss` every token carries (and the
    # issues service puts in the tokens it mints); its keys are fetched from `jwks_url` below it.
    token_issuer: str = "http://127.0.0.1:8001"
    token_audience: str = "huanzhi"
    jwks_cache_seconds: int = 3600
    # An unknown kid refetches the JWKS at most this often (a rotated-in key is seen within a second).
    jwks_min_refresh_seconds: float = 1.0
    # How long the issuer's list of revoked tokens is trusted: a disabled user's or a revoked client's
    # token stops working on this service within this many seconds (the review asked for 60 at most).
    revocation_cache_seconds: float = Field(default=20.0, ge=0, le=60)

    # Browser front ends on other origins allowed to call this service (CORS), e.g.
    # `https://zhengzhi.jimo.gov.cn,https://admin.example`; none by default.
    cors_allowed_origins: Annotated[list[str], NoDecode] = []

    peer_timeout_seconds: float = 5.0
    max_json_body_bytes: int = 1_048_576
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _origins_from_text(cls, value: object) -> object:
        """A comma-separated list in the environment; each an origin (scheme, host, port), not a pattern."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for origin in value:
                if not isinstance(origin, str) or not _ORIGIN.fullmatch(origin):
                    raise ValueError(
                        f"not an origin: {origin!r} (scheme://host[:port], no path, no wildcard)"
                    )
        return value

    @property
    def jwks_url(self) -> str:
        """Where the issuer publishes its public keys: always derived from `token_issuer`."""
        return self.token_issuer.rstrip("/") + "/.well-known/jwks.json"

    @property
    def revocations_url(self) -> str:
        """Where the issuer publishes recent revocations: derived from `token_issuer` too."""
        return self.token_issuer.rstrip("/") + "/.well-known/revocations.json"

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file named after the service in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"

    def production_gaps(self) -> list[str]:
        """Settings still at a default or empty value that production must set; subclasses add theirs."""
        gaps = [
            name
            for name, default in self.secret_defaults.items()
            if _plain(getattr(self, name)) in ("", default)
        ]
        if not self.database_url:
            gaps.append("database_url")
        return gaps

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> Self:
        if self.environment != "production":
            return self
        # Every gap in one message, so an operator fixes the deployment in one round.
        gaps = self.production_gaps()
        if gaps:
            prefix = str(self.model_config.get("env_prefix", ""))
            raise ValueError(
                "refusing to start in production with default or empty settings: "
                + ", ".join(f"{name} ({prefix}{name.upper()})" for name in gaps)
            )
        return self


def _plain(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return "" if value is None else str(value)
