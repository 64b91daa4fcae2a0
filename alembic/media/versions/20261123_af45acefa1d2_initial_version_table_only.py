"""initial: version table only

Revision ID: af45acefa1d2
Revises:
Create Date: 2026-11-23 18:25:00.228876
"""

from collections.abc import Sequence

import sqlmodel  # noqa: F401 - generated columns may name sqlmodel types


revision: str = "af45acefa1d2"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
