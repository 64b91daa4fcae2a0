"""Alembic environment of the scoring service: only its own tables, its own version table."""

from services.scoring.models import metadata
from services.scoring.settings import ScoringSettings
from services.kit.migrations import run_env

run_env(metadata, "alembic_version_scoring", lambda: ScoringSettings().resolved_database_url)
