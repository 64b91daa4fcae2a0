"""Alembic environment of the media service: only its own tables, its own version table."""

from services.media.models import metadata
from services.media.settings import MediaSettings
from services.kit.migrations import run_env

run_env(metadata, "alembic_version_media", lambda: MediaSettings().resolved_database_url)
