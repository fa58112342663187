"""The agent: runs at the site, holds one driver per bank, executes door commands.

In the embedded default it runs inside the server process and the hub calls it
directly; ``pigeonhole agent`` runs the same class at a site. It keeps the
outcome of every command it executed, so a command delivered twice never
fires a lock twice; at a site it also keeps them on disk (journal.py), so a
restarted agent does not fire a command its previous life had started.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from pigeonhole.api import DoorState, LockDriver, UnlockOutcome
from pigeonhole.edge.journal import Journal
from pigeonhole.edge.messages import CommandResult, UnlockCommand

log = logging.getLogger(__name__)

DoorReport = Callable[[UUID, UUID, int, DoorState], Awaitable[None]]


class BankListener:
    """Forwards a driver's unsolicited door changes to the server."""

    def __init__(self, tenant_id: UUID, bank_id: UUID, report: DoorReport) -> None:
        self.tenant_id = tenant_id
        self.bank_id = bank_id
        self._report = report

    async def door_changed(self, door: int, state: DoorState) -> None:
        await self._report(self.tenant_id, self.bank_id, door, DoorState(state))


class _BankDriver:
    def __init__(self, driver: LockDriver, key: bytes) -> None:
        self.driver = driver
        self.key = key
        self.lock = asyncio.Lock()  # one transaction at a time on a bus


class Agent:
    def __init__(
        self, report: DoorReport, *, remembered: int = 10_000, journal: Journal | None = None
    ) -> None:
        self._report = report
        self.journal = journal
        self._banks: dict[UUID, _BankDriver] = {}
        self._results: OrderedDict[UUID, CommandResult] = OrderedDict()
        self._in_flight: dict[UUID, asyncio.Future] = {}
        self._remembered = remembered

    def knows(self, bank_id: UUID) -> bool:
        return bank_id in self._banks

    def has_bank(self, bank_id: UUID, key: bytes) -> bool:
        bank = self._banks.get(bank_id)
        return bank is not None and bank.key == key

    def bank_ids(self) -> list[UUID]:
        return list(self._banks)

    async def drop_bank(self, bank_id: UUID) -> None:
        """Stop driving a bank the server no longer gives this agent."""
        bank = self._banks.pop(bank_id, None)
        if bank is None:
            return
        try:
            await bank.driver.stop()
        except Exception:
            log.exception("driver of bank %s did not stop cleanly", bank_id)

    async def configure_bank(
        self,
        tenant_id: UUID,
        bank_id: UUID,
        driver_cls: type[LockDriver],
        config: msgspec.Struct,
        doors: list[int],
    ) -> None:
        """(Re)build the bank's driver when its driver or configuration changed."""
        key = msgspec.json.encode([driver_cls.name, config, sorted(doors)])
        if self.has_bank(bank_id, key):
            return
        old = self._banks.pop(bank_id, None)
        if old is not None:
            await old.driver.stop()
        driver = driver_cls(config, doors, BankListener(tenant_id, bank_id, self._report))
        await driver.start()
        self._banks[bank_id] = _BankDriver(driver, key)

    async def execute(self, command: UnlockCommand) -> CommandResult:
        done = self._results.get(command.id)
        if done is not None:
            return done
        pending = self._in_flight.get(command.id)
        if pending is not None:
            return await asyncio.shield(pending)
        if self.journal is not None:
            entry = self.journal.get(command.id)
            if entry is not None:
                # Started in an earlier life: done, or cut short with an unknown outcome.
                # Either way the lock is not fired again.
                now = datetime.now(UTC)
                outcomes = entry.outcomes or {d: UnlockOutcome.NO_ANSWER.value for d in command.doors}
                return CommandResult(
                    id=command.id, acked_at=now, outcomes=outcomes, completed_at=now, bank_id=command.bank_id
                )
        future = asyncio.get_running_loop().create_future()
        self._in_flight[command.id] = future
        try:
            if self.journal is not None and command.bank_id in self._banks:
                self.journal.started(command.id, command.bank_id, command.doors)
            result = await self._run(command)
            if self.journal is not None and self.journal.get(command.id) is not None:
                self.journal.finished(command.id, result.outcomes)
            future.set_result(result)
            self._remember(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            self._in_flight.pop(command.id, None)

    async def _run(self, command: UnlockCommand) -> CommandResult:
        bank = self._banks.get(command.bank_id)
        acked = datetime.now(UTC)
        if bank is None:
            outcomes = {door: UnlockOutcome.NO_ANSWER.value for door in command.doors}
            return CommandResult(
                id=command.id, acked_at=acked, outcomes=outcomes, completed_at=acked, bank_id=command.bank_id
            )
        async with bank.lock:
            try:
                if len(command.doors) == 1:
                    door = command.doors[0]
                    results = {door: await bank.driver.unlock(door)}
                else:
                    results = await bank.driver.unlock_many(command.doors, sequential=command.sequential)
            except Exception:
                log.exception("driver failed on command %s", command.id)
                results = {door: UnlockOutcome.NO_ANSWER for door in command.doors}
        return CommandResult(
            bank_id=command.bank_id,
            id=command.id,
            acked_at=acked,
            outcomes={d: UnlockOutcome(o).value for d, o in results.items()},
            completed_at=datetime.now(UTC),
        )

    def _remember(self, result: CommandResult) -> None:
        self._results[result.id] = result
        while len(self._results) > self._remembered:
            self._results.popitem(last=False)

    async def health(self) -> dict[UUID, tuple[bool, str]]:
        """Each bank's driver health, for the heartbeat; a driver that fails to say is not ok."""
        out: dict[UUID, tuple[bool, str]] = {}
        for bank_id, bank in list(self._banks.items()):
            try:
                health = await asyncio.wait_for(bank.driver.health(), timeout=2.0)
                out[bank_id] = (bool(health.ok), health.detail)
            except Exception as exc:
                out[bank_id] = (False, f"health check failed: {exc!r}")
        return out

    async def door_states(self, bank_id: UUID) -> dict[int, DoorState]:
        bank = self._banks.get(bank_id)
        if bank is None:
            return {}
        async with bank.lock:
            return await bank.driver.door_states()

    async def stop(self) -> None:
        for bank in self._banks.values():
            try:
                await bank.driver.stop()
            except Exception:
                log.exception("driver did not stop cleanly")
        self._banks.clear()
