"""The statistics' index covers extensions

`ix_issues_path_reported` includes `extension_count` too, so the rectification statistics (their extension
rate) are summed from the index alone: without it a county's month at 10⁶ issues read 969 heap pages
(bench.issues_lifecycle, bench/README.md). Rebuilt in place; SQLite ignores inclusions.

Revision ID: e1c4b0a7d9f2
Revises: 9dfd4d067218
Create Date: 2026-12-04 22:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e1c4b0a7d9f2"
down_revision: str | None = "9dfd4d067218"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ["status", "closed_at", "deadline", "category", "source", "rework_count"]
AFTER = [*BEFORE, "extension_count"]


def _rebuild(includes: list[str]) -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index("ix_issues_path_reported")
        batch_op.create_index(
            "ix_issues_path_reported",
            ["region_path", "reported_at"],
            unique=False,
            postgresql_ops={"region_path": "varchar_pattern_ops"},
            postgresql_include=includes,
        )


def upgrade() -> None:
    _rebuild(AFTER)


def downgrade() -> None:
    _rebuild(BEFORE)
