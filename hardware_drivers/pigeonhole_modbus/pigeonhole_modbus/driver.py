"""The LockDriver for relay/IO boards on Modbus: one relay (coil) fires a lock, one input reads its door."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections import defaultdict
from collections.abc import Sequence

import msgspec
from pigeonhole.api import DoorListener, DoorState, DriverHealth, LockDriver, UnlockOutcome

from pigeonhole_modbus import bus as buses
from pigeonhole_modbus.bus import LinkError, Refused
from pigeonhole_modbus.config import DoorMap, ModbusConfig
from pigeonhole_modbus.pdu import OFF, ON

log = logging.getLogger(__name__)

#: Between two sensor reads while waiting for a door to open.
WATCH_STEP = 0.01


class ModbusDriver(LockDriver):
    name = "modbus"
    Config = ModbusConfig

    def __init__(self, config: msgspec.Struct | None, doors: Sequence[int], listener: DoorListener) -> None:
        config = config if isinstance(config, ModbusConfig) else ModbusConfig()
        super().__init__(config, doors, listener)
        self.config: ModbusConfig = config
        #: The line's bus, shared with the other banks on it; taken in start().
        self.bus: buses.ModbusBus | None = None
        wiring = config.mapping(self.doors)
        self.wiring = {door: wiring[door] for door in self.doors if door in wiring}
        self.unwired = [door for door in self.doors if door not in wiring]
        self.units = sorted({m.unit for m in self.wiring.values()})
        #: Units that refused a board-timed pulse: their pulses are timed here.
        self.host_timed: set[int] = set() if config.pulse == "board" else set(self.units)
        #: The last state seen of each door, to report changes nobody commanded.
        self.known: dict[int, DoorState] = {}
        #: Doors being unlocked: the poller leaves them to the unlock.
        self.busy: set[int] = set()
        self._poller: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        if self.unwired:
            log.error("modbus bank: doors %s have no coil in the configuration", _doors(self.unwired))
        self.bus = buses.acquire(self.config)
        if not self.bus.connected:
            await self.bus.connect()
        for unit in self.units:
            await self._all_off(unit)
        states = await self._read(self.wiring.values())
        self.known = {door: state for door, state in states.items() if state is not DoorState.UNKNOWN}
        if self.config.poll_ms:
            # A fresh context: the agent may start drivers inside a database transaction,
            # whose context variables the poller (and the listener it calls) must not inherit.
            self._poller = asyncio.get_running_loop().create_task(self._poll(), context=contextvars.Context())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self.bus is not None:
            buses.release(self.bus)
            self.bus = None

    async def _all_off(self, unit: int) -> None:
        """Every relay off: a lock left powered by a crash must not stay open."""
        retries = self.config.read_retries
        try:
            if self.config.all_relays_coil is not None:
                try:
                    await self.bus.write_coil(unit, self.config.all_relays_coil, OFF, retries=retries)
                    return
                except Refused:
                    pass  # no all-relays coil on this board: one by one
            for m in self.wiring.values():
                if m.unit == unit:
                    await self.bus.write_coil(unit, m.coil, OFF, retries=retries)
        except (LinkError, Refused) as exc:
            log.warning("modbus unit %s: could not switch the relays off at start: %s", unit, exc)

    # -- commands -----------------------------------------------------------

    async def unlock(self, door: int) -> UnlockOutcome:
        return (await self._unlock({door}))[door]

    async def unlock_many(self, doors: Sequence[int], *, sequential: bool = True) -> dict[int, UnlockOutcome]:
        if sequential or len(doors) < 2:
            return {door: await self.unlock(door) for door in doors}
        return await self._unlock(set(doors))

    async def _unlock(self, doors: set[int]) -> dict[int, UnlockOutcome]:
        """Fire every lock of ``doors`` back to back, then watch their sensors."""
        outcomes: dict[int, UnlockOutcome] = {}
        for door in doors - self.wiring.keys():
            log.error("modbus bank: door %s has no coil in the configuration", door)
            outcomes[door] = UnlockOutcome.NO_ANSWER
        wired = [self.wiring[d] for d in sorted(doors) if d in self.wiring]
        self.busy.update(m.door for m in wired)
        try:
            before = await self._read(wired)
            to_fire: list[DoorMap] = []
            for m in wired:
                if before[m.door] is DoorState.UNKNOWN:
                    outcomes[m.door] = UnlockOutcome.NO_ANSWER  # nothing fired: the bus is not answering
                elif before[m.door] is DoorState.OPEN and not self.config.fire_when_open:
                    outcomes[m.door] = UnlockOutcome.ALREADY_OPEN
                    self.known[m.door] = DoorState.OPEN
                else:
                    to_fire.append(m)
            started = time.monotonic()
            host_timed: list[DoorMap] = []
            fired: list[DoorMap] = []
            pulse_end = started
            unconfirmed: set[int] = set()
            for m in to_fire:
                result = await self._fire(m)
                fired.append(m)
                if result is None:
                    # Unknown whether it fired: never fired again, but the sensor may still
                    # prove the door opened.
                    unconfirmed.add(m.door)
                elif result == "host":
                    host_timed.append(m)
                    # On for the whole pulse from the moment the board confirmed it.
                    pulse_end = time.monotonic() + self.config.pulse_ms / 1000
            give_up = started + self.config.open_timeout_ms / 1000
            seen = await self._watch(fired, until=pulse_end if host_timed else give_up)
            if host_timed:
                await asyncio.sleep(max(0.0, pulse_end - time.monotonic()))
                for m in host_timed:
                    await self._relay_off(m)
                still_shut = [m for m in fired if seen[m.door] is not DoorState.OPEN]
                if still_shut:
                    later = await self._watch(still_shut, until=give_up)
                    seen.update({d: s for d, s in later.items() if s is not DoorState.UNKNOWN})
            for m in fired:
                state = seen[m.door]
                if before[m.door] is DoorState.OPEN:
                    outcomes[m.door] = UnlockOutcome.ALREADY_OPEN
                elif state is DoorState.OPEN:
                    outcomes[m.door] = UnlockOutcome.OPENED
                elif state is DoorState.CLOSED and m.door not in unconfirmed:
                    outcomes[m.door] = UnlockOutcome.JAMMED
                else:
                    outcomes[m.door] = UnlockOutcome.NO_ANSWER
                if state is not DoorState.UNKNOWN:
                    self.known[m.door] = state
        finally:
            self.busy.difference_update(m.door for m in wired)
        return {door: outcomes[door] for door in sorted(doors)}

    async def _fire(self, m: DoorMap) -> str | None:
        """Start the lock's pulse: ``board`` or ``host`` (who times it), None when the outcome is unknown."""
        if m.unit not in self.host_timed:
            tenths = max(1, math.ceil(self.config.pulse_ms / 100))
            try:
                await self.bus.write_coil(m.unit, self.config.pulse_base + m.coil, tenths, retries=0)
                return "board"
            except Refused:
                log.warning("modbus unit %s refuses board-timed pulses: timing them here", m.unit)
                self.host_timed.add(m.unit)
            except LinkError as exc:
                log.warning("modbus door %s: pulse not confirmed, not repeated: %s", m.door, exc)
                return None
        try:
            await self.bus.write_coil(m.unit, m.coil, ON, retries=0)
            return "host"
        except (LinkError, Refused) as exc:
            log.warning("modbus door %s: relay on not confirmed, not repeated: %s", m.door, exc)
            await self._relay_off(m)  # whatever happened, do not leave it on
            return None

    async def _relay_off(self, m: DoorMap) -> None:
        try:
            await self.bus.write_coil(m.unit, m.coil, OFF, retries=self.config.read_retries)
        except (LinkError, Refused) as exc:
            log.error("modbus door %s: relay may still be on: %s", m.door, exc)

    async def _watch(self, doors: list[DoorMap], *, until: float) -> dict[int, DoorState]:
        """Read the sensors until every door reads open or ``until`` passed; the last reading of each."""
        seen = {m.door: DoorState.UNKNOWN for m in doors}
        waiting = list(doors)
        while waiting:
            states = await self._read(waiting)
            seen.update({door: s for door, s in states.items() if s is not DoorState.UNKNOWN})
            waiting = [m for m in waiting if states[m.door] is not DoorState.OPEN]
            if not waiting or time.monotonic() >= until:
                break
            await asyncio.sleep(WATCH_STEP)
        return seen

    # -- sensors ------------------------------------------------------------

    async def door_states(self) -> dict[int, DoorState]:
        states = await self._read(self.wiring.values())
        return {door: states.get(door, DoorState.UNKNOWN) for door in self.doors}

    async def _read(self, doors) -> dict[int, DoorState]:
        """One FC02 per unit over the span of its sensors; UNKNOWN for a unit that does not answer."""
        by_unit: dict[int, list[DoorMap]] = defaultdict(list)
        for m in doors:
            by_unit[m.unit].append(m)
        open_level = self.config.open_when == "set"
        result: dict[int, DoorState] = {}
        for unit, maps in sorted(by_unit.items()):
            low = min(m.sensor for m in maps)
            high = max(m.sensor for m in maps)
            try:
                bits = await self.bus.read_inputs(unit, low, high - low + 1)
            except (LinkError, Refused) as exc:
                log.debug("modbus unit %s: sensors unread: %s", unit, exc)
                result.update({m.door: DoorState.UNKNOWN for m in maps})
                continue
            for m in maps:
                is_open = bits[m.sensor - low] == open_level
                result[m.door] = DoorState.OPEN if is_open else DoorState.CLOSED
        return result

    async def _poll(self) -> None:
        interval = self.config.poll_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.poll_once()
            except Exception:  # a poller that dies silently would hide every forced door
                log.exception("modbus bank: sensor polling failed")

    async def poll_once(self) -> None:
        """Read every sensor and report the doors that changed since last seen."""
        states = await self._read(self.wiring.values())
        for door, state in states.items():
            if state is DoorState.UNKNOWN or door in self.busy:
                continue
            previous = self.known.get(door)
            self.known[door] = state
            if previous is not None and previous is not state:
                await self.listener.door_changed(door, state)

    async def health(self) -> DriverHealth:
        if self.bus is None:
            return DriverHealth(ok=False, detail="modbus driver not started")
        problems: list[str] = []
        if self.unwired:
            problems.append(f"doors {_doors(self.unwired)} have no coil in the configuration")
        for unit in self.units:
            sensors = [m.sensor for m in self.wiring.values() if m.unit == unit]
            try:
                await self.bus.read_inputs(unit, min(sensors), 1)
            except (LinkError, Refused) as exc:
                problems.append(f"unit {unit}: {exc}")
        where = (
            f"modbus {self.bus.where}, {len(self.wiring)} doors on unit(s) {', '.join(map(str, self.units))}"
        )
        if problems:
            return DriverHealth(ok=False, detail=f"{where}; " + "; ".join(problems))
        timing = "host-timed" if self.host_timed else "board-timed"
        return DriverHealth(ok=True, detail=f"{where}; {timing} pulses of {self.config.pulse_ms} ms")


def _doors(doors: list[int]) -> str:
    return ", ".join(map(str, doors))
