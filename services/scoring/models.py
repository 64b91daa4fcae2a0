"""Every table of the scoring service, imported in one place for Alembic (its domain tables come next)."""

from services.scoring.db import metadata

__all__ = ["metadata"]
