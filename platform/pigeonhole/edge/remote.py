"""The server's end of a site agent's WebSocket, and the link the hub sends commands through.

A site agent connects to ``/api/v1/t/{tenant}/agent`` with an API key of role
``agent``. The key decides what it serves: the one bank it is bound to, or
every bank of its tenant. The link is registered with the hub before the
banks are sent, so once the agent has them a deposit can open their doors.

The deadline, the "never resend" rule and the split between acknowledged
and done are the hub's, as for the embedded agent: a command is sent once;
no result by the deadline, or a link that closes first, is ``no_answer``.

What the agent says besides results goes through one queue, in order, each
item in its own transaction: door changes, heartbeats (last seen, driver
health), and the ``outcomes`` report it sends on every connect, which
:func:`pigeonhole.domain.commands.reconcile` settles before the link answers
``settled``. Commands of this link's banks that an earlier server process left
open and that the agent does not know were never received: they are settled
as ``no_answer``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec
from litestar import WebSocket, websocket
from litestar.params import FromPath
from litestar.status_codes import WS_1008_POLICY_VIOLATION, WS_1011_INTERNAL_ERROR

from pigeonhole.api import UnlockOutcome
from pigeonhole.domain import clock
from pigeonhole.domain.errors import DomainError
from pigeonhole.edge import protocol
from pigeonhole.edge.hub import DoorHub, get_hub
from pigeonhole.edge.messages import CommandResult, UnlockCommand
from pigeonhole.web.auth import Caller, authenticate

log = logging.getLogger(__name__)

#: a WebSocket close reason may not exceed 123 bytes
_REASON_BYTES = 123


@dataclass
class _Pending:
    future: asyncio.Future[dict[int, str] | None]
    acked_at: datetime | None = None
    completed_at: datetime | None = None


class AgentLink:
    """One connected site agent, as the hub sees it."""

    def __init__(self, hub: DoorHub, caller: Caller, send_text: Callable[[str], Awaitable[None]]) -> None:
        self.hub = hub
        self.caller = caller
        self._send_text = send_text
        self._send_lock = asyncio.Lock()
        #: the banks last offered to the agent, by id
        self.offered: dict[UUID, protocol.BankSpec] = {}
        #: the banks the hub routes here (kept by the hub)
        self.serving: set[UUID] = set()
        self.closed = False
        self._revision = 0
        self._pending: dict[UUID, _Pending] = {}
        self._doors: asyncio.Queue[protocol.AgentMessage | None] = asyncio.Queue()
        from pigeonhole.domain import agents

        self.heartbeat_seconds = agents.heartbeat_seconds()
        self.offline_after = agents.offline_after()
        self.last_heard = time.monotonic()
        self._last_written = 0.0
        #: commands whose answer came over this link (a result or a report), not yet settled
        self._answered: set[UUID] = set()
        #: commands sent over this link: bank and doors, to take a late result's word
        self._sent: dict[UUID, tuple[UUID, list[int]]] = {}
        self.version = ""

    def heard_lately(self) -> bool:
        """Whether the agent spoke within ``offline_after``: a silent link serves no door."""
        return not self.closed and time.monotonic() - self.last_heard <= self.offline_after

    def ran(self, command_id: UUID) -> bool:
        """Whether the agent answered this command here: its record then holds the agent's word."""
        return command_id in self._answered

    async def settle(self, ids: list[UUID]) -> None:
        """Tell the agent these commands are recorded: it may stop reporting them."""
        self._answered.difference_update(ids)
        for command_id in ids:
            self._sent.pop(command_id, None)
        if self.closed or not ids:
            return
        try:
            await self._send(protocol.Settled(ids=list(ids)))
        except Exception as exc:  # the next connect reports them again; settling is idempotent
            log.info("%s: settled not delivered: %s", self, exc)

    @property
    def tenant_id(self) -> UUID:
        return self.caller.tenant.id

    @property
    def bank_filter(self) -> UUID | None:
        """The one bank the agent's key is bound to; None: every bank of the tenant."""
        return self.caller.actor.bank_id

    def __str__(self) -> str:
        return f"agent '{self.caller.actor.name}' of tenant {self.caller.tenant.slug}"

    async def _send(self, message: msgspec.Struct) -> None:
        async with self._send_lock:
            await self._send_text(protocol.text(message))

    async def offer(self) -> None:
        """Send the agent its banks (again), routing their commands here from now on."""
        banks = await banks_for(self.caller)
        if self.closed:
            return  # it closed while the banks were read: do not route to it again
        self._revision += 1
        self.offered = {bank.id: bank for bank in banks}
        self.hub.link_banks(self, set(self.offered))
        await self._send(
            protocol.Banks(
                revision=self._revision,
                tenant_id=self.tenant_id,
                tenant=self.caller.tenant.slug,
                banks=banks,
                heartbeat_seconds=self.heartbeat_seconds,
            )
        )

    async def execute(self, command: UnlockCommand, timeout: float) -> CommandResult:
        """Send the command once and wait, at most ``timeout`` seconds, for its result."""
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[command.id] = pending
        self._sent[command.id] = (command.bank_id, list(command.doors))
        while len(self._sent) > 10_000:
            self._sent.pop(next(iter(self._sent)))
        outcomes: dict[int, str] | None = None
        try:
            async with asyncio.timeout(timeout):
                await self._send(
                    protocol.Unlock(
                        id=command.id,
                        bank_id=command.bank_id,
                        doors=command.doors,
                        sequential=command.sequential,
                    )
                )
                outcomes = await pending.future
        except TimeoutError:
            log.warning("%s: no result for command %s in %.1fs", self, command.id, timeout)
        except Exception as exc:  # the socket went away under the send
            log.warning("%s: command %s not delivered: %s", self, command.id, exc)
        finally:
            self._pending.pop(command.id, None)
        if outcomes is None:
            outcomes = {door: UnlockOutcome.NO_ANSWER.value for door in command.doors}
        return CommandResult(
            bank_id=command.bank_id,
            id=command.id,
            acked_at=pending.acked_at,
            outcomes={door: outcomes.get(door, UnlockOutcome.NO_ANSWER.value) for door in command.doors},
            completed_at=pending.completed_at or clock.now(),
        )

    def receive(self, message: protocol.AgentMessage) -> None:
        self.last_heard = time.monotonic()
        if isinstance(message, protocol.Heartbeat):
            # One write per heartbeat interval at most, whatever the agent's pace.
            if self.last_heard - self._last_written >= self.heartbeat_seconds / 2:
                self._last_written = self.last_heard
                self._doors.put_nowait(message)
        elif isinstance(message, protocol.Outcomes):
            self._answered.update(k.id for k in message.commands)
            self._doors.put_nowait(message)
        elif isinstance(message, protocol.Ack):
            pending = self._pending.get(message.id)
            if pending is not None and pending.acked_at is None:
                pending.acked_at = clock.now()
        elif isinstance(message, protocol.Result):
            pending = self._pending.get(message.id)
            if pending is None or pending.future.done():
                # Its deadline passed: recorded as no_answer, and the door is not opened again;
                # the agent's word goes beside the record (reconciliation), as after a reconnect.
                log.warning("%s: late result for command %s: %s", self, message.id, message.outcomes)
                sent = self._sent.get(message.id)
                if sent is not None:
                    known = protocol.Known(
                        id=message.id, bank_id=sent[0], doors=sent[1], outcomes=message.outcomes
                    )
                    self._answered.add(message.id)
                    self._doors.put_nowait(protocol.Outcomes(commands=[known]))
                return
            self._answered.add(message.id)
            pending.completed_at = clock.now()
            pending.future.set_result({door: str(o) for door, o in message.outcomes.items()})
        elif isinstance(message, protocol.DoorChanged):
            if message.bank_id not in self.offered:
                log.warning("%s: door event for bank %s it does not serve ignored", self, message.bank_id)
                return
            self._doors.put_nowait(message)
        elif isinstance(message, protocol.Serving):
            self._serving(message)

    def _serving(self, message: protocol.Serving) -> None:
        if message.revision != self._revision:
            return  # the answer to banks sent before the latest; that one's answer follows
        for bank_id, reason in message.refused.items():
            name = self.offered[bank_id].name if bank_id in self.offered else bank_id
            log.warning("%s cannot serve bank %s: %s", self, name, reason)
        self.hub.link_banks(self, set(message.banks) & set(self.offered))
        self.version = message.agent
        self._doors.put_nowait(message)
        log.info(
            "%s (%s) serves %s",
            self,
            message.agent or "unknown version",
            ", ".join(self.offered[b].name for b in self.serving) or "no bank",
        )

    async def _forward_doors(self) -> None:
        """Door events, heartbeats and reports in the order the agent sent them, each in its own transaction."""
        while (event := await self._doors.get()) is not None:
            try:
                if isinstance(event, protocol.DoorChanged):
                    await self.hub.door_changed(self.tenant_id, event.bank_id, event.door, event.state)
                else:
                    await self._record(event)
            except Exception:
                log.exception("%s: %s not recorded", self, type(event).__name__)

    async def _record(self, event: protocol.AgentMessage) -> None:
        from pigeonhole.domain import agents
        from pigeonhole.domain.context import tenant_context

        key_id = self.caller.actor.key_id
        if isinstance(event, protocol.Outcomes):
            await self._reconcile(event)
            return
        if key_id is None:
            return
        async with tenant_context(self.caller.tenant, self.caller.actor) as ctx:
            if isinstance(event, protocol.Heartbeat):
                health = {str(b): {"ok": h.ok, "detail": h.detail} for b, h in event.health.items()}
                await agents.heard(ctx, key_id, health)
            elif isinstance(event, protocol.Serving):
                await agents.serving(ctx, key_id, list(self.serving), event.agent)

    async def _reconcile(self, report: protocol.Outcomes) -> None:
        """Settle what the agent reports, then what an earlier server left open that it never got."""
        from pigeonhole.domain import commands

        tenant = self.caller.tenant
        settled: list[UUID] = []
        for known in report.commands:
            if known.bank_id not in self.offered:
                log.warning("%s: report on command %s of a bank it does not serve ignored", self, known.id)
                continue
            outcomes = {d: str(o) for d, o in known.outcomes.items()} if known.outcomes is not None else None
            done = await commands.reconcile(tenant, known.id, outcomes, by="agent")
            log.info("%s: command %s: %s", self, known.id, done)
            if done.startswith("in flight"):
                # A late result overtook its own final step: take its word once that step landed.
                self._later(protocol.Outcomes(commands=[known]))
            else:
                settled.append(known.id)
        reported = {k.id for k in report.commands}
        for orphan in await commands.orphans(tenant, set(self.offered), self.hub.started_at):
            if orphan["id"] in reported:
                continue
            never = {d: UnlockOutcome.NO_ANSWER.value for d in msgspec.json.decode(orphan["doors"])}
            done = await commands.reconcile(tenant, orphan["id"], never, by="agent: never received")
            log.info("%s: command %s it never received: %s", self, orphan["id"], done)
        await self.settle(settled)

    def _later(self, report: protocol.Outcomes, delay: float = 0.5) -> None:
        if not self.closed:
            asyncio.get_running_loop().call_later(
                delay, lambda: None if self.closed else self._doors.put_nowait(report)
            )

    async def run(self, receive: Callable[[], Awaitable[str | bytes | None]]) -> None:
        """Serve the link until the socket closes; then its banks go offline."""
        forwarder = asyncio.create_task(self._forward_doors())
        await self._connected(True)
        try:
            await self.offer()
            while (data := await receive()) is not None:
                try:
                    message = protocol.agent_decoder.decode(data)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.warning("%s: message not understood, ignored: %s", self, exc)
                    continue
                self.receive(message)
        finally:
            self.closed = True
            self.hub.unlink(self)
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_result(None)
            self._doors.put_nowait(None)
            await forwarder
            await self._connected(False)

    async def _connected(self, up: bool) -> None:
        from pigeonhole.domain import agents
        from pigeonhole.domain.context import tenant_context

        key_id = self.caller.actor.key_id
        if key_id is None:
            return
        try:
            async with tenant_context(self.caller.tenant, self.caller.actor) as ctx:
                if up:
                    actor = self.caller.actor
                    await agents.connected(ctx, key_id, actor.name, actor.bank_id, self.version)
                elif not any(o is not self and o.caller.actor.key_id == key_id for o in self.hub.remote):
                    await agents.disconnected(ctx, key_id)  # unless it is connected again already
        except Exception:
            log.exception("%s: could not record the %s", self, "connection" if up else "disconnection")


