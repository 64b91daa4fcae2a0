"""What the issuer remembers beyond users and clients: the moments their tokens were revoked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field

from services.issues.db import IssuesTable
from services.kit.db import UTCDateTime


class Revocation(IssuesTable, table=True):
    """Every token of `subject` issued at or before `revoked_at` is void (disabled, demoted, moved, revoked)."""

    __tablename__ = "revocations"

    subject: str = Field(sa_column=Column(String(128), primary_key=True))
    revoked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
