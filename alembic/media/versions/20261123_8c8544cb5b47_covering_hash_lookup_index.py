"""covering hash lookup index

Revision ID: 8c8544cb5b47
Revises: f449a043167c
Create Date: 2026-11-23 19:46:49.850778
"""

from collections.abc import Sequence

import sqlmodel  # noqa: F401 - generated columns may name sqlmodel types
from alembic import op


revision: str = "8c8544cb5b47"
down_revision: str | None = "f449a043167c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostgreSQL only: INCLUDE makes the reuse lookup an index-only scan. SQLite has no INCLUDE.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_photo_hashes_lookup", table_name="photo_hashes")
    op.create_index(
        "ix_photo_hashes_lookup",
        "photo_hashes",
        ["reuse_scope", "band", "value"],
        postgresql_include=["photo_id", "full_hash"],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_photo_hashes_lookup", table_name="photo_hashes")
    op.create_index("ix_photo_hashes_lookup", "photo_hashes", ["reuse_scope", "band", "value"])
