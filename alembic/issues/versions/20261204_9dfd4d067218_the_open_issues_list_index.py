"""The open issues' list index

`ix_issues_open_list`: the keys and inclusions of `ix_issues_path_list`, for the open issues only (partial
on PostgreSQL). Lists of open, overdue or red-light issues, the daily ones, read a county's few hundred open
entries instead of its whole year (bench.issues_lifecycle, bench/README.md). ~6 MB at 10⁶ issues.

Revision ID: 9dfd4d067218
Revises: ade4608ba400
Create Date: 2026-12-04 19:53:45.539044
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9dfd4d067218"
down_revision: str | None = "ade4608ba400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIST_INCLUDES = [
    "status",
    "category",
    "source",
    "severity",
    "deadline",
    "yellow_at",
    "reported_at",
    "closed_at",
]


def upgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.create_index(
            "ix_issues_open_list",
            ["region_path", "id"],
            unique=False,
            postgresql_ops={"region_path": "varchar_pattern_ops"},
            postgresql_include=LIST_INCLUDES,
            postgresql_where=sa.text("status IN ('reported', 'assigned', 'submitted')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index("ix_issues_open_list")
