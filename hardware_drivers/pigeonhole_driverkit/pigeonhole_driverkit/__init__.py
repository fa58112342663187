"""The driver conformance kit: what every Pigeonhole lock driver must do, as tests.

A driver package subclasses :class:`DriverConformance` in its own tests and
gives it a ``rig`` fixture: its driver class, a per-bank configuration and a
running simulator of its board behind a real link (pty pair or TCP). The kit
then drives the driver exactly as the site agent does and checks what the
simulated door sensors say, including every fault a real bank shows: a
silent board, corrupted replies, a reply lost after an unlock, a jammed lock,
a pried door, a door left open, the cable pulled out and plugged back.

The rules it holds a driver to are those of :class:`pigeonhole.api.LockDriver`:
report what the sensor saw; never repeat an unlock whose outcome is unknown;
retry reads only; tell the listener about doors that move without a command
and never about the door a command opened; come back when the link does.

Usage (see ``docs/plugins/drivers.md``)::

    import pytest_asyncio
    from pigeonhole.hardware.simulation import BankView
    from pigeonhole_driverkit import DriverConformance, Rig

    class TestAcmeBoard(DriverConformance):
        @pytest_asyncio.fixture
        async def rig(self):
            sim = AcmeSimulator(boards=[1])
            path = await sim.start_pty()
            yield Rig(
                driver_cls=AcmeDriver,
                config={"port": path, "boards": [1], "poll_interval_ms": 20, "settle_ms": 0},
                doors=list(range(1, 9)),
                board=BankView(sim, {d: (1, d) for d in range(1, 9)}),
            )
            await sim.stop()
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID, uuid4

import msgspec
import pytest
import pytest_asyncio
from pigeonhole.api import DoorState, DriverHealth, LockDriver, UnlockOutcome

__all__ = ["DriverConformance", "RecordingListener", "Rig", "SimulatedBank", "wait_until"]

OPEN, CLOSED, UNKNOWN = DoorState.OPEN, DoorState.CLOSED, DoorState.UNKNOWN


class SimulatedBank(Protocol):
    """What the kit needs from a simulator, by bank door number.

    ``pigeonhole.hardware.simulation.BankView`` implements it for simulators built
    on ``BoardSimulator``; a simulator built otherwise (a pymodbus server, say)
    writes these few methods itself.
    """

    def door_is_open(self, door: int) -> bool: ...
    def unlocks(self, door: int) -> int:
        """Pulses the board fired at this door's lock so far."""

    def person_opens(self, door: int) -> None:
        """The door opens without a command (pried, or a lock that let go)."""

    def person_closes(self, door: int) -> None: ...
    def jam(self, door: int, jammed: bool = True) -> None:
        """The lock fires but the door stays shut."""

    def set_silent(self, silent: bool) -> None:
        """The board answers nothing (dead, unpowered, wrong address)."""

    def corrupt_replies(self, count: int) -> None:
        """The next ``count`` replies arrive with a wrong checksum or CRC; 0 heals."""

    def lose_reply_after_unlock(self) -> None:
        """The next unlock fires, but the reply that would tell the driver is lost:
        the unlock's own acknowledgement, or for boards that never acknowledge, the
        next status reply."""

    async def unplug(self) -> None:
        """Pull the cable out (pty closed, TCP connections refused)."""

    async def replug(self) -> None:
        """Plug it back, at the same path or port."""


@dataclass
class Rig:
    """A driver class, its per-bank configuration, and its simulator running.

    ``config`` is the JSON the bank would carry; use short timings (a poll every
    few tens of ms, no settle wait) so the kit runs fast. ``doors`` are the bank's
    door numbers, all mapped to locks of the simulator. ``bad_configs`` are
    configurations the driver must refuse, each with a word its message must contain.
    """

    driver_cls: type[LockDriver]
    config: dict[str, Any]
    doors: list[int]
    board: SimulatedBank
    bad_configs: list[tuple[dict[str, Any], str]] = field(default_factory=list)