async def banks_for(caller: Caller) -> list[protocol.BankSpec]:
    """The banks an agent key serves, with what a site needs to drive them."""
    from pigeonhole.db.tables import Bank, Compartment
    from pigeonhole.domain.context import tenant_context

    async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
        drivers = ctx.plugins.lock_drivers()
        banks = ctx.scope.select(Bank).order_by(Bank.name)
        doors = ctx.scope.select(Compartment.bank_id, Compartment.door).order_by(Compartment.door)
        if caller.actor.bank_id is not None:
            banks = banks.where(Bank.id == caller.actor.bank_id)
            doors = doors.where(Compartment.bank_id == caller.actor.bank_id)
        by_bank: dict[UUID, list[int]] = defaultdict(list)
        for row in await doors:
            by_bank[row["bank_id"]].append(row["door"])
        specs = []
        for bank in await banks:
            if bank["driver"] not in drivers:
                log.warning(
                    "bank %s uses driver %s, which its tenant has not enabled", bank["id"], bank["driver"]
                )
                continue
            specs.append(
                protocol.BankSpec(
                    id=bank["id"],
                    name=bank["name"],
                    driver=bank["driver"],
                    driver_config=msgspec.Raw(bank["driver_config"].encode()),
                    doors=by_bank[bank["id"]],
                )
            )
    return specs


