"""What the platform does when a door changes state without being asked.

A door that closes on a compartment being filled completes the deposit; every
change is appended to the custody chain; a door that opens with no command
outstanding is recorded as forced (the hardware issue adds alerts).
"""

from __future__ import annotations

from uuid import UUID

from pigeonhole.api import DoorState
from pigeonhole.db.tables import Compartment
from pigeonhole.domain import custody, packages
from pigeonhole.domain.context import Actor, tenant_by_id, tenant_context

AGENT = Actor(name="door-sensor", role="agent")


async def door_changed(tenant_id: UUID, bank_id: UUID, door: int, state: DoorState) -> None:
    tenant = await tenant_by_id(tenant_id)
    if tenant is None:
        return
    async with tenant_context(tenant, AGENT) as ctx:
        comp = (
            await ctx.scope.select(Compartment)
            .where((Compartment.bank_id == bank_id) & (Compartment.door == door))
            .first()
        )
        if comp is None:
            await custody.append(
                ctx, f"door.{state.value}", bank_id=bank_id, data={"door": door, "unknown_door": True}
            )
            return
        kind = f"door.{state.value}"
        if state == DoorState.OPEN and comp["status"] in ("available", "occupied", "out_of_service"):
            kind = "door.forced"
        await custody.append(
            ctx,
            kind,
            package_id=comp["package_id"],
            bank_id=bank_id,
            compartment_id=comp["id"],
            data={"door": door},
        )
        if state == DoorState.CLOSED and comp["status"] == "reserved" and comp["package_id"]:
            await packages.complete_deposit(ctx, comp)
