"""Media service settings, from environment variables prefixed `HUANZHI_MEDIA_`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

DEV_LINK_SECRET = "dev-link-signing-secret-change-me"  # production refuses it


class MediaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HUANZHI_MEDIA_", extra="ignore")
    service_name: ClassVar[str] = "media"

    # This service only answers: it verifies tokens against the issuer's keys (`token_issuer`) and
    # never calls another service, so it has no service credentials of its own.

    # The base URL clients reach this service at; local-store signed links are made for it.
    public_base_url: str = "http://127.0.0.1:8003"

    # Object store: "local" (a folder, the embedded default) or "s3" (MinIO or any S3).
    store: Literal["local", "s3"] = "local"
    local_store_dir: Path | None = None  # default: data_dir/objects
    link_signing_secret: SecretStr = SecretStr(DEV_LINK_SECRET)  # the local store's links (not S3's)
    s3_endpoint: str = "127.0.0.1:9000"  # the endpoint this service reaches
    s3_public_endpoint: str | None = None  # the endpoint signed URLs are made for (default: s3_endpoint)
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "huanzhi-media"
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    s3_public_secure: bool | None = None
    s3_create_bucket: bool = True  # also: a bucket found missing on a write is created again
    # How long the service waits for the object store (S3): to connect, and for each answer (or for room to
    # send more of a body). A store that is down or hung answers 503 after about their sum; a dropped
    # connection is retried once, a timeout never.
    store_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    store_read_timeout_seconds: float = Field(default=5.0, gt=0)

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 100_000_000  # a 48 MP phone photo passes; a 30000×30000 bomb does not
    # Pictures decoded at once per process (CPU).
    max_concurrent_decodes: int = Field(default=2, ge=1)
    # Memory all decodes at once may take. Each decode first holds what it will cost, estimated from the
    # header (a JPEG at its DCT scale ~50 MB for 12 MP; a PNG, WebP or HEIF is decoded whole: 1–4 bytes a
    # pixel for PNG, ~16 for WebP, ~8 for HEIF, plus ~48 MB), and waits until the budget has room; a
    # picture costing more than the whole budget is refused (422 `image_too_costly`). At 640 MiB a 100 MP
    # RGBA PNG, a 74 MP HEIF and a 37 MP WebP still pass. The container needs this plus ~200 MB.
    decode_memory_bytes: int = Field(default=640 * 1024 * 1024, ge=64 * 1024 * 1024)
    upload_url_seconds: int = 900
    download_url_seconds: int = 300
    sweep_interval_seconds: float = 60.0
    # A slot's bytes are removed this long after it expired: a PUT begun just before expiry may still be
    # arriving over a slow line. The S3 store also gets a one-day lifecycle rule on incoming/ as a backstop.
    sweep_grace_seconds: float = 900.0
    # What a crash leaves: spooled request bodies in data_dir/tmp, swept at start and with the slots, and
    # content objects no photo shows (written before the commit that never came), swept every
    # orphan_sweep_interval_seconds (a listing of the store). Only what is older than its grace goes: a
    # spool file is rewritten while its body arrives, and an upload commits long before an hour is up.
    spool_grace_seconds: float = Field(default=3600.0, ge=0)
    orphan_grace_seconds: float = Field(default=3600.0, ge=0)
    orphan_sweep_interval_seconds: float = Field(default=3600.0, gt=0)

    # Checks (flags, never refusals).
    max_distance_m: float = 500.0
    max_age_hours: float = 72.0
    # Reuse is looked for among photos under the same region-path prefix of this many levels
    # (/province/city/county/ = 3: the county's archive).
    reuse_scope_depth: int = 3
    reuse_max_candidates: int = 40
    # Of the candidates beyond reuse.NEAR_DISTANCE (6 bits, the bound before it was widened; i.e. those at
    # 8 and 10 bits, up to CANDIDATE_MAX_DISTANCE: distances are even), at most this many go on to
    # confirm() per upload, nearest and best agreeing first (`reuse.for_confirm`). Each is a confirm() of
    # ~10-13 ms that an honest upload pays more often the larger the reuse scope; this caps it at this
    # many, whatever the archive. 0 confirms only candidates within 6 bits.
    reuse_far_candidates: int = Field(default=1, ge=0)
    # Bits within which each 16-bit band of a query hash is probed: 0 (4 keys a hash) or 1 (68 keys a
    # hash: every hash within 7 bits is found for sure, at 17 times the rows read per upload).
    reuse_probe_radius: int = Field(default=0, ge=0, le=1)  # reuse.PROBE_RADIUS

    @property
    def objects_dir(self) -> Path:
        return self.local_store_dir or self.data_dir / "objects"

    @property
    def spool_dir(self) -> Path:
        """Where request bodies are spooled while they are checked (the photo and upload routes)."""
        return self.data_dir / "tmp"

    def production_gaps(self) -> list[str]:
        gaps = super().production_gaps()
        if self.store == "s3" and not (self.s3_access_key and self.s3_secret_key.get_secret_value()):
            gaps += ["s3_access_key", "s3_secret_key"]
        # Only the local store signs its own links; on S3 the store signs them.
        if self.store == "local" and self.link_signing_secret.get_secret_value() in ("", DEV_LINK_SECRET):
            gaps.append("link_signing_secret")
        return gaps
