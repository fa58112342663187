"""The server's end of a site agent's WebSocket, and the link the hub sends commands through.

A site agent connects to ``/api/v1/t/{tenant}/agent`` with an API key of role
``agent``. The key decides what it serves: the one bank it is bound to, or
every bank of its tenant. The link is registered with the hub before the
banks are sent, so once the agent has them a deposit can open their doors.

The deadline, the "never resend" rule and the split between acknowledged
and done are the hub's, as for the embedded agent: a command is sent once;
no result by the deadline, or a link that closes first, is ``no_answer``.
"""

from __future__ import annotations

import asyncio
import logging
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
        self._doors: asyncio.Queue[protocol.DoorChanged | None] = asyncio.Queue()

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
            )
        )

    async def execute(self, command: UnlockCommand, timeout: float) -> CommandResult:
        """Send the command once and wait, at most ``timeout`` seconds, for its result."""
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[command.id] = pending
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
            id=command.id,
            acked_at=pending.acked_at,
            outcomes={door: outcomes.get(door, UnlockOutcome.NO_ANSWER.value) for door in command.doors},
            completed_at=pending.completed_at or clock.now(),
        )

    def receive(self, message: protocol.AgentMessage) -> None:
        if isinstance(message, protocol.Ack):
            pending = self._pending.get(message.id)
            if pending is not None and pending.acked_at is None:
                pending.acked_at = clock.now()
        elif isinstance(message, protocol.Result):
            pending = self._pending.get(message.id)
            if pending is None or pending.future.done():
                # Its deadline passed: recorded as no_answer, and the door is not opened again.
                log.warning("%s: late result for command %s ignored: %s", self, message.id, message.outcomes)
                return
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
        log.info(
            "%s (%s) serves %s",
            self,
            message.agent or "unknown version",
            ", ".join(self.offered[b].name for b in self.serving) or "no bank",
        )

    async def _forward_doors(self) -> None:
        """Door events in the order the agent sent them, each in its own transaction."""
        while (event := await self._doors.get()) is not None:
            try:
                await self.hub.door_changed(self.tenant_id, event.bank_id, event.door, event.state)
            except Exception:
                pass  # the hub logged it; the next event still counts

    async def run(self, receive: Callable[[], Awaitable[str | bytes | None]]) -> None:
        """Serve the link until the socket closes; then its banks go offline."""
        forwarder = asyncio.create_task(self._forward_doors())
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
