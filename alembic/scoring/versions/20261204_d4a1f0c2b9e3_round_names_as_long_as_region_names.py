"""Round names as long as region names

A round's scope name and its snapshot's unit names take up to 100 characters, as the issues service's region
names do (they were 50: a long town name failed the round's creation on PostgreSQL and was cut on SQLite).

Revision ID: d4a1f0c2b9e3
Revises: c83f5e1d2a47
Create Date: 2026-12-04 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4a1f0c2b9e3"
down_revision: str | None = "c83f5e1d2a47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _widen(length: int, before: int) -> None:
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.alter_column(
            "scope_name", existing_type=sa.String(before), type_=sa.String(length), existing_nullable=False
        )
    with op.batch_alter_table("round_units", schema=None) as batch_op:
        batch_op.alter_column(
            "name", existing_type=sa.String(before), type_=sa.String(length), existing_nullable=False
        )


def upgrade() -> None:
    _widen(100, 50)


def downgrade() -> None:
    _widen(50, 100)