async def _close(socket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with a code and reason: a refused handshake would only say 403."""
    await socket.accept()
    await socket.close(code, reason.encode()[:_REASON_BYTES].decode(errors="ignore"))


@websocket("/api/v1/t/{tenant:str}/agent", include_in_schema=False)
async def agent_socket(socket: WebSocket, tenant: FromPath[str]) -> None:
    """A site agent's link: API key of role ``agent`` as ``Authorization: Bearer <key>``."""
    try:
        caller = await authenticate(socket, tenant)
    except DomainError as exc:
        await _close(socket, WS_1008_POLICY_VIOLATION, exc.message)
        return
    except Exception:
        log.exception("agent for tenant %s not admitted", tenant)
        await _close(socket, WS_1011_INTERNAL_ERROR, "The server could not check the key; try again")
        return
    if caller.actor.role != "agent":
        await _close(
            socket,
            WS_1008_POLICY_VIOLATION,
            f"A key of role '{caller.actor.role}' cannot connect an agent: use a key of role 'agent'",
        )
        return
    await socket.accept()

    async def receive() -> str | bytes | None:
        event = await socket.receive()
        if event["type"] == "websocket.disconnect":
            return None
        return event.get("text") or event.get("bytes") or ""

    link = AgentLink(get_hub(), caller, socket.send_text)
    log.info("%s connected", link)
    try:
        await link.run(receive)
    finally:
        log.info("%s disconnected", link)
