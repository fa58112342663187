"""Door commands as the server records them: sent, acknowledged, outcome, reconciled.

"Command sent" and "door opened" are kept apart: a command row is committed
before the agent is asked, and the outcome is written when it comes back.

The first answer is not always the last word. A link that dies mid-command,
or a deadline that passes, is recorded as ``no_answer``; a server that dies
mid-command records nothing and leaves its package ``collecting`` or
``depositing``. The site agent keeps its own record of every command (see
edge/journal.py) and reports, on every connect, what the server has not
settled. :func:`reconcile` takes that word:

- a command the server never finished (it restarted) is finished now with the
  agent's outcome, through the same final step a deposit or pickup runs, so
  the package moves on (picked up, deposited) or back (ready, received);
- a command the server already recorded keeps its record, and the agent's
  outcome is added beside it (``reconciled_outcome``); when it differs, or
  when nobody can know (the agent was killed while the lock fired), an alert
  asks a person to look at the door.

An operator can do the same by hand (:func:`resolve`) for a command no agent
will ever report (a site whose disk was lost, an embedded agent that died
with its server). Nothing here ever sends an unlock again.
"""

from __future__ import annotations

import logging
import time
import uuid
from uuid import UUID

import msgspec

from pigeonhole.api import UnlockOutcome
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import Bank, Compartment, DoorCommand, Package
from pigeonhole.domain import alerts, clock, custody
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.errors import Conflict, NotFound
from pigeonhole.edge.messages import CommandResult

log = logging.getLogger(__name__)

RECONCILER = Actor(name="reconciliation", role="system")
OPEN = ("opened", "already_open")
#: command id -> when this process handed it to the hub; its own path records it
_in_flight: dict[UUID, float] = {}
#: longer than any deadline plus the final step's retries
IN_FLIGHT_HORIZON = 120.0


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


def sending(command_id: UUID) -> None:
    """The door path hands this command to the hub now: reconciliation leaves it alone."""
    _in_flight[command_id] = time.monotonic()


def in_flight(command_id: UUID) -> bool:
    started = _in_flight.get(command_id)
    return started is not None and time.monotonic() - started < IN_FLIGHT_HORIZON


async def record(ctx: Ctx, result: CommandResult) -> None:
    """The final step's record of a command; the agent may forget it once this commits."""
    from pigeonhole.domain import doors
    from pigeonhole.edge.hub import get_hub

    await ctx.scope.update(
        DoorCommand,
        {
            DoorCommand.acked_at: result.acked_at,
            DoorCommand.completed_at: result.completed_at or clock.now(),
            DoorCommand.outcome: msgspec.json.encode(result.outcomes).decode(),
        },
    ).where(DoorCommand.id == result.id)
    opened = [int(d) for d, o in result.outcomes.items() if o in OPEN]
    if opened:
        bank_id = result.bank_id
        if bank_id is None:
            row = await ctx.scope.select(DoorCommand.bank_id).where(DoorCommand.id == result.id).first()
            bank_id = row["bank_id"] if row else None
        if bank_id is not None:
            for door in opened:
                await doors.mark(ctx, bank_id, door, "open")
    command_id = result.id

    def done() -> None:
        _in_flight.pop(command_id, None)
        get_hub().settle(command_id)

    ctx.scope.on_commit(done)


def state(row: dict) -> str:
    """pending (no answer yet), done (the door's outcome is known), unknown, reconciled."""
    if row["reconciled_at"] is not None:
        return "reconciled"
    if row["completed_at"] is None:
        return "pending"
    outcome = msgspec.json.decode(row["outcome"]) if row["outcome"] else {}
    return "unknown" if UnlockOutcome.NO_ANSWER.value in outcome.values() else "done"


def as_dict(row: dict) -> dict:
    reconciled = row.get("reconciled_outcome")
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
        "state": state(row),
        "reconciled_outcome": msgspec.json.decode(reconciled) if reconciled else None,
        "reconciled_at": row.get("reconciled_at"),
        "reconciled_by": row.get("reconciled_by"),
    }


async def for_bank(ctx: Ctx, bank_id: UUID, limit: int = 50) -> list[dict]:
    rows = await (
        ctx.scope.select(DoorCommand)
        .where(DoorCommand.bank_id == bank_id)
        .order_by(DoorCommand.created_at, ascending=False)
        .limit(limit)
    )
    return [as_dict(r) for r in rows]


async def get_command(ctx: Ctx, command_id: UUID) -> dict:
    row = await ctx.scope.select(DoorCommand).where(DoorCommand.id == command_id).first()
    if row is None:
        raise NotFound("Door command", command_id)
    return as_dict(row)


