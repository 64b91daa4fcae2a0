"""The scoring service's table base: its own registry and MetaData, kept apart from the other services."""

from sqlmodel import SQLModel

from services.kit.db import new_registry
from services.kit.idempotency import idempotency_table
from services.kit.outbox import outbox_table


class ScoringTable(SQLModel, registry=new_registry()):
    pass


metadata = ScoringTable.metadata
idempotency_keys = idempotency_table(metadata)
outbox_rows = outbox_table(metadata)
