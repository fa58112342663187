"""What travels between the server and an agent.

Commands carry ids: an agent that receives the same command twice answers
with the first outcome instead of firing the lock again.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class UnlockCommand(msgspec.Struct, frozen=True):
    id: UUID
    tenant_id: UUID
    bank_id: UUID
    doors: list[int]
    sequential: bool = True


class CommandResult(msgspec.Struct, frozen=True):
    id: UUID
    #: None when the agent never acknowledged the command
    acked_at: datetime | None
    #: door number -> UnlockOutcome value
    outcomes: dict[int, str]
    completed_at: datetime | None = None
    #: the bank, when the hub knows it (it saves the record a query)
    bank_id: UUID | None = None
