"""Every table of the scoring service, imported in one place for Alembic."""

from services.scoring.db import metadata
from services.scoring.publishing import models as publishing_models  # noqa: F401 - its tables
from services.scoring.rounds.models import Round, RoundResult, RoundUnit, Scorecard, ScorecardRevision
from services.scoring.rubrics.models import RubricVersion

__all__ = [
    "Round",
    "RoundResult",
    "RoundUnit",
    "RubricVersion",
    "Scorecard",
    "ScorecardRevision",
    "metadata",
]
