"""Issues (问题), their append-only hash-chained events, and the per-county-and-year code counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field

from services.issues.db import IssuesTable
from services.kit.db import UTCDateTime, utcnow

_VERSION = Column("version", Integer, nullable=False)
# What the list filters on, held in its indexes; and the open statuses (rules.OPEN_STATUSES) as SQL.
_LIST_FILTERS = [
    "status",
    "category",
    "source",
    "severity",
    "deadline",
    "yellow_at",
    "reported_at",
    "closed_at",
]
_OPEN = text("status IN ('reported', 'assigned', 'submitted')")


class Issue(IssuesTable, table=True):
    """One problem found in a village, from its report to 销号 (or rejection)."""

    __tablename__ = "issues"
    __table_args__ = (
        # The list and the statistics start from "issues under this region path": prefix scans.
        # The list picks a page's ids from this index alone (an index-only scan on PostgreSQL): it holds the
        # columns the list filters on, so only the page's rows are read from the table.
        Index(
            "ix_issues_path_list",
            "region_path",
            "id",
            postgresql_ops={"region_path": "varchar_pattern_ops"},
            postgresql_include=_LIST_FILTERS,
        ),
        # The same for the open issues alone (the statuses of rules.OPEN_STATUSES; a few percent of a county's
        # year): lists of open, overdue or red-light issues read only these entries.
        Index(
            "ix_issues_open_list",
            "region_path",
            "id",
            postgresql_ops={"region_path": "varchar_pattern_ops"},
            postgresql_include=_LIST_FILTERS,
            postgresql_where=_OPEN,
        ),
        Index(
            "ix_issues_path_reported",
            "region_path",
            "reported_at",
            postgresql_ops={"region_path": "varchar_pattern_ops"},
            # Everything the statistics read: their sums come from this index alone (extension_count read
            # 969 heap pages for a county's month at 10⁶).
            postgresql_include=[
                "status",
                "closed_at",
                "deadline",
                "category",
                "source",
                "rework_count",
                "extension_count",
            ],
        ),
        Index("ix_issues_status_deadline", "status", "deadline"),
        # A new report looks for an open issue of its category nearby in its county: on PostgreSQL only the
        # open ones (the statuses of rules.OPEN_STATUSES) are in this index, read without the table.
        Index(
            "ix_issues_open_nearby",
            "county_code",
            "category",
            "latitude",
            postgresql_include=["longitude", "id"],
            postgresql_where=_OPEN,
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    code: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    category: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    severity: str = Field(sa_column=Column(String(16), nullable=False))
    source: str = Field(sa_column=Column(String(16), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))

    # Where the problem is (a village or a grid), and who is to fix it.
    region_code: str = Field(sa_column=Column(String(32), nullable=False))
    region_path: str = Field(sa_column=Column(String(400), nullable=False))
    county_code: str = Field(sa_column=Column(String(32), nullable=False))
    responsible_region_code: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    responsible_region_path: str | None = Field(default=None, sa_column=Column(String(400), nullable=True))
    responsible_user_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))

    description: str = Field(sa_column=Column(Text, nullable=False))
    address: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    latitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    longitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    before_photo_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    after_photo_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The last submission's per-photo evidence findings (distance, time, reuse), for acceptance to weigh.
    evidence_flags: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    reporter: str = Field(sa_column=Column(String(128), nullable=False, index=True))
    reporter_role: str = Field(sa_column=Column(String(16), nullable=False))
    submitter: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))

    reported_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    verified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    assigned_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    deadline: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # When 80 % of the allowed working time is used: the light turns yellow (red past the deadline).
    yellow_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    closed_late: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    rejected_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    reject_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))

    rework_count: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, default=0))
    extension_count: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, default=0))
    extension_pending: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    extension_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    extension_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    on_account: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    account_plan: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    account_target: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    supervised: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))

    probable_duplicate_of: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    duplicate_of: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    recurrence_of: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))

    satisfaction: int | None = Field(default=None, sa_column=Column(SmallInteger, nullable=True))
    satisfaction_comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    # The chain's head: the last event's hash and how many events there are (catches rows removed at the end).
    last_event_hash: str = Field(sa_column=Column(String(64), nullable=False))
    event_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    # Optimistic lock: two actions on one issue at once, exactly one wins.
    version: int = Field(default=1, sa_column=_VERSION)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

    __mapper_args__ = {"version_id_col": _VERSION}  # noqa: RUF012


class IssueEvent(IssuesTable, table=True):
    """One change of one issue, append-only: who, as what, when, what changed, the photos and their flags."""

    __tablename__ = "issue_events"
    __table_args__ = (UniqueConstraint("issue_id", "seq"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    issue_id: int = Field(sa_column=Column(BigInteger, ForeignKey("issues.id"), nullable=False, index=True))
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    action: str = Field(sa_column=Column(String(32), nullable=False))
    actor: str = Field(sa_column=Column(String(128), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    photos: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


class IssueCounter(IssuesTable, table=True):
    """The last number given in a county and year: codes are gap-free and unique under concurrency."""

    __tablename__ = "issue_counters"

    county_code: str = Field(sa_column=Column(String(32), primary_key=True))
    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    last_number: int = Field(default=0, sa_column=Column(Integer, nullable=False))
