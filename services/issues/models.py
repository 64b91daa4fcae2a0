"""Every table of the issues service, imported in one place for Alembic."""

from services.issues.auth.models import Revocation
from services.issues.calendar.models import CalendarYear
from services.issues.cases.models import Issue, IssueCounter, IssueEvent
from services.issues.categories.models import Category
from services.issues.clients.models import ApiClient
from services.issues.db import metadata
from services.issues.regions.models import Region
from services.issues.users.models import User

__all__ = [
    "ApiClient",
    "CalendarYear",
    "Category",
    "Issue",
    "IssueCounter",
    "IssueEvent",
    "Region",
    "Revocation",
    "User",
    "metadata",
]
