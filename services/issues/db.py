"""The issues service's table base: its own registry and MetaData, kept apart from the other services."""

from sqlmodel import SQLModel

from services.kit.db import new_registry
from services.kit.idempotency import idempotency_table


class IssuesTable(SQLModel, registry=new_registry()):
    pass


metadata = IssuesTable.metadata
idempotency_keys = idempotency_table(metadata)