async def list_commands(
    ctx: Ctx, *, state_: str | None = None, bank_id: UUID | None = None, limit: int = 100
) -> list[dict]:
    query = ctx.scope.select(DoorCommand).order_by(DoorCommand.created_at, ascending=False)
    if bank_id is not None:
        query = query.where(DoorCommand.bank_id == bank_id)
    if state_ in ("pending", "unknown"):
        query = query.where(DoorCommand.reconciled_at.is_null())
    rows = [as_dict(r) for r in await query.limit(min(max(limit, 1), 500) if state_ is None else 2000)]
    if state_ is not None:
        rows = [r for r in rows if r["state"] == state_][:limit]
    return rows


# --- reconciliation -------------------------------------------------------------------------


def _door_sentence(bank: dict, doors: list[int]) -> str:
    listed = ", ".join(str(d) for d in doors)
    return f"Door{'s' if len(doors) > 1 else ''} {listed} of bank '{bank['name']}'"


async def reconcile(
    tenant: TenantInfo, command_id: UUID, outcomes: dict[int, str] | None, *, by: str = "agent"
) -> str:
    """Take an agent's (or an operator's) word on a command; returns what was done, for the log.

    ``outcomes`` None: the agent started the command and cannot know how it ended.
    """
    async with tenant_context(tenant, RECONCILER, write=False) as ctx:
        row = await ctx.scope.select(DoorCommand).where(DoorCommand.id == command_id).first()
        if row is None:
            return "unknown command"
        bank = await ctx.scope.select(Bank).where(Bank.id == row["bank_id"]).first()
    if row["reconciled_at"] is not None:
        return "already reconciled"
    doors = msgspec.json.decode(row["doors"])
    if outcomes is not None:
        outcomes = {int(d): str(o) for d, o in outcomes.items()}
    if row["completed_at"] is None:
        if in_flight(command_id):
            return "in flight: its own path records it"
        return await _finish_orphan(tenant, row, bank, doors, outcomes, by)
    return await _late_word(tenant, row, bank, doors, outcomes, by)


async def _mark_reconciled(ctx: Ctx, command_id: UUID, reported, by: str) -> None:
    await ctx.scope.update(
        DoorCommand,
        {
            DoorCommand.reconciled_outcome: msgspec.json.encode(reported).decode(),
            DoorCommand.reconciled_at: clock.now(),
            DoorCommand.reconciled_by: by,
        },
    ).where(DoorCommand.id == command_id)


async def _finish_orphan(tenant, row, bank, doors, outcomes, by: str) -> str:
    """The server died before the command's final step: run that step now with the agent's word."""
    from pigeonhole.domain import packages, pickup

    command_id = row["id"]
    known = outcomes or {}
    full = {d: known.get(d, UnlockOutcome.NO_ANSWER.value) for d in doors}
    result = CommandResult(
        id=command_id, acked_at=row["acked_at"], outcomes=full, completed_at=clock.now(), bank_id=bank["id"]
    )
    opened = all(o in OPEN for o in full.values())
    async with tenant_context(tenant, RECONCILER, write=False) as ctx:
        comp = (
            await ctx.scope.select(Compartment)
            .where((Compartment.bank_id == bank["id"]) & (Compartment.door == doors[0]))
            .first()
        )
        package = None
        if comp is not None and len(doors) == 1:
            package = await (
                ctx.scope.select(Package)
                .where((Package.compartment_id == comp["id"]) & (Package.status == "depositing"))
                .first()
            )
        session = None
        if package is None:
            # A pickup: the packages it claimed are still ``collecting`` behind these doors.
            session = await pickup.orphan_session(ctx, bank, doors, command_id)
            if session is not None:
                package = session.groups[0][1][0]
    actor = RECONCILER
    done = "recorded"
    if package is not None and package["status"] == "depositing":
        await retrying(
            lambda: packages._record_deposit_door(
                tenant, actor, package["id"], bank, comp, command_id, result
            )
        )
        done = "deposit " + ("opened" if opened else "undone")
    elif session is not None:
        await retrying(lambda: pickup._finish(tenant, actor, session, result))
        done = "pickup " + ("completed" if opened else "undone: the package is ready again")
    else:

        async def plain() -> None:
            async with tenant_context(tenant, actor) as ctx:
                await record(ctx, result)

        await retrying(plain)
    async with tenant_context(tenant, actor) as ctx:
        await _mark_reconciled(ctx, command_id, outcomes if outcomes is not None else "unknown", by)
        await custody.append(
            ctx,
            "door.command_reconciled",
            package_id=package["id"] if package else None,
            bank_id=bank["id"],
            compartment_id=comp["id"] if comp else None,
            data={"command_id": str(command_id), "outcome": outcomes, "by": by, "result": done},
        )
        if outcomes is None:
            await alerts.raise_alert(
                ctx,
                "command.unknown_outcome",
                f"{_door_sentence(bank, doors)}: the agent was cut off while opening "
                f"{'them' if len(doors) > 1 else 'it'}; nobody knows whether "
                f"{'they' if len(doors) > 1 else 'it'} opened. Check the compartment.",
                bank_id=bank["id"],
                door=doors[0],
                compartment_id=comp["id"] if comp else None,
                package_id=package["id"] if package else None,
                command_id=command_id,
            )
    log.warning("command %s reconciled (%s): %s", command_id, by, done)
    return done


