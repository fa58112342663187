"""The server's side of the door path.

The domain asks the hub to open doors; the hub hands the command to the agent
that serves the bank and waits, within a deadline, for what the agent saw.
An agent is either embedded (in this process, serving every bank) or a site
agent connected over a WebSocket (see remote.py), which serves the banks its
key gives it; a connected site agent takes precedence for its banks. Door
changes the agents report come back through :meth:`DoorHub.door_changed`
and reach the domain in a transaction of their own.

The links live in this process's memory: with several API processes a
command must reach the process that holds the bank's link (see 0008).

A link counts only while its agent is heard from: a site agent sends a
heartbeat every few seconds, and a link silent for longer than
``offline_after`` (a network that stopped carrying packets without closing
anything) is offline for door work, 503, until it speaks again. The hub also
holds the timers that raise ``door.left_open`` (see domain/doors.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole.edge.agent import Agent
from pigeonhole.edge.messages import CommandResult, UnlockCommand

if TYPE_CHECKING:  # pragma: no cover
    from pigeonhole.edge.remote import AgentLink

log = logging.getLogger(__name__)


class DoorHub:
    def __init__(self, *, command_timeout: float = 5.0) -> None:
        self.command_timeout = command_timeout
        self.agent: Agent | None = None
        #: bank id -> the connected site agent that serves it
        self.links: dict[UUID, AgentLink] = {}
        #: every connected site agent, whether it serves a bank now or not
        self.remote: set[AgentLink] = set()
        #: when this process started: commands left open before it are orphans
        from pigeonhole.domain import clock

        self.started_at: datetime = clock.now()
        #: (tenant, bank, door) -> the timer that raises door.left_open
        self._door_timers: dict[tuple[UUID, UUID, int], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        #: bank id -> its door_left_open_seconds, as last read (a stale value only
        #: delays the check, which reads the setting again before it alerts)
        self.left_open_seconds: dict[UUID, float] = {}

    def start_embedded_agent(self) -> Agent:
        self.agent = Agent(report=self.door_changed)
        return self.agent

    def needs_bank(self, bank_id: UUID) -> bool:
        """Whether the embedded agent has yet to be given this bank's driver."""
        return self.agent is not None and not self.agent.knows(bank_id)

    def is_online(self, bank_id: UUID) -> bool:
        """Whether an agent serves the bank now (the embedded agent serves every bank)."""
        if self.agent is not None:
            return True
        link = self.links.get(bank_id)
        return link is not None and link.heard_lately()

    def key_heard(self, key_id: UUID) -> bool | None:
        """Whether an agent key's link here is heard from; None: no link in this process."""
        links = [link for link in self.remote if link.caller.actor.key_id == key_id]
        if not links:
            return None
        return any(link.heard_lately() for link in links)

    def settle(self, command_id: UUID) -> None:
        """The command's record committed: the agent that ran it may stop reporting it."""
        for link in list(self.remote):
            if link.ran(command_id):
                self._spawn(link.settle([command_id]))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def watch_door(self, tenant_id: UUID, bank_id: UUID, door: int, since: datetime, seconds: float) -> None:
        """Raise door.left_open if the door is still open (since ``since``) in ``seconds``."""
        from pigeonhole.domain import doors

        key = (tenant_id, bank_id, door)
        old = self._door_timers.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._door_timers.pop(key, None)
            self._spawn(_logged(doors.check_left_open(tenant_id, bank_id, door, since), "left-open check"))

        self._door_timers[key] = asyncio.get_running_loop().call_later(max(0.0, seconds), fire)

    async def reconcile_embedded_orphans(self) -> int:
        """Commands an earlier server process left unanswered, with the agent that died with it."""
        from pigeonhole.db.tables import Bank, Tenant
        from pigeonhole.domain import commands
        from pigeonhole.domain.context import tenant_by_id, tenant_context

        count = 0
        for row in await Tenant.select(Tenant.id).where(Tenant.status == "active"):
            tenant = await tenant_by_id(row["id"])
            if tenant is None:
                continue
            try:
                async with tenant_context(tenant, write=False) as ctx:
                    banks = {b["id"] for b in await ctx.scope.select(Bank.id)}
                for orphan in await commands.orphans(tenant, banks, self.started_at):
                    await commands.reconcile(tenant, orphan["id"], None, by="restart")
                    count += 1
            except Exception:
                log.exception("could not reconcile the commands of tenant %s", row["id"])
        return count

    async def rearm_doors(self) -> int:
        """At start-up: timers for the doors the database says are open."""
        from pigeonhole.db.tables import Tenant
        from pigeonhole.domain import doors
        from pigeonhole.domain.context import tenant_by_id

        count = 0
        for row in await Tenant.select(Tenant.id).where(Tenant.status == "active"):
            tenant = await tenant_by_id(row["id"])
            if tenant is not None:
                try:
                    count += await doors.rearm(tenant)
                except Exception:
                    log.exception("could not re-arm the door timers of tenant %s", row["id"])
        return count

    def link_banks(self, link: AgentLink, bank_ids: set[UUID]) -> None:
        """Route the commands of exactly these banks to ``link`` from now on.

        The newest connection wins a bank: an agent that reconnects before the
        server noticed its old socket die must not wait for that socket to time out.
        """
        self.remote.add(link)
        link.serving = set(bank_ids)
        for bank_id, holder in list(self.links.items()):
            if holder is link and bank_id not in bank_ids:
                self._hand_over(bank_id, link)
        for bank_id in bank_ids:
            holder = self.links.get(bank_id)
            if holder is not None and holder is not link:
                log.warning("bank %s: %s takes over from %s", bank_id, link, holder)
            self.links[bank_id] = link

    def unlink(self, link: AgentLink) -> None:
        """The link closed: its banks go to another connected agent that serves them, or offline."""
        self.remote.discard(link)
        link.serving = set()
        for bank_id, holder in list(self.links.items()):
            if holder is link:
                self._hand_over(bank_id, link)

    def _hand_over(self, bank_id: UUID, leaving: AgentLink) -> None:
        successor = next((o for o in self.remote if o is not leaving and bank_id in o.serving), None)
        if successor is None:
            del self.links[bank_id]
        else:
            self.links[bank_id] = successor

    async def stop(self) -> None:
        for timer in self._door_timers.values():
            timer.cancel()
        self._door_timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None

    async def unlock(
        self,
        plugins,
        bank: dict,
        bank_doors: list[int] | None,
        doors: list[int],
        command_id: UUID,
        sequential: bool = True,
    ) -> CommandResult:
        """Send one unlock command and wait for its outcome.

        A command whose answer does not come back in time is reported as
        ``no_answer`` and is *not* sent again: the door may have opened.
        """
        command = UnlockCommand(
            id=command_id, tenant_id=bank["tenant_id"], bank_id=bank["id"], doors=doors, sequential=sequential
        )
        link = self.links.get(bank["id"])
        if link is not None and link.tenant_id == bank["tenant_id"]:
            return await link.execute(command, self.command_timeout)
        if self.agent is None:
            # The bank's agent left between the online check and now: nothing was
            # sent, and the caller's third step must still run.
            log.warning("no agent serves bank %s any more: command %s not sent", bank["id"], command_id)
            return _all(command, UnlockOutcome.NO_ANSWER)
        if bank_doors is not None and not await self.attach_bank(plugins, bank, bank_doors):
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
        """Hand a tenant's changed banks to the agents that serve them; returns the embedded count."""
        if bank_id is None:
            self.left_open_seconds.clear()
        else:
            self.left_open_seconds.pop(bank_id, None)
        from pigeonhole.db.tables import Bank, Compartment
        from pigeonhole.domain.context import tenant_by_id, tenant_context

        for link in [link for link in self.remote if link.tenant_id == tenant_id]:
            if bank_id is None or link.bank_filter in (None, bank_id):
                try:
                    await link.offer()
                except Exception:
                    log.exception("could not send the changed banks to %s", link)
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


async def _logged(coro, what: str) -> None:
    try:
        await coro
    except Exception:
        log.exception("%s failed", what)


def _all(command: UnlockCommand, outcome: UnlockOutcome) -> CommandResult:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return CommandResult(
        bank_id=command.bank_id,
        id=command.id,
        acked_at=None,
        outcomes={d: outcome.value for d in command.doors},
        completed_at=now,
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
