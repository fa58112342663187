"""The LockDriver the host builds per bank, over a SimulatedBoard."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

import msgspec
from pigeonhole.api import DoorListener, DoorState, DriverHealth, LockDriver, UnlockOutcome

from pigeonhole_simulator import registry
from pigeonhole_simulator.board import SimulatedBoard

Millis = Annotated[int, msgspec.Meta(ge=0, le=600_000)]


class SimulatorConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: Doors on the board, numbered 1..N. None: exactly the bank's doors. A
    #: smaller board than the bank shows what the platform does with a
    #: door the hardware does not have.
    doors: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    #: Board latency per unlock.
    unlock_delay_ms: Millis = 0
    #: A simulated person closes each door this long after it opened; None: doors
    #: stay open until closed through the API. For demos and benchmarks.
    auto_close_after_ms: Millis | None = None
    #: A file where the board appends one line per lock it fires (the door number),
    #: before it answers: lets a test count unlocks across agent restarts.
    unlock_log: str | None = None


class SimulatorDriver(LockDriver):
    name = "simulator"
    Config = SimulatorConfig

    def __init__(
        self, config: msgspec.Struct | None, doors: Sequence[int], listener: DoorListener
    ) -> None:
        config = config if isinstance(config, SimulatorConfig) else SimulatorConfig()
        super().__init__(config, doors, listener)
        board_doors = range(1, config.doors + 1) if config.doors else self.doors
        self.board = SimulatedBoard(
            board_doors,
            listener,
            unlock_delay_ms=config.unlock_delay_ms,
            auto_close_after_ms=config.auto_close_after_ms,
            unlock_log=config.unlock_log,
        )

    async def start(self) -> None:
        self.board.loop = asyncio.get_running_loop()
        if self.board.bank_id is not None:
            registry.register(self.board.bank_id, self.board)

    async def stop(self) -> None:
        self.board.shutdown()
        if self.board.bank_id is not None:
            registry.unregister(self.board.bank_id, self.board)

    async def unlock(self, door: int) -> UnlockOutcome:
        return await self.board.open(door)

    async def door_states(self) -> dict[int, DoorState]:
        return self.board.door_states()

    async def health(self) -> DriverHealth:
        faults = ", ".join(f"door {d}: {f}" for d, f in sorted(self.board.faults.items()))
        detail = f"simulated board, {len(self.board.states)} doors"
        return DriverHealth(ok=True, detail=f"{detail}; faults: {faults}" if faults else detail)
