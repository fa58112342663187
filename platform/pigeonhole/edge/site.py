"""``pigeonhole agent``: the lock agent at a site, linked to the server over a WebSocket.

The site needs no database and no secret key: only the server's URL, the
tenant and an API key of role ``agent``. The server says which banks to
drive; the drivers come from the plugins installed here. When the link
drops the drivers keep running (the doors are still there), door changes
wait in a bounded buffer, and the agent reconnects with a capped, jittered
exponential backoff, so a server restart costs the site a few seconds and
a hundred sites do not all knock at the same instant.

Every command is written to a journal on disk before its lock fires (see
journal.py); on each connect the agent reports what the server has not yet
settled, so a result lost with a link or a crash still reaches the server,
and a command cut short by a crash is reported as unknown, never fired again.
The agent sends a heartbeat every few seconds; the server shows it online
while they arrive.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import UUID

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pigeonhole import __version__
from pigeonhole.api import DoorState, LockDriver, UnlockOutcome
from pigeonhole.edge import protocol
from pigeonhole.edge.agent import Agent
from pigeonhole.edge.journal import Journal
from pigeonhole.edge.messages import UnlockCommand

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
#: door changes kept while the link is down; the oldest go first
BUFFERED_DOOR_EVENTS = 1000
#: how long a stopping agent lets commands in flight finish and report
STOP_GRACE_SECONDS = 5.0


class Refused(Exception):
    """The server refused the agent's credentials: retrying cannot help."""


class Backoff:
    """Exponential delays, capped, each drawn between half and all of its step."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, rand: Callable[[], float] = random.random):
        self.first = first
        self.cap = max(cap, first)
        self._rand = rand
        self._attempt = 0

    def next(self) -> float:
        step = min(self.cap, self.first * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return step / 2 + self._rand() * step / 2

    def reset(self) -> None:
        self._attempt = 0


def endpoint(url: str, tenant: str) -> str:
    """The agent endpoint under the server's base URL: http(s) becomes ws(s)."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"the server URL must look like http://host:port or https://host (got '{url}')")
    path = parts.path.rstrip("/") + f"/api/v1/t/{quote(tenant, safe='')}/agent"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def installed_drivers() -> dict[str, type[LockDriver]]:
    """The lock drivers of the plugins installed where the agent runs."""
    from pigeonhole.runtime import registry

    drivers: dict[str, type[LockDriver]] = {}
    for contributed in registry.platform_pm().hook.pigeonhole_lock_drivers():
        for cls in contributed or ():
            drivers.setdefault(cls.name, cls)
    return drivers


