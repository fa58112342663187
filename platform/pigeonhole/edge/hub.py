"""The server's side of the door path.

The domain asks the hub to open doors; the hub hands the command to the agent
that serves the bank and waits, within a deadline, for what the agent saw.
Door changes the agent reports come back through :meth:`DoorHub.door_changed`
and reach the domain in a transaction of their own.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import msgspec

from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole.edge.agent import Agent
from pigeonhole.edge.messages import CommandResult, UnlockCommand

log = logging.getLogger(__name__)


class NoAgent(RuntimeError):
    pass


class DoorHub:
    def __init__(self, *, command_timeout: float = 5.0) -> None:
        self.command_timeout = command_timeout
        self.agent: Agent | None = None

    def start_embedded_agent(self) -> Agent:
        self.agent = Agent(report=self.door_changed)
        return self.agent

    def is_online(self, bank_id: UUID) -> bool:
        """Whether an agent serves the bank now (the embedded agent serves every bank)."""
        return self.agent is not None

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None

    async def unlock(
        self,
        plugins,
        bank: dict,
        bank_doors: list[int],
        doors: list[int],
        command_id: UUID,
        sequential: bool = True,
    ) -> CommandResult:
        """Send one unlock command and wait for its outcome.

        A command whose answer does not come back in time is reported as
        ``no_answer`` and is *not* sent again: the door may have opened.
        """
        if self.agent is None:
            raise NoAgent("no agent serves this bank")
        command = UnlockCommand(
            id=command_id, tenant_id=bank["tenant_id"], bank_id=bank["id"], doors=doors, sequential=sequential
        )
        if not await self.attach_bank(plugins, bank, bank_doors):
            return _all(command, UnlockOutcome.NO_ANSWER)
        try:
            return await asyncio.wait_for(
                asyncio.shield(self.agent.execute(command)), timeout=self.command_timeout
            )
        except TimeoutError:
            return _all(command, UnlockOutcome.NO_ANSWER)

    async def attach_bank(self, plugins, bank: dict, bank_doors: list[int]) -> bool:
        """Give the embedded agent the bank's driver (again, if its configuration changed)."""
        if self.agent is None:
            return False
        driver_cls = plugins.lock_drivers().get(bank["driver"])
        if driver_cls is None:
            log.warning(
                "bank %s uses driver %s, which its tenant has not enabled", bank["id"], bank["driver"]
            )
            return False
        config = msgspec.json.decode(bank["driver_config"], type=driver_cls.Config)
        await self.agent.configure_bank(bank["tenant_id"], bank["id"], driver_cls, config, bank_doors)
        return True

    async def attach_all(self) -> int:
        """At start-up the embedded agent takes every bank, as a site agent would take its own."""
        from pigeonhole.db.tables import Tenant

        count = 0
        for row in await Tenant.select(Tenant.id).where(Tenant.status == "active"):
            count += await self.refresh_tenant(row["id"])
        return count

    async def refresh_tenant(self, tenant_id: UUID, bank_id: UUID | None = None) -> int:
        from pigeonhole.db.tables import Bank, Compartment
        from pigeonhole.domain.context import tenant_by_id, tenant_context

        if self.agent is None:
            return 0
        tenant = await tenant_by_id(tenant_id)
        if tenant is None:
            return 0
        attached = 0
        async with tenant_context(tenant, write=False) as ctx:
            query = ctx.scope.select(Bank)
            if bank_id is not None:
                query = query.where(Bank.id == bank_id)
            for bank in await query:
                doors = [
                    c["door"]
                    for c in await ctx.scope.select(Compartment.door).where(Compartment.bank_id == bank["id"])
                ]
                try:
                    attached += await self.attach_bank(ctx.plugins, bank, doors)
                except Exception:
                    log.exception("could not attach bank %s", bank["id"])
        return attached

    async def door_changed(self, tenant_id: UUID, bank_id: UUID, door: int, state: DoorState) -> None:
        from pigeonhole.domain import doors as door_events

        try:
            await door_events.door_changed(tenant_id, bank_id, door, state)
        except Exception:
            log.exception("door event %s/%s %s not recorded", bank_id, door, state)
            raise


def _all(command: UnlockCommand, outcome: UnlockOutcome) -> CommandResult:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return CommandResult(
        id=command.id, acked_at=None, outcomes={d: outcome.value for d in command.doors}, completed_at=now
    )


_hub: DoorHub | None = None


def get_hub() -> DoorHub:
    global _hub
    if _hub is None:
        _hub = DoorHub()
    return _hub


def set_hub(hub: DoorHub | None) -> None:
    global _hub
    _hub = hub