async def _late_word(tenant, row, bank, doors, outcomes, by: str) -> str:
    """The server had recorded the command (often ``no_answer``); the agent says what it saw."""
    recorded = {int(d): o for d, o in msgspec.json.decode(row["outcome"] or "{}").items()}
    command_id = row["id"]
    async with tenant_context(tenant, RECONCILER) as ctx:
        comp = (
            await ctx.scope.select(Compartment)
            .where((Compartment.bank_id == bank["id"]) & (Compartment.door == doors[0]))
            .first()
        )
        package_id = comp["package_id"] if comp else None
        await _mark_reconciled(ctx, command_id, outcomes if outcomes is not None else "unknown", by)
        await custody.append(
            ctx,
            "door.command_reconciled",
            package_id=package_id,
            bank_id=bank["id"],
            compartment_id=comp["id"] if comp else None,
            data={"command_id": str(command_id), "recorded": recorded, "outcome": outcomes, "by": by},
        )
        if by != "agent":
            return "resolved by hand"  # a person looked: nothing to ask a person to look at
        common = dict(
            bank_id=bank["id"],
            door=doors[0],
            compartment_id=comp["id"] if comp else None,
            package_id=package_id,
            command_id=command_id,
            data={"recorded": recorded, "reported": outcomes},
        )
        if outcomes is None:
            if UnlockOutcome.NO_ANSWER.value not in recorded.values():
                return "nothing to add"
            await alerts.raise_alert(
                ctx,
                "command.unknown_outcome",
                f"{_door_sentence(bank, doors)}: the agent was cut off while opening "
                f"{'them' if len(doors) > 1 else 'it'}; nobody knows whether "
                f"{'they' if len(doors) > 1 else 'it'} opened. Check the compartment.",
                **common,
            )
            return "unknown outcome: alert raised"
        differs = {d: o for d, o in outcomes.items() if recorded.get(d) != o}
        if not differs:
            return "confirmed"
        for door, outcome in differs.items():
            if outcome in OPEN:
                from pigeonhole.domain import doors as door_states

                await door_states.mark(ctx, bank["id"], door, "open")
        said = ", ".join(f"door {d} {o} (recorded: {recorded.get(d, 'nothing')})" for d, o in differs.items())
        await alerts.raise_alert(
            ctx,
            "command.outcome_differs",
            f"Bank '{bank['name']}': its agent reported late that {said}. Check the compartment.",
            **common,
        )
        return "outcome differs: alert raised"


async def resolve(tenant: TenantInfo, actor: Actor, command_id: UUID, door_opened: bool, note: str) -> dict:
    """An operator's word on a command no agent will report: the same reconciliation, by hand."""
    async with tenant_context(tenant, actor, write=False) as ctx:
        row = await get_command(ctx, command_id)
    if row["state"] in ("done", "reconciled"):
        raise Conflict(
            f"Door command '{command_id}' is {row['state']}: its outcome is known "
            f"({row['reconciled_outcome'] or row['outcome']}); there is nothing to resolve"
        )
    if row["state"] == "pending" and in_flight(command_id):
        raise Conflict(f"Door command '{command_id}' is still waiting for its agent; try again in a moment")
    outcome = UnlockOutcome.OPENED.value if door_opened else UnlockOutcome.JAMMED.value
    await reconcile(tenant, command_id, {d: outcome for d in row["doors"]}, by=actor.label)
    async with tenant_context(tenant, actor) as ctx:
        await custody.append(
            ctx,
            "door.command_resolved",
            bank_id=row["bank_id"],
            data={"command_id": str(command_id), "door_opened": door_opened, "note": note},
        )
        return await get_command(ctx, command_id)


async def orphans(tenant: TenantInfo, bank_ids: set[UUID], before) -> list[dict]:
    """Commands of these banks that a server process before this one left without an answer."""
    async with tenant_context(tenant, RECONCILER, write=False) as ctx:
        rows = await ctx.scope.select(DoorCommand).where(
            DoorCommand.completed_at.is_null() & (DoorCommand.created_at < before)
        )
    return [r for r in rows if r["bank_id"] in bank_ids and not in_flight(r["id"])]
