"""Doors, faults and a simulated person who closes doors."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from pigeonhole.api import DoorListener, DoorState, UnlockOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")


class Fault(enum.StrEnum):
    #: The board does not acknowledge: the driver cannot know what happened.
    NO_ANSWER = "no_answer"
    #: The board fires but the door stays shut.
    JAMMED = "jammed"


class SimulatedBoard:
    def __init__(
        self,
        doors: Iterable[int],
        listener: DoorListener,
        *,
        unlock_delay_ms: int = 0,
        auto_close_after_ms: int | None = None,
        unlock_log: str | None = None,
    ) -> None:
        self.unlock_log = unlock_log
        self.listener = listener
        self.bank_id = getattr(listener, "bank_id", None)
        self.tenant_id = getattr(listener, "tenant_id", None)
        self.unlock_delay_ms = unlock_delay_ms
        self.auto_close_after_ms = auto_close_after_ms
        self.states: dict[int, DoorState] = {door: DoorState.CLOSED for door in sorted(doors)}
        self.faults: dict[int, Fault] = {}
        #: The loop the driver runs in; set by the driver's start().
        self.loop: asyncio.AbstractEventLoop | None = None
        self._closers: dict[int, asyncio.Task[None]] = {}

    def _check(self, door: int) -> None:
        if door not in self.states:
            raise ValueError(f"Door {door} is not on this board (doors: {self._range()})")

    def _range(self) -> str:
        doors = list(self.states)
        return f"{doors[0]}-{doors[-1]}" if doors else "none"

    async def open(self, door: int) -> UnlockOutcome:
        """A commanded unlock: the outcome is returned, the listener is not told."""
        self._check(door)
        fault = self.faults.get(door)
        if self.unlock_log and fault is not Fault.NO_ANSWER:
            # The pulse goes out first; the board answers after its delay.
            with open(self.unlock_log, "a") as log_file:
                log_file.write(f"{door}\n")
        if self.unlock_delay_ms:
            await asyncio.sleep(self.unlock_delay_ms / 1000)
        fault = self.faults.get(door)
        if fault is Fault.NO_ANSWER:
            return UnlockOutcome.NO_ANSWER
        if fault is Fault.JAMMED:
            return UnlockOutcome.JAMMED
        outcome = (
            UnlockOutcome.ALREADY_OPEN
            if self.states[door] is DoorState.OPEN
            else UnlockOutcome.OPENED
        )
        self.states[door] = DoorState.OPEN
        self._schedule_close(door)
        return outcome

    async def close(self, door: int) -> DoorState:
        """A person shuts the door."""
        self._check(door)
        self._cancel_close(door)
        return await self._set(door, DoorState.CLOSED)

    async def force_open(self, door: int) -> DoorState:
        """The door opens without a command: pried, or a lock that let go."""
        self._check(door)
        return await self._set(door, DoorState.OPEN)

    def set_fault(self, door: int, fault: Fault | str | None) -> Fault | None:
        self._check(door)
        if fault is None:
            self.faults.pop(door, None)
            return None
        self.faults[door] = Fault(fault)
        return self.faults[door]

    def door_states(self) -> dict[int, DoorState]:
        return dict(self.states)

    async def _set(self, door: int, state: DoorState) -> DoorState:
        # A sensor reports changes, not levels: nothing to say when nothing moved.
        if self.states[door] is not state:
            self.states[door] = state
            await self.listener.door_changed(door, state)
        return state

    def _schedule_close(self, door: int) -> None:
        if self.auto_close_after_ms is None:
            return
        self._cancel_close(door)
        self._closers[door] = asyncio.get_running_loop().create_task(
            self._close_later(door, self.auto_close_after_ms / 1000)
        )

    async def _close_later(self, door: int, delay: float) -> None:
        await asyncio.sleep(delay)
        self._closers.pop(door, None)
        try:
            await self._set(door, DoorState.CLOSED)
        except Exception:  # a task nobody awaits: say it, do not lose it silently
            log.exception("simulated close of door %s failed", door)

    def _cancel_close(self, door: int) -> None:
        task = self._closers.pop(door, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def shutdown(self) -> None:
        for task in self._closers.values():
            task.cancel()
        self._closers.clear()

    async def call(self, action: Awaitable[T]) -> T:
        """Await ``action`` on the board's own loop, wherever the caller runs.

        A route may run in another thread's loop than the driver, and the
        listener belongs to the driver's loop.
        """
        here = asyncio.get_running_loop()
        board_loop = self.loop
        if board_loop is None or board_loop is here or not board_loop.is_running():
            return await action
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(action), board_loop)
        return await asyncio.wrap_future(future)


async def _as_coroutine(action: Awaitable[Any]) -> Any:
    return await action