class RecordingListener:
    """A DoorListener that keeps what it was told."""

    def __init__(self) -> None:
        self.tenant_id: UUID = uuid4()
        self.bank_id: UUID = uuid4()
        self.changes: list[tuple[int, DoorState]] = []

    async def door_changed(self, door: int, state: DoorState) -> None:
        self.changes.append((door, DoorState(state)))


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, what: str = "the condition"
) -> None:
    """Wait for ``condition`` (checked every 10 ms); fail the test after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
class DriverConformance:
    """Subclass as ``TestSomething`` and provide an async ``rig`` fixture."""

    #: Seconds to wait for a door report or a link to come back before failing.
    wait_timeout: float = 10.0

    # ------------------------------------------------------------------ fixtures

    @pytest_asyncio.fixture
    async def rig(self) -> Rig:  # pragma: no cover - every driver package overrides it
        raise NotImplementedError("a DriverConformance subclass provides the `rig` fixture")

    @pytest_asyncio.fixture
    async def listener(self) -> RecordingListener:
        return RecordingListener()

    @pytest_asyncio.fixture
    async def driver(self, rig: Rig, listener: RecordingListener):
        config = msgspec.convert(rig.config, rig.driver_cls.Config, strict=False)
        driver = rig.driver_cls(config, rig.doors, listener)
        await driver.start()
        try:
            yield driver
        finally:
            await driver.stop()

    async def _wait(self, condition, *, what: str) -> None:
        await wait_until(condition, timeout=self.wait_timeout, what=what)

    # ------------------------------------------------------------------ configuration

    async def test_config_round_trips_as_the_host_stores_it(self, rig: Rig) -> None:
        cls = rig.driver_cls.Config
        assert isinstance(msgspec.json.schema(cls), dict)
        config = msgspec.convert(rig.config, cls, strict=False)
        # the host stores the converted struct as JSON and the agent decodes it strictly
        assert msgspec.json.decode(msgspec.json.encode(config), type=cls) == config

    async def test_bad_configs_are_refused_with_a_reason(self, rig: Rig) -> None:
        if not rig.bad_configs:
            pytest.skip("the rig lists no bad configurations")
        for raw, word in rig.bad_configs:
            with pytest.raises(msgspec.ValidationError) as caught:
                msgspec.convert(raw, rig.driver_cls.Config, strict=False)
            assert word in str(caught.value), f"{raw!r} refused without naming {word!r}: {caught.value}"

    # ------------------------------------------------------------------ unlock

    async def test_unlock_opens_a_closed_door_once(self, rig: Rig, driver: LockDriver) -> None:
        door = rig.doors[0]
        assert await driver.unlock(door) is UnlockOutcome.OPENED
        assert rig.board.door_is_open(door)
        assert rig.board.unlocks(door) == 1
        assert (await driver.door_states())[door] is OPEN

    async def test_a_commanded_open_is_not_reported_as_a_change(
        self, rig: Rig, driver: LockDriver, listener: RecordingListener
    ) -> None:
        opened, pried = rig.doors[0], rig.doors[-1]
        assert await driver.unlock(opened) is UnlockOutcome.OPENED
        rig.board.person_opens(pried)  # a later change, to know the poller looked again
        await self._wait(lambda: (pried, OPEN) in listener.changes, what=f"door {pried} reported open")
        assert (opened, OPEN) not in listener.changes

    async def test_unlocking_an_open_door_is_already_open(self, rig: Rig, driver: LockDriver) -> None:
        door = rig.doors[1]
        rig.board.person_opens(door)
        assert await driver.unlock(door) is UnlockOutcome.ALREADY_OPEN
        assert rig.board.door_is_open(door)

    async def test_a_jammed_lock_is_jammed_not_opened(self, rig: Rig, driver: LockDriver) -> None:
        door = rig.doors[0]
        rig.board.jam(door)
        assert await driver.unlock(door) is UnlockOutcome.JAMMED
        assert rig.board.unlocks(door) == 1, "the driver repeated the unlock of a jammed door"
        assert not rig.board.door_is_open(door)
        assert (await driver.door_states())[door] is CLOSED
        rig.board.jam(door, False)
        assert await driver.unlock(door) is UnlockOutcome.OPENED

    async def test_a_silent_board_is_no_answer(self, rig: Rig, driver: LockDriver) -> None:
        door = rig.doors[0]
        rig.board.set_silent(True)
        assert await driver.unlock(door) is UnlockOutcome.NO_ANSWER
        assert rig.board.unlocks(door) <= 1
        states = await driver.door_states()
        assert set(states) == set(rig.doors)
        assert set(states.values()) == {UNKNOWN}
        health = await driver.health()
        assert not health.ok and health.detail
        rig.board.set_silent(False)
        await self._wait(lambda: _ok(driver), what="health back once the board answers")

    async def test_a_lost_reply_never_repeats_the_unlock(self, rig: Rig, driver: LockDriver) -> None:
        door = rig.doors[0]
        rig.board.lose_reply_after_unlock()
        outcome = await driver.unlock(door)
        assert rig.board.unlocks(door) == 1, "an unlock whose outcome was unknown was sent again"
        # Reading the sensor again is allowed, and may prove the door open.
        assert outcome in (UnlockOutcome.OPENED, UnlockOutcome.NO_ANSWER)
        assert rig.board.door_is_open(door)

    async def test_unlock_many_one_after_the_other(self, rig: Rig, driver: LockDriver) -> None:
        doors = rig.doors[:3]
        rig.board.jam(doors[1])
        outcomes = await driver.unlock_many(doors, sequential=True)
        assert list(outcomes) == doors
        assert outcomes == {
            doors[0]: UnlockOutcome.OPENED,
            doors[1]: UnlockOutcome.JAMMED,
            doors[2]: UnlockOutcome.OPENED,
        }
        assert [rig.board.unlocks(d) for d in doors] == [1, 1, 1]

    async def test_unlock_many_all_at_once(self, rig: Rig, driver: LockDriver) -> None:
        doors = rig.doors[:3]
        rig.board.person_opens(doors[2])
        outcomes = await driver.unlock_many(doors, sequential=False)
        assert outcomes == {
            doors[0]: UnlockOutcome.OPENED,
            doors[1]: UnlockOutcome.OPENED,
            doors[2]: UnlockOutcome.ALREADY_OPEN,
        }
        assert [rig.board.unlocks(d) for d in doors[:2]] == [1, 1]
        assert all(rig.board.door_is_open(d) for d in doors)

    # ------------------------------------------------------------------ sensors

    async def test_door_states_are_what_the_sensors_read(self, rig: Rig, driver: LockDriver) -> None:
        opened = set(rig.doors[::3])
        for door in opened:
            rig.board.person_opens(door)
        states = await driver.door_states()
        assert states == {door: OPEN if door in opened else CLOSED for door in rig.doors}

    async def test_a_forced_door_is_reported(
        self, rig: Rig, driver: LockDriver, listener: RecordingListener
    ) -> None:
        door = rig.doors[-1]
        rig.board.person_opens(door)
        await self._wait(lambda: (door, OPEN) in listener.changes, what=f"door {door} reported open")
        assert listener.changes.count((door, OPEN)) == 1

    async def test_a_door_closed_by_a_person_is_reported(
        self, rig: Rig, driver: LockDriver, listener: RecordingListener
    ) -> None:
        door = rig.doors[0]
        assert await driver.unlock(door) is UnlockOutcome.OPENED
        rig.board.person_closes(door)
        await self._wait(lambda: (door, CLOSED) in listener.changes, what=f"door {door} reported closed")
        assert (door, OPEN) not in listener.changes

    async def test_a_door_left_open_stays_open(
        self, rig: Rig, driver: LockDriver, listener: RecordingListener
    ) -> None:
        door, sentinel = rig.doors[0], rig.doors[-1]
        assert await driver.unlock(door) is UnlockOutcome.OPENED
        rig.board.person_opens(sentinel)
        await self._wait(lambda: (sentinel, OPEN) in listener.changes, what="a later poll")
        assert (await driver.door_states())[door] is OPEN
        assert [c for c in listener.changes if c[0] == door] == []

    # ------------------------------------------------------------------ bad lines

    async def test_a_corrupted_status_reply_is_read_again(self, rig: Rig, driver: LockDriver) -> None:
        door = rig.doors[0]
        rig.board.person_opens(door)
        rig.board.corrupt_replies(1)
        states = await driver.door_states()
        assert states[door] is OPEN
        assert all(states[d] is CLOSED for d in rig.doors if d != door)

    async def test_a_line_that_only_carries_garbage_is_unknown_and_unhealthy(
        self, rig: Rig, driver: LockDriver
    ) -> None:
        rig.board.corrupt_replies(10**9)
        assert set((await driver.door_states()).values()) == {UNKNOWN}
        assert not (await driver.health()).ok
        assert await driver.unlock(rig.doors[0]) is UnlockOutcome.NO_ANSWER
        rig.board.corrupt_replies(0)
        await self._wait(lambda: _ok(driver), what="health back once replies are clean")

    async def test_an_unplugged_cable_is_no_answer_and_the_link_comes_back(
        self, rig: Rig, driver: LockDriver, listener: RecordingListener
    ) -> None:
        door = rig.doors[0]
        assert (await driver.health()).ok
        await rig.board.unplug()
        assert await driver.unlock(door) is UnlockOutcome.NO_ANSWER
        assert rig.board.unlocks(door) == 0
        assert set((await driver.door_states()).values()) == {UNKNOWN}
        assert not (await driver.health()).ok
        rig.board.person_opens(rig.doors[-1])  # moved while the cable was out
        await rig.board.replug()
        await self._wait(lambda: _ok(driver), what="the driver to reopen the link")
        assert await driver.unlock(door) is UnlockOutcome.OPENED
        assert rig.board.unlocks(door) == 1
        await self._wait(
            lambda: (rig.doors[-1], OPEN) in listener.changes, what="the change seen after replug"
        )

    async def test_health_names_the_link(self, rig: Rig, driver: LockDriver) -> None:
        health = await driver.health()
        assert isinstance(health, DriverHealth)
        assert health.ok and health.detail


async def _ok(driver: LockDriver) -> bool:
    return (await driver.health()).ok