class SiteAgent:
    def __init__(
        self,
        url: str,
        tenant: str,
        key: str,
        *,
        drivers: dict[str, type[LockDriver]],
        backoff: Backoff,
        echo: Callable[[str], None] = print,
        journal: Journal | None = None,
    ) -> None:
        self.url = url
        self.endpoint = endpoint(url, tenant)
        self.tenant = tenant
        self._key = key
        self.drivers = drivers
        self.backoff = backoff
        self.echo = echo
        self.journal = journal
        self.agent = Agent(report=self._door_changed, journal=journal)
        self.heartbeat_seconds = 10.0
        self._ws: ClientConnection | None = None
        self._interval_known = asyncio.Event()
        self._tenant_id: UUID | None = None
        self._stop = asyncio.Event()
        self._outbox: deque[protocol.DoorChanged] = deque()
        self._outbox_ready = asyncio.Event()
        self._commands: set[asyncio.Task] = set()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Connect, serve, reconnect, until stopped; raises Refused if the server refuses the key."""
        reported_down = False
        try:
            while not self._stop.is_set():
                try:
                    why = await self._connect_and_serve()
                except (OSError, TimeoutError, InvalidHandshake) as exc:
                    why = _describe_failure(exc)
                    if not reported_down:
                        self.echo(f"cannot reach {self.url}: {why}; retrying")
                        reported_down = True
                    else:
                        log.info("cannot reach %s: %s", self.url, why)
                else:
                    if why is None:  # stopped
                        break
                    self.echo(f"lost the link to {self.url}: {why}; reconnecting")
                    reported_down = True
                await self._sleep(self.backoff.next())
        finally:
            await self._finish_commands()
            await self.agent.stop()
            if self.journal is not None:
                self.journal.close()
        self.echo("agent stopped")

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _connect_and_serve(self) -> str | None:
        """One link's life; returns why it ended, None when the agent was stopped."""
        opening = asyncio.ensure_future(
            connect(
                self.endpoint,
                additional_headers={"Authorization": f"Bearer {self._key}"},
                user_agent_header=f"pigeonhole-agent/{__version__}",
                open_timeout=10,
                max_size=2**22,
                # Frames here are a few hundred bytes: permessage-deflate saves nothing on
                # them and costs a compressor pass on both ends of every command.
                compression=None,
            )
        )
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not opening.done():
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            return None
        ws: ClientConnection = opening.result()
        async with ws:
            return await self._serve(ws)

    async def _serve(self, ws: ClientConnection) -> str | None:
        self._ws = ws
        self._interval_known = asyncio.Event()  # the server says how often to beat, with the banks
        receiving = asyncio.create_task(self._receive(ws))
        sending = asyncio.create_task(self._send_door_events(ws))
        beating = asyncio.create_task(self._heartbeats(ws))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                await self._finish_commands()
                await ws.close(1001, "agent stopping")
                return None
        finally:
            for task in (receiving, sending, beating, stopping):
                task.cancel()
            await asyncio.gather(receiving, sending, beating, stopping, return_exceptions=True)
        if ws.close_code == POLICY_VIOLATION:
            raise Refused(ws.close_reason or "policy violation")
        error = receiving.exception()
        if error is not None and not isinstance(error, ConnectionClosed):
            log.error("the link failed", exc_info=error)
            return f"the agent failed: {error!r}"
        return _describe_close(ws.close_code, ws.close_reason)

    async def _receive(self, ws: ClientConnection) -> None:
        first = True
        async for raw in ws:
            try:
                message = protocol.server_decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.warning("message not understood, ignored: %s", exc)
                continue
            if isinstance(message, protocol.Banks):
                self.heartbeat_seconds = max(0.05, message.heartbeat_seconds)
                self._interval_known.set()
                await self._configure(ws, message, first)
                if first:
                    self.backoff.reset()  # a link that got its banks counts as up
                    await self._report_unsettled(ws)
                first = False
            elif isinstance(message, protocol.Unlock):
                await self._accept(ws, message)
            elif isinstance(message, protocol.Settled) and self.journal is not None:
                self.journal.settle(message.ids)

    async def _report_unsettled(self, ws: ClientConnection) -> None:
        """What the server may not know: results lost with a link, commands cut short by a crash."""
        if self.journal is None:
            return  # nothing kept, nothing to say: the server cannot assume anything either
        running = set(self.agent._in_flight)
        known = [
            protocol.Known(
                id=e.id,
                bank_id=e.bank_id,
                doors=e.doors,
                outcomes={int(d): UnlockOutcome(o) for d, o in e.outcomes.items()}
                if e.outcomes is not None
                else None,
            )
            for e in self.journal.unsettled(except_ids=running)
        ]
        if known:
            unknown = sum(1 for k in known if k.outcomes is None)
            self.echo(
                f"reporting {len(known)} command(s) the server has not settled"
                + (f" ({unknown} with an unknown outcome)" if unknown else "")
            )
        await ws.send(protocol.text(protocol.Outcomes(commands=known)))

    async def _heartbeats(self, ws: ClientConnection) -> None:
        await self._interval_known.wait()
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            health = {
                bank_id: protocol.BankHealth(ok=ok, detail=detail)
                for bank_id, (ok, detail) in (await self.agent.health()).items()
            }
            await ws.send(protocol.text(protocol.Heartbeat(health=health)))

    async def _configure(self, ws: ClientConnection, message: protocol.Banks, first: bool) -> None:
        """Drive exactly the banks the server gave; say which could not be started."""
        self._tenant_id = message.tenant_id
        wanted = {bank.id for bank in message.banks}
        for bank_id in self.agent.bank_ids():
            if bank_id not in wanted:
                await self.agent.drop_bank(bank_id)
        served: list[protocol.BankSpec] = []
        refused: dict[UUID, str] = {}
        for bank in message.banks:
            reason = await self._configure_bank(message.tenant_id, bank)
            if reason is None:
                served.append(bank)
            else:
                refused[bank.id] = reason
                await self.agent.drop_bank(bank.id)
        await ws.send(
            protocol.text(
                protocol.Serving(
                    revision=message.revision,
                    banks=[bank.id for bank in served],
                    refused=refused,
                    agent=f"pigeonhole-agent {__version__}",
                )
            )
        )
        listing = ", ".join(f"{b.name} ({b.driver}, {len(b.doors)} doors)" for b in served) or "none"
        if first:
            self.echo(
                f"connected to {self.url} for tenant {message.tenant}: "
                f"serving {len(served)} bank(s): {listing}"
            )
        else:
            self.echo(f"banks changed: serving {len(served)} bank(s): {listing}")
        for bank in message.banks:
            if bank.id in refused:
                self.echo(f"cannot serve bank {bank.name}: {refused[bank.id]}")
        self._outbox_ready.set()

    async def _configure_bank(self, tenant_id: UUID, bank: protocol.BankSpec) -> str | None:
        driver_cls = self.drivers.get(bank.driver)
        if driver_cls is None:
            installed = ", ".join(sorted(self.drivers)) or "none"
            return f"lock driver '{bank.driver}' is not installed here (installed: {installed})"
        try:
            config = msgspec.json.decode(bank.driver_config, type=driver_cls.Config)
            await self.agent.configure_bank(tenant_id, bank.id, driver_cls, config, bank.doors)
        except Exception as exc:
            log.exception("could not start the driver of bank %s", bank.name)
            return f"driver '{bank.driver}' did not start: {exc}"
        return None

    async def _accept(self, ws: ClientConnection, message: protocol.Unlock) -> None:
        """Ack at once, then execute beside the receive loop: a slow board must not hold the link."""
        if self._tenant_id is None or not self.agent.knows(message.bank_id):
            # No driver here took it: an answer without an ack.
            outcomes = {door: UnlockOutcome.NO_ANSWER for door in message.doors}
            await ws.send(protocol.text(protocol.Result(id=message.id, outcomes=outcomes)))
            return
        await ws.send(protocol.text(protocol.Ack(id=message.id)))
        command = UnlockCommand(
            id=message.id,
            tenant_id=self._tenant_id,
            bank_id=message.bank_id,
            doors=message.doors,
            sequential=message.sequential,
        )
        task = asyncio.create_task(self._execute(ws, command))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _execute(self, ws: ClientConnection, command: UnlockCommand) -> None:
        result = await self.agent.execute(command)
        outcomes = {door: UnlockOutcome(o) for door, o in result.outcomes.items()}
        try:
            await ws.send(protocol.text(protocol.Result(id=command.id, outcomes=outcomes)))
            return
        except ConnectionClosed:
            # The server has already recorded no_answer; the outcome stays in the journal.
            log.warning("result of command %s lost with the link: %s", command.id, result.outcomes)
        current = self._ws
        if current is not None and current is not ws and self.journal is not None:
            # A newer link is up already: report it there rather than at the next connect.
            known = protocol.Known(
                id=command.id, bank_id=command.bank_id, doors=command.doors, outcomes=outcomes
            )
            try:
                await current.send(protocol.text(protocol.Outcomes(commands=[known])))
            except ConnectionClosed:
                pass

    async def _finish_commands(self) -> None:
        if self._commands:
            await asyncio.wait(set(self._commands), timeout=STOP_GRACE_SECONDS)

    async def _door_changed(self, tenant_id: UUID, bank_id: UUID, door: int, state: DoorState) -> None:
        if len(self._outbox) >= BUFFERED_DOOR_EVENTS:
            dropped = self._outbox.popleft()
            log.warning("door event buffer full: dropped %s", dropped)
        self._outbox.append(protocol.DoorChanged(bank_id=bank_id, door=door, state=state))
        self._outbox_ready.set()

    async def _send_door_events(self, ws: ClientConnection) -> None:
        """Door changes in the order seen; one that could not be sent waits for the next link."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                event = self._outbox.popleft()
                try:
                    await ws.send(protocol.text(event))
                except ConnectionClosed:
                    self._outbox.appendleft(event)
                    return


_CLOSES = {1001: "the server is going away", 1011: "the server failed", 1012: "the server is restarting"}


def _describe_close(code: int | None, reason: str | None) -> str:
    if code in (None, 1006):  # no close frame: the network or the server process died
        return "the connection dropped"
    said = f"{code}: {reason}" if reason else str(code)
    return f"{_CLOSES.get(code, 'the server closed it')} ({said})"


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__


async def run_agent(
    url: str,
    tenant: str,
    key: str,
    *,
    max_backoff: float = 30.0,
    echo: Callable[[str], None] = print,
    journal_path: Path | None = None,
) -> None:
    """The ``pigeonhole agent`` process: until SIGTERM or SIGINT."""
    site = SiteAgent(
        url,
        tenant,
        key,
        drivers=installed_drivers(),
        backoff=Backoff(cap=max_backoff),
        echo=echo,
        journal=Journal(journal_path) if journal_path is not None else None,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, site.stop)
    await site.run()
