"""What every lock-board driver does the same way, so a new board is only its frames.

A board driver answers three questions in its protocol: how to read the raw
hook-switch bits of one board (:meth:`BoardDriver.read_board`), how to fire
one lock (:meth:`BoardDriver.fire`) and, if the board can, how to fire all of
its locks at once (:meth:`BoardDriver.fire_board`). :class:`BoardDriver` does
the rest, identically for every board:

- the door map (door number -> board, lock) and the hook-switch polarity;
- unlock = read the sensor, fire once, let the door settle, read again, and
  report what the sensor saw. The unlock frame is never repeated; status
  reads are retried, because a read changes nothing;
- several doors one after the other, or all fired back to back with one
  settle and one read per board;
- polling the sensors and telling the listener about doors that moved
  without a command (forced open, closed by a person);
- health, and reopening the link when it comes back (through the
  :class:`~pigeonhole.hardware.bus.Bus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Sequence
from typing import Annotated, ClassVar, NamedTuple

import msgspec

from pigeonhole.api import DoorListener, DoorState, DriverHealth, LockDriver, UnlockOutcome
from pigeonhole.hardware.bus import Bus, BusError, release_bus, shared_bus
from pigeonhole.hardware.timing import char_gap
from pigeonhole.hardware.transport import SerialTransport, TcpTransport, Transport

__all__ = ["BoardConfig", "BoardDriver", "Fired"]

log = logging.getLogger(__name__)

Millis = Annotated[int, msgspec.Meta(ge=0, le=60_000)]


class Fired(NamedTuple):
    """What a board said to one unlock frame."""

    #: The board acknowledged (or, for boards that never answer an unlock, it was sent).
    acked: bool
    #: The raw sensor bit the board reported after its pulse, if it reports one.
    sensor: bool | None = None


class BoardConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Per-bank settings every serial lock board shares; a driver's Config subclasses it.

    Give exactly one of ``port`` (a serial device) and ``host`` (a TCP bridge).
    """

    #: Serial device of the RS485 adapter, e.g. ``/dev/ttyUSB0`` or a ``/dev/serial/by-id/`` path.
    port: str | None = None
    #: Host of a serial-to-Ethernet bridge carrying the same frames.
    host: str | None = None
    tcp_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 4001
    baudrate: Annotated[int, msgspec.Meta(ge=1200, le=115200)] = 9600
    #: Board addresses on the chain, in the order their locks are numbered as doors.
    boards: tuple[int, ...] = (0,)
    #: Door number -> [board, lock] (locks numbered from 1), for doors that do not follow
    #: the default: door 1 is lock 1 of the first board, and so on through every board.
    door_map: dict[int, tuple[int, int]] = {}
    #: How the hook switches are wired: true when a set bit means the door is open.
    open_when_set: bool = True
    #: Fire the lock even when its sensor already reads open (sensors and cables fail).
    fire_when_open: bool = False
    #: Wait this long after a pulse before reading whether the door opened.
    settle_ms: Millis = 300
    #: How long to wait for a status reply.
    reply_timeout_ms: Millis = 500
    #: Status reads are repeated this many times when the reply is missing or bad.
    read_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    #: Read every sensor this often to report doors that move without a command; 0: never.
    poll_interval_ms: Millis = 500
    #: At most one attempt to reopen a lost link per this interval.
    reconnect_ms: Millis = 1000

    #: The model's facts, set by each driver's Config subclass: locks on one board and
    #: the board addresses it accepts.
    locks_per_board: ClassVar[int] = 8
    board_addresses: ClassVar[range] = range(0, 256)

    def __post_init__(self) -> None:
        if (self.port is None) == (self.host is None):
            raise ValueError("give exactly one of `port` (serial device) and `host` (TCP bridge)")
        if not self.boards:
            raise ValueError("`boards` needs at least one board address")
        if len(set(self.boards)) != len(self.boards):
            raise ValueError(f"`boards` lists an address twice: {list(self.boards)}")
        first, last = self.board_addresses.start, self.board_addresses.stop - 1
        for board in self.boards:
            if board not in self.board_addresses:
                raise ValueError(f"board address {board} is outside {first}..{last}")
        for door, (board, lock) in self.door_map.items():
            if board not in self.boards:
                raise ValueError(
                    f"door {door} maps to board {board}, which is not in `boards` {list(self.boards)}"
                )
            if not 1 <= lock <= self.locks_per_board:
                raise ValueError(f"door {door} maps to lock {lock}: locks are 1..{self.locks_per_board}")


