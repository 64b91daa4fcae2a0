"""Alembic environment of the issues service: only its own tables, its own version table."""

from services.issues.models import metadata
from services.issues.settings import IssuesSettings
from services.kit.migrations import run_env

run_env(metadata, "alembic_version_issues", lambda: IssuesSettings().resolved_database_url)
