"""initial: version table only

Revision ID: e277448df02b
Revises:
Create Date: 2026-11-23 18:24:58.358817
"""

from collections.abc import Sequence

import sqlmodel  # noqa: F401 - generated columns may name sqlmodel types


revision: str = "e277448df02b"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
