"""Door commands as the server records them: sent, acknowledged, outcome.

"Command sent" and "door opened" are kept apart: a command row is committed
before the agent is asked, and the outcome is written when it comes back.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import msgspec

from pigeonhole.db.tables import DoorCommand
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.edge.messages import CommandResult


async def create(ctx: Ctx, bank_id: UUID, doors: list[int], kind: str = "unlock") -> UUID:
    command_id = uuid.uuid4()
    await ctx.scope.insert(
        DoorCommand,
        dict(
            id=command_id,
            bank_id=bank_id,
            kind=kind,
            doors=msgspec.json.encode(doors).decode(),
            requested_by=ctx.actor.label,
            created_at=clock.now(),
        ),
    )
    return command_id


async def record(ctx: Ctx, result: CommandResult) -> None:
    await ctx.scope.update(
        DoorCommand,
        {
            DoorCommand.acked_at: result.acked_at,
            DoorCommand.completed_at: result.completed_at or clock.now(),
            DoorCommand.outcome: msgspec.json.encode(result.outcomes).decode(),
        },
    ).where(DoorCommand.id == result.id)


def as_dict(row: dict) -> dict:
    return {
        "id": row["id"],
        "bank_id": row["bank_id"],
        "kind": row["kind"],
        "doors": msgspec.json.decode(row["doors"]),
        "requested_by": row["requested_by"],
        "created_at": row["created_at"],
        "acked_at": row["acked_at"],
        "completed_at": row["completed_at"],
        "outcome": msgspec.json.decode(row["outcome"]) if row["outcome"] else None,
    }


async def for_bank(ctx: Ctx, bank_id: UUID, limit: int = 50) -> list[dict]:
    rows = await (
        ctx.scope.select(DoorCommand)
        .where(DoorCommand.bank_id == bank_id)
        .order_by(DoorCommand.created_at, ascending=False)
        .limit(limit)
    )
    return [as_dict(r) for r in rows]
