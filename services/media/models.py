"""Every table of the media service, imported in one place for Alembic."""

from services.media.db import metadata
from services.media.photos.models import Content, Photo, PhotoHash, PhotoMatch
from services.media.uploads.models import Upload

__all__ = ["Content", "Photo", "PhotoHash", "PhotoMatch", "Upload", "metadata"]
