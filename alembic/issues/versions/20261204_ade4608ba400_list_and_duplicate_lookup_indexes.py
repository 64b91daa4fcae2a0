"""Indexes for the list and the duplicate lookup at province scale

- `ix_issues_region_path` (region path, id) becomes `ix_issues_path_list`, the same keys with the columns
  the list filters on included: on PostgreSQL the list chooses a page's ids by an index-only scan of the
  caller's subtree and reads only those rows from the table.
- `ix_issues_open_nearby`: the open issues by county, category and latitude (longitude and id included),
  partial on PostgreSQL, for the lookup of a probable duplicate that every new report makes.

Measured in bench.issues_lifecycle (bench/README.md). Built in the migration's transaction: writes to
`issues` wait while they are built (~10 s at 10⁶ issues on two cores).

Revision ID: ade4608ba400
Revises: 9a027564eeea
Create Date: 2026-12-04 19:03:33.510928
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ade4608ba400"
down_revision: str | None = "9a027564eeea"
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
PATTERN_OPS = {"region_path": "varchar_pattern_ops"}


def upgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index("ix_issues_region_path", postgresql_ops=PATTERN_OPS)
        batch_op.create_index(
            "ix_issues_path_list",
            ["region_path", "id"],
            unique=False,
            postgresql_ops=PATTERN_OPS,
            postgresql_include=LIST_INCLUDES,
        )
        batch_op.create_index(
            "ix_issues_open_nearby",
            ["county_code", "category", "latitude"],
            unique=False,
            postgresql_include=["longitude", "id"],
            postgresql_where=sa.text("status IN ('reported', 'assigned', 'submitted')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index("ix_issues_open_nearby")
        batch_op.drop_index("ix_issues_path_list", postgresql_ops=PATTERN_OPS)
        batch_op.create_index(
            "ix_issues_region_path", ["region_path", "id"], unique=False, postgresql_ops=PATTERN_OPS
        )
