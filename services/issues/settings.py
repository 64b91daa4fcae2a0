"""Issues service settings, from environment variables prefixed `HUANZHI_ISSUES_`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import DEV_SERVICE_SECRET, ServiceSettings

# Argon2id cost under environment=test where not set explicitly: ~10 ms a hash instead of ~0.1 s.
TEST_PASSWORD_HASH = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 8 * 1024,
    "password_hash_parallelism": 1,
}


class IssuesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HUANZHI_ISSUES_", extra="ignore")
    service_name: ClassVar[str] = "issues"

    # Token issuer. A folder of EC P-256 PEM files, named by kid; the last name in sort order signs.
    # Unset on the embedded default: one key is generated once and kept under data_dir/keys.
    signing_keys_dir: Path | None = None
    # Or the keys themselves: concatenated PEM blocks, oldest first, the last signs (kid = RFC 7638 thumbprint).
    signing_keys_pem: SecretStr | None = None
    access_token_seconds: int = 3600

    # The scoring service's credentials (client_credentials grant as `svc-scoring`): the same secret as
    # its HUANZHI_SCORING_SERVICE_CLIENT_SECRET. Media never calls this service, so it has none.
    scoring_client_secret: SecretStr = SecretStr(DEV_SERVICE_SECRET)

    # Argon2id cost of password and client-secret hashes: argon2-cffi's defaults (RFC 9106, low memory).
    # Hashes carry their own parameters, so changing these keeps every stored hash verifiable; a user's
    # hash is redone at the new cost on their next login. Under environment=test, unless set, they are
    # the cheapest sound values (time 1, 8 MiB, 1 lane), so tests do not spend ~0.1 s per hash.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=8)
    password_hash_parallelism: int = Field(default=4, ge=1)

    # Password and client-credentials login: failures allowed in a window before 429.
    # Per account from one address: a person who mistyped, or a guesser, is stopped there and only there.
    login_max_failures: int = Field(default=5, ge=1)
    # Per account from anywhere: past `login_delay_after_failures`, each attempt waits 1, 2, 4 … up to
    # `login_max_delay_seconds`; the hard ceiling is much higher, so nobody locks an account from elsewhere
    # (and one person mistyping at one address never slows the account down elsewhere).
    login_delay_after_failures: int = Field(default=10, ge=1)
    login_max_delay_seconds: float = Field(default=60.0, gt=0)
    login_max_failures_per_account: int = Field(default=50, ge=1)
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

    # The issue lifecycle.
    # A new report this close to an open issue of the same category is answered with `probable_duplicate_of`.
    duplicate_distance_m: float = Field(default=50.0, gt=0)
    # An after photo taken farther than this from the issue's point is flagged (acceptance needs a reason).
    evidence_max_distance_m: float = Field(default=500.0, gt=0)
    # Citizens' reports per account in a rolling hour; more answer 429 with Retry-After.
    citizen_reports_per_hour: int = Field(default=10, ge=1)
    # Categories and the working calendar as a report reads them are kept this long per process: a change
    # made through this process applies at once, one made through another replica within this time. 0: none.
    reference_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    # How often effects still due after a failure (pinning photos while media was down) are retried.
    outbox_interval_seconds: float = Field(default=30.0, gt=0)
    seed_demo: bool = False

    secret_defaults: ClassVar[dict[str, str]] = {"scoring_client_secret": DEV_SERVICE_SECRET}

    @model_validator(mode="after")
    def _cheap_password_hashes_in_test(self) -> Self:
        if self.environment == "test":
            for name, cheap in TEST_PASSWORD_HASH.items():
                if name not in self.model_fields_set:
                    # Straight into the values: a default swapped in here is still not "set".
                    self.__dict__[name] = cheap
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError("password_hash_memory_kib must be at least 8 × password_hash_parallelism")
        return self

    def production_gaps(self) -> list[str]:
        gaps = super().production_gaps()
        if self.signing_keys_dir is None and self.signing_keys_pem is None:
            gaps.append("signing_keys_dir")  # or signing_keys_pem
        return gaps