class BoardDriver(LockDriver):
    """Base of the drivers of addressable lock boards on a serial chain or TCP bridge."""

    Config: ClassVar[type[BoardConfig]] = BoardConfig
    #: Quiet the protocol needs between transactions, in seconds.
    gap: ClassVar[float] = 0.0
    #: The same in character times at the configured baud rate (the longer of the two applies):
    #: for a margin that must scale with the line's speed.
    gap_chars: ClassVar[float] = 0.0
    #: Quiet that ends a reply of unknown length, in seconds; None: replies have known lengths.
    silence: ClassVar[float | None] = None

    def __init__(self, config: BoardConfig, doors: Sequence[int], listener: DoorListener) -> None:
        super().__init__(config, doors, listener)
        self.door_map = self._map_doors(config)
        self.bus: Bus | None = None
        self._bus_key = ""
        self._op = asyncio.Lock()
        self._known: dict[int, DoorState] = {}
        #: board -> (loop time of the last read, why it failed or "")
        self._answered: dict[int, tuple[float, str]] = {}
        self._poller: asyncio.Task[None] | None = None
        #: The last thing that went wrong, for operators and tests; also logged.
        self.last_problem = ""

    # ------------------------------------------------------------------ the protocol: override these

    async def read_board(self, board: int) -> list[bool]:
        """Raw hook-switch bits of ``board``, lock 1 first. Raise a BusError when unreadable.

        Pass ``retries=self.config.read_retries`` to :meth:`Bus.transact`: a read is safe to repeat.
        """
        raise NotImplementedError

    async def fire(self, board: int, lock: int) -> bool | None:
        """Send the unlock frame once. Raise a BusError when the board did not acknowledge.

        Return the raw sensor bit when the board's reply reports the door after its pulse
        (this spares a status read), None when it does not.
        """
        raise NotImplementedError

    async def fire_board(self, board: int) -> None:
        """Fire every lock of ``board`` with one frame; only if the model can."""
        raise NotImplementedError

    #: Set to True when :meth:`fire_board` is implemented.
    can_fire_board: ClassVar[bool] = False

    def make_transport(self) -> Transport:
        config = self.config
        if config.host is not None:
            return TcpTransport(config.host, config.tcp_port)
        return SerialTransport(config.port, config.baudrate)

    # ------------------------------------------------------------------ door map

    @property
    def locks_per_board(self) -> int:
        return self.config.locks_per_board

    def _map_doors(self, config: BoardConfig) -> dict[int, tuple[int, int]]:
        mapping: dict[int, tuple[int, int]] = {}
        for door in self.doors:
            if door in config.door_map:
                board, lock = config.door_map[door]
            else:
                index = door - 1
                slot, lock = divmod(index, config.locks_per_board)
                if index < 0 or slot >= len(config.boards):
                    continue  # no lock behind this door: it stays unknown
                board, lock = config.boards[slot], lock + 1
            mapping[door] = (board, lock)
        return mapping

    def _problem(self, what: str) -> None:
        self.last_problem = what
        log.warning("%s (%s): %s", self.name, self._bus_key, what)

    def _is_open(self, bit: bool) -> bool:
        return bit == self.config.open_when_set

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        self._bus_key = self.make_transport().describe
        self.bus = shared_bus(self._bus_key, self._make_bus)
        if await self.bus.connect():
            with contextlib.suppress(*BusError):
                self._known = {
                    d: s for d, s in (await self._read_states()).items() if s is not DoorState.UNKNOWN
                }
        else:
            log.warning("%s: %s (will retry)", self.name, self.bus.transport.last_error)
        if self.config.poll_interval_ms:
            # A fresh context: start() may run inside the caller's database transaction,
            # whose context variables a task would otherwise inherit and outlive.
            self._poller = asyncio.get_running_loop().create_task(self._poll(), context=contextvars.Context())

    def _make_bus(self) -> Bus:
        return Bus(
            self.make_transport(),
            gap=max(self.gap, char_gap(self.gap_chars, self.config.baudrate)),
            reply_timeout=self.config.reply_timeout_ms / 1000,
            silence=self.silence,
            reconnect_interval=self.config.reconnect_ms / 1000,
        )

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(BaseException):
                await self._poller
            self._poller = None
        if self.bus is not None:
            await release_bus(self._bus_key, self.bus)
            self.bus = None

    # ------------------------------------------------------------------ commands

    async def unlock(self, door: int) -> UnlockOutcome:
        target = self.door_map.get(door)
        if target is None:
            self._problem(f"door {door} has no lock in the door map")
            return UnlockOutcome.NO_ANSWER
        board, lock = target
        async with self._op:
            try:
                was_open = self._is_open((await self._read(board))[lock - 1])
            except BusError as exc:
                self._problem(f"board {board}: {exc}")
                return UnlockOutcome.NO_ANSWER
            if was_open and not self.config.fire_when_open:
                return UnlockOutcome.ALREADY_OPEN
            fired = {target: await self._fire_once(board, lock)}
            return (await self._settle_and_judge({door: was_open}, fired))[door]

    async def unlock_many(self, doors: Sequence[int], *, sequential: bool = True) -> dict[int, UnlockOutcome]:
        if sequential:
            return {door: await self.unlock(door) for door in doors}
        outcomes = {door: UnlockOutcome.NO_ANSWER for door in doors if door not in self.door_map}
        mapped = [door for door in doors if door in self.door_map]
        async with self._op:
            before: dict[int, bool] = {}
            for board in sorted({self.door_map[d][0] for d in mapped}):
                try:
                    bits = await self._read(board)
                except BusError as exc:
                    self._problem(f"board {board}: {exc}")
                    outcomes.update(
                        {d: UnlockOutcome.NO_ANSWER for d in mapped if self.door_map[d][0] == board}
                    )
                    continue
                for door in mapped:
                    if self.door_map[door][0] == board:
                        before[door] = self._is_open(bits[self.door_map[door][1] - 1])
            to_fire = [d for d in before if not before[d] or self.config.fire_when_open]
            outcomes.update({d: UnlockOutcome.ALREADY_OPEN for d in before if d not in to_fire})
            fired = await self.fire_together([self.door_map[d] for d in to_fire])
            judged = await self._settle_and_judge({d: before[d] for d in to_fire}, fired)
        outcomes.update(judged)
        return {door: outcomes[door] for door in doors}

    async def _fire_once(self, board: int, lock: int) -> Fired:
        try:
            return Fired(True, await self.fire(board, lock))
        except BusError as exc:  # sent or not, we cannot know: the sensor will tell
            self._problem(f"unlock of board {board} lock {lock}: {exc}")
            return Fired(False)

    async def fire_together(self, targets: list[tuple[int, int]]) -> dict[tuple[int, int], Fired]:
        """Fire ``targets`` (board, lock) back to back; what each board said.

        Uses :meth:`fire_board` for a board whose every lock is asked for. Override to
        use a broadcast frame that reaches several boards at once.
        """
        fired: dict[tuple[int, int], Fired] = {}
        for board in sorted({b for b, _ in targets}):
            locks = sorted(lock for b, lock in targets if b == board)
            if self.can_fire_board and len(locks) == self.locks_per_board:
                try:
                    await self.fire_board(board)
                    result = Fired(True)
                except BusError as exc:
                    self._problem(f"unlock of board {board}: {exc}")
                    result = Fired(False)
                fired.update({(board, lock): result for lock in locks})
            else:
                for lock in locks:
                    fired[(board, lock)] = await self._fire_once(board, lock)
        return fired

    async def _settle_and_judge(
        self, was_open: dict[int, bool], fired: dict[tuple[int, int], Fired]
    ) -> dict[int, UnlockOutcome]:
        # A board that reported the sensor after its pulse spares a read; the others
        # are read once per board, after the settle time.
        now_open = {
            door: self._is_open(fired[self.door_map[door]].sensor)
            for door in was_open
            if fired[self.door_map[door]].sensor is not None
        }
        unread = [door for door in was_open if door not in now_open]
        if unread and self.config.settle_ms:
            await asyncio.sleep(self.config.settle_ms / 1000)
        outcomes: dict[int, UnlockOutcome] = {}
        for board in sorted({self.door_map[d][0] for d in unread}):
            doors = [d for d in unread if self.door_map[d][0] == board]
            try:
                bits = await self._read(board)
            except BusError as exc:
                self._problem(f"board {board} after the pulse: {exc}")
                outcomes.update({d: UnlockOutcome.NO_ANSWER for d in doors})
                continue
            now_open.update({d: self._is_open(bits[self.door_map[d][1] - 1]) for d in doors})
        for door, is_open in now_open.items():
            self._known[door] = DoorState.OPEN if is_open else DoorState.CLOSED
            if was_open[door]:
                outcomes[door] = UnlockOutcome.ALREADY_OPEN
            elif is_open:
                outcomes[door] = UnlockOutcome.OPENED
            else:  # shut: jammed if the board took the order, unknown if it may not have
                outcomes[door] = (
                    UnlockOutcome.JAMMED if fired[self.door_map[door]].acked else UnlockOutcome.NO_ANSWER
                )
        return outcomes

    # ------------------------------------------------------------------ sensors

    async def _read_states(self) -> dict[int, DoorState]:
        states = {door: DoorState.UNKNOWN for door in self.doors}
        for board in dict.fromkeys(b for b, _ in self.door_map.values()):
            try:
                bits = await self._read(board)
            except BusError:
                continue  # _read logged it when the board stopped answering
            for door, (b, lock) in self.door_map.items():
                if b == board:
                    states[door] = DoorState.OPEN if self._is_open(bits[lock - 1]) else DoorState.CLOSED
        return states

    async def door_states(self) -> dict[int, DoorState]:
        async with self._op:
            return await self._read_states()

    async def _poll(self) -> None:
        interval = self.config.poll_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.poll_once()
            except Exception:  # a poller that dies silently would hide every forced door
                log.exception("%s: door poll failed", self.name)

    async def poll_once(self) -> list[tuple[int, DoorState]]:
        """Read every sensor and report doors that moved since the last look."""
        async with self._op:
            states = await self._read_states()
            changes = []
            for door, state in states.items():
                if state is DoorState.UNKNOWN:
                    continue
                previous = self._known.get(door)
                self._known[door] = state
                if previous is not None and previous is not state:
                    changes.append((door, state))
        for door, state in changes:
            await self.listener.door_changed(door, state)
        return changes

    async def _read(self, board: int) -> list[bool]:
        """``read_board``, remembering whether the board answered, for health()."""
        now = asyncio.get_running_loop().time()
        was_failing = self._answered.get(board, (0.0, ""))[1]
        try:
            bits = await self.read_board(board)
        except BusError as exc:
            self._answered[board] = (now, f"board {board}: {exc}")
            self.last_problem = self._answered[board][1]
            if not was_failing:  # say it once, not at every poll
                log.warning("%s (%s): %s", self.name, self._bus_key, self.last_problem)
            raise
        if was_failing:
            log.warning("%s (%s): board %s answers again", self.name, self._bus_key, board)
        self._answered[board] = (now, "")
        return bits

    def _boards(self) -> list[int]:
        return list(dict.fromkeys(b for b, _ in self.door_map.values()))

    async def health(self) -> DriverHealth:
        """What the last look at each board found, reading the boards not seen lately.

        The poller reads every board anyway; a heartbeat asking for health then costs
        no bus time, and cannot be held up by a silent board's timeouts.
        """
        assert self.bus is not None, "start() first"
        fresh = max(2 * self.config.poll_interval_ms / 1000, 1.0)
        async with self._op:
            now = asyncio.get_running_loop().time()
            for board in self._boards():
                seen = self._answered.get(board)
                if seen is None or now - seen[0] > fresh:
                    with contextlib.suppress(*BusError):
                        await self._read(board)
        problems = [self._answered[b][1] for b in self._boards() if self._answered[b][1]]
        if problems:
            return DriverHealth(ok=False, detail="; ".join(problems))
        return DriverHealth(
            ok=True, detail=f"{self.bus.describe}: boards {', '.join(map(str, self._boards()))} answer"
        )
