"""Region codes are unique whatever their case

Revision ID: 5b4306056c1d
Revises: 8f81f0f62a31
Create Date: 2026-12-04 18:22:58.267135
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - generated columns may name sqlmodel types
from alembic import op


revision: str = "5b4306056c1d"
down_revision: str | None = "8f81f0f62a31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Autogenerate does not see expression indexes: written by hand. Fails if two codes already differ
    # only in case; rename one of them first.
    op.create_index("uq_regions_code_lower", "regions", [sa.text("lower(code)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_regions_code_lower", table_name="regions")
