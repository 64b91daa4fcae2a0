"""Issues service settings, from environment variables prefixed `HUANZHI_ISSUES_`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.settings import DEV_SERVICE_SECRET, ServiceSettings


class IssuesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HUANZHI_ISSUES_", extra="ignore")
    service_name: ClassVar[str] = "issues"

    # Token issuer. A folder of EC P-256 PEM files, named by kid; the last name in sort order signs.
    # Unset on the embedded default: one key is generated once and kept under data_dir/keys.
    signing_keys_dir: Path | None = None
    # Or the keys themselves: concatenated PEM blocks, oldest first, the last signs (kid = RFC 7638 thumbprint).
    signing_keys_pem: SecretStr | None = None
    access_token_seconds: int = 3600

    # Credentials of the other services (client_credentials grant), created or refreshed at start.
    scoring_client_secret: SecretStr = SecretStr(DEV_SERVICE_SECRET)
    media_client_secret: SecretStr = SecretStr(DEV_SERVICE_SECRET)

    # Password and client-credentials login: failures allowed in a window before 429.
    login_max_failures: int = Field(default=5, ge=1)  # per username or client id
    # Per client address: higher, since a village's phones often share one address (carrier NAT).
    login_max_failures_per_address: int = Field(default=30, ge=1)
    login_failure_window_seconds: int = 900

    # WeChat mini-program login (jscode2session).
    wechat_base_url: str = "https://api.weixin.qq.com"
    wechat_appid: str = ""
    wechat_secret: SecretStr = SecretStr("")
    wechat_timeout_seconds: float = 5.0
    # Citizens who sign in through WeChat get this region as home (the county the deployment serves).
    citizen_region_code: str = "370282"

    media_url: str = "http://127.0.0.1:8003"
    seed_demo: bool = False

    secret_defaults: ClassVar[dict[str, str]] = {
        "scoring_client_secret": DEV_SERVICE_SECRET,
        "media_client_secret": DEV_SERVICE_SECRET,
    }

    def production_gaps(self) -> list[str]:
        gaps = super().production_gaps()
        if self.signing_keys_dir is None and self.signing_keys_pem is None:
            gaps.append("signing_keys_dir")  # or signing_keys_pem
        return gaps
