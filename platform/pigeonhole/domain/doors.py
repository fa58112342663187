"""What the platform does when a door changes state, and opening one remotely (D4).

A door that closes on a compartment being filled completes the deposit; every
change is appended to the custody chain. A door that opens with no command
outstanding is ``door.forced`` and raises an alert. The last state of every
door is kept (``door_status``): a door that stays open past its bank's
``door_left_open_seconds`` raises ``door.left_open``, and the timer is armed
again from that table when the server restarts, so a restart does not forget
an open door. Closing the door clears its left-open alert (it stays listed
until acknowledged).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

import msgspec

from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import Bank, Compartment, DoorCommand, DoorStatus
from pigeonhole.domain import alerts, clock, commands, custody, lockers, packages
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_by_id, tenant_context
from pigeonhole.domain.errors import DoorFailed, Invalid, NotFound

AGENT = Actor(name="door-sensor", role="agent")
#: a door that opens this soon after a command for it was sent is that command's doing
COMMAND_WINDOW = timedelta(seconds=60)


async def mark(ctx, bank_id: UUID, door: int, state: str) -> None:
    """Keep the door's last state; arm the left-open timer when it opens.

    On the pickup and deposit path: one statement when the door's row exists.
    """
    from pigeonhole.edge.hub import get_hub

    now = clock.now()
    here = (DoorStatus.bank_id == bank_id) & (DoorStatus.door == door)
    if state == "open":
        changed = (
            await ctx.scope.update(
                DoorStatus,
                {DoorStatus.state: state, DoorStatus.changed_at: now, DoorStatus.left_open_alert_id: None},
            )
            .where(here & (DoorStatus.state != state))
            .returning(DoorStatus.id)
        )
        if not changed:
            if await ctx.scope.exists(DoorStatus).where(here):
                return  # already open: its timer runs
            await ctx.scope.insert(
                DoorStatus, dict(id=uuid.uuid4(), bank_id=bank_id, door=door, state=state, changed_at=now)
            )
        hub = get_hub()
        seconds = hub.left_open_seconds.get(bank_id)
        if seconds is None:
            bank = await ctx.scope.select(Bank.settings).where(Bank.id == bank_id).first()
            seconds = lockers.bank_settings(bank).door_left_open_seconds if bank else 120.0
            hub.left_open_seconds[bank_id] = seconds
        tenant_id = ctx.tenant.id
        ctx.scope.on_commit(lambda: hub.watch_door(tenant_id, bank_id, door, now, seconds))
        return
    row = await ctx.scope.select(DoorStatus).where(here).first()
    if row is not None and row["state"] == state:
        return
    if row is None:
        await ctx.scope.insert(
            DoorStatus, dict(id=uuid.uuid4(), bank_id=bank_id, door=door, state=state, changed_at=now)
        )
        return
    await ctx.scope.update(
        DoorStatus, {DoorStatus.state: state, DoorStatus.changed_at: now, DoorStatus.left_open_alert_id: None}
    ).where(DoorStatus.id == row["id"])
    if row["left_open_alert_id"] is not None:
        await alerts.clear(ctx, row["left_open_alert_id"])


async def check_left_open(tenant_id: UUID, bank_id: UUID, door: int, since) -> None:
    """The timer ran out: still open since then, and not yet alerted? Alert."""
    tenant = await tenant_by_id(tenant_id)
    if tenant is None:
        return
    async with tenant_context(tenant, AGENT) as ctx:
        row = (
            await ctx.scope.select(DoorStatus)
            .where((DoorStatus.bank_id == bank_id) & (DoorStatus.door == door))
            .first()
        )
        if row is None or row["state"] != "open" or row["left_open_alert_id"] is not None:
            return
        if abs((row["changed_at"] - since).total_seconds()) > 0.001:
            return  # it closed and opened again since: that opening has its own timer
        bank = await ctx.scope.select(Bank).where(Bank.id == bank_id).first()
        comp = (
            await ctx.scope.select(Compartment)
            .where((Compartment.bank_id == bank_id) & (Compartment.door == door))
            .first()
        )
        seconds = lockers.bank_settings(bank).door_left_open_seconds
        from pigeonhole.edge.hub import get_hub

        get_hub().left_open_seconds[bank_id] = seconds
        left = seconds - (clock.now() - row["changed_at"]).total_seconds()
        if left > 0.001:  # the timer was made longer since the door opened
            changed_at = row["changed_at"]
            ctx.scope.on_commit(lambda: get_hub().watch_door(tenant_id, bank_id, door, changed_at, left))
            return
        alert = await alerts.raise_alert(
            ctx,
            "door.left_open",
            f"Door {door} of bank '{bank['name']}' has been open for more than {seconds:g} seconds.",
            bank_id=bank_id,
            door=door,
            compartment_id=comp["id"] if comp else None,
            package_id=comp["package_id"] if comp else None,
            data={"open_since": row["changed_at"].isoformat(), "timer_seconds": seconds},
        )
        await ctx.scope.update(DoorStatus, {DoorStatus.left_open_alert_id: alert["id"]}).where(
            DoorStatus.id == row["id"]
        )


async def rearm(tenant: TenantInfo) -> int:
    """After a restart: the doors recorded open get their timers back."""
    from pigeonhole.edge.hub import get_hub

    async with tenant_context(tenant, AGENT, write=False) as ctx:
        rows = await ctx.scope.select(DoorStatus).where(
            (DoorStatus.state == "open") & DoorStatus.left_open_alert_id.is_null()
        )
        banks = {b["id"]: b for b in await ctx.scope.select(Bank.id, Bank.settings)}
    now = clock.now()
    for row in rows:
        bank = banks.get(row["bank_id"])
        seconds = lockers.bank_settings(bank).door_left_open_seconds if bank else 120
        left = max(0.0, seconds - (now - row["changed_at"]).total_seconds())
        get_hub().watch_door(tenant.id, row["bank_id"], row["door"], row["changed_at"], left)
    return len(rows)


async def _commanded_lately(ctx, bank_id: UUID, door: int, closed_at=None) -> bool:
    """A command for this door sent lately, and since the door last closed (that one's done)."""
    since = clock.now() - COMMAND_WINDOW
    if closed_at is not None and closed_at > since:
        since = closed_at
    rows = await ctx.scope.select(DoorCommand.doors, DoorCommand.outcome).where(
        (DoorCommand.bank_id == bank_id) & (DoorCommand.created_at > since)
    )
    for row in rows:
        if door not in msgspec.json.decode(row["doors"]):
            continue
        outcome = msgspec.json.decode(row["outcome"]) if row["outcome"] else None
        if outcome is None or outcome.get(str(door)) != UnlockOutcome.JAMMED.value:
            return True
    return False


async def door_changed(tenant_id: UUID, bank_id: UUID, door: int, state: DoorState) -> None:
    tenant = await tenant_by_id(tenant_id)
    if tenant is None:
        return
    async with tenant_context(tenant, AGENT) as ctx:
        before = (
            await ctx.scope.select(DoorStatus)
            .where((DoorStatus.bank_id == bank_id) & (DoorStatus.door == door))
            .first()
        )
        closed_at = before["changed_at"] if before and before["state"] == "closed" else None
        if state != DoorState.UNKNOWN:
            await mark(ctx, bank_id, door, state.value)
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
        if (
            state == DoorState.OPEN
            and comp["status"] in ("available", "occupied", "out_of_service")
            and not await _commanded_lately(ctx, bank_id, door, closed_at)
        ):
            kind = "door.forced"
        await custody.append(
            ctx,
            kind,
            package_id=comp["package_id"],
            bank_id=bank_id,
            compartment_id=comp["id"],
            data={"door": door},
        )
        if kind == "door.forced":
            bank = await ctx.scope.select(Bank.name).where(Bank.id == bank_id).first()
            holds = " with a package inside" if comp["package_id"] else ""
            await alerts.raise_alert(
                ctx,
                "door.forced",
                f"Door {door} of bank '{bank['name']}'{holds} opened without a command.",
                bank_id=bank_id,
                door=door,
                compartment_id=comp["id"],
                package_id=comp["package_id"],
                data={"compartment_status": comp["status"]},
            )
        # deposit (#5, E4): a package may also join an occupied compartment of its recipient
        if state == DoorState.CLOSED and comp["status"] in ("reserved", "occupied") and comp["package_id"]:
            await packages.complete_deposit(ctx, comp)


async def remote_open(
    tenant: TenantInfo,
    actor: Actor,
    bank_id: UUID,
    compartment_id: UUID,
    reason: str,
    *,
    check: Callable[[Ctx, UUID], Awaitable[None]] | None = None,
) -> dict:
    """An administrator opens a compartment from afar (D4): the door path, recorded with its reason.

    The package inside (if any) keeps its state: opening a door is not a
    handover. The chain of custody says who opened it, why, and what the door did.
    ``check`` (the caller's scope) runs first in the same transaction, so a bank
    out of scope is 404 before anything else is looked at, without a read
    transaction of its own on the door path.
    """
    reason = (reason or "").strip()
    async with tenant_context(tenant, actor) as ctx:
        if actor.bank_id is not None and actor.bank_id != bank_id:
            raise NotFound("Locker bank", bank_id)
        if check is not None:
            await check(ctx, bank_id)
        if not reason:
            raise Invalid("A remote open needs a reason: it is recorded in the chain of custody")
        bank = await lockers.get_bank(ctx, bank_id)
        comp = await lockers.get_compartment(ctx, bank_id, compartment_id)
        packages.require_online(bank)
        command_id = await commands.create(ctx, bank_id, [comp["door"]], kind="remote_open")
        await custody.append(
            ctx,
            "door.remote_open_requested",
            package_id=comp["package_id"],
            bank_id=bank_id,
            compartment_id=comp["id"],
            data={"door": comp["door"], "reason": reason, "command_id": str(command_id)},
        )
    result = await packages.unlock(tenant, actor, bank, [comp["door"]], command_id)
    outcome = result.outcomes.get(comp["door"], UnlockOutcome.NO_ANSWER.value)
    opened = outcome in commands.OPEN

    async def finish() -> None:
        async with tenant_context(tenant, actor) as ctx:
            await commands.record(ctx, result)
            await packages.door_event(
                ctx,
                "door.remote_opened" if opened else "door.unlock_failed",
                comp["package_id"],
                bank_id,
                comp,
                "remote_open",
                outcome,
                command_id,
                reason=reason,
            )

    await retrying(finish)
    if not opened:
        raise DoorFailed(
            f"Door {comp['door']} of bank '{bank['name']}' did not open ({outcome})",
            outcome=outcome,
            door=comp["door"],
            command_id=str(command_id),
        )
    return {
        "command_id": command_id,
        "bank_id": bank_id,
        "compartment_id": comp["id"],
        "door": comp["door"],
        "outcome": outcome,
        "package_id": comp["package_id"],
        "reason": reason,
    }
