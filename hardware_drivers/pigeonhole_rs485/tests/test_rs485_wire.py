"""RS485 board frames on the wire, byte for byte, and the field lessons of HARDWARE.md."""

import msgspec
import pytest
import pytest_asyncio
from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole.hardware import xor8
from pigeonhole_driverkit import RecordingListener
from pigeonhole_rs485 import Rs485Driver, protocol
from pigeonhole_rs485.simulator import Rs485Simulator

H = bytes.fromhex
FAST = {"poll_interval_ms": 0, "reply_timeout_ms": 100, "unlock_timeout_ms": 200, "reconnect_ms": 50}


@pytest_asyncio.fixture
async def rig():
    made = []

    async def make(boards=(1,), channels=8, sim_options=None, **config):
        sim = Rs485Simulator(list(boards), channels=channels, **(sim_options or {}))
        path = await sim.start_pty()
        cls = Rs485Driver
        raw = {**FAST, "port": path, "boards": list(boards), "channels": channels, **config}
        doors = range(1, channels * len(boards) + 1)
        driver = cls(msgspec.convert(raw, cls.Config, strict=False), doors, RecordingListener())
        await driver.start()
        made.append((driver, sim))
        return driver, sim

    yield make
    for driver, sim in made:
        await driver.stop()
        await sim.stop()


def test_hardware_md_frames_are_what_the_protocol_builds():
    assert protocol.unlock(1, 1) == H("8A 01 01 11 9B")
    assert protocol.status(1) == H("80 01 00 33 B2")
    assert protocol.status(0x1F)[:4] == H("80 1F 00 33") and protocol.status(0x1F)[4] == xor8(
        H("80 1F 00 33")
    )


def test_status_bytes_come_highest_group_first():
    bits = [False] * 20
    bits[0] = bits[8] = bits[19] = True  # channels 1, 9 and 20
    reply = protocol.status_reply(3, bits)
    assert reply == H("80 03 08 01 01 33") + bytes([xor8(H("80 03 08 01 01 33"))])
    assert protocol.read_status(reply, 3, 20) == bits


def test_unlock_replies_carry_the_sensor_after_the_pulse():
    assert protocol.read_unlock_reply(protocol.unlock_reply(1, 1, True), 1, 1) is True
    assert protocol.unlock_reply(1, 1, False) == H("8A 01 01 00") + bytes([xor8(H("8A 01 01 00"))])
    with pytest.raises(ValueError, match="channel 2"):
        protocol.read_unlock_reply(protocol.unlock_reply(1, 1, True), 1, 2)


async def test_the_driver_writes_the_documented_frames(rig):
    driver, sim = await rig()
    assert sim.received == [H("80 01 00 33 B2")]
    sim.received.clear()
    assert await driver.unlock(1) is UnlockOutcome.OPENED
    # the unlock's reply reports the sensor after the pulse: no status read after it
    assert sim.received == [H("80 01 00 33 B2"), H("8A 01 01 11 9B")]
    assert sim.replies[-1] == protocol.unlock_reply(1, 1, True)


async def test_an_unlock_answered_after_a_half_second_pulse_is_waited_for(rig):
    driver, sim = await rig(sim_options={"pulse": 0.5}, unlock_timeout_ms=1500)
    assert await driver.unlock(3) is UnlockOutcome.OPENED
    assert sim.door(1, 3).unlocks == 1


async def test_a_reply_later_than_the_timeout_is_not_taken_for_the_next_one_and_nothing_is_repeated(rig):
    driver, sim = await rig(sim_options={"pulse": 0.15}, unlock_timeout_ms=50)
    assert await driver.unlock(2) is UnlockOutcome.OPENED  # the status read proved it open
    assert sim.door(1, 2).unlocks == 1
    assert [f for f in sim.received if f[0] == 0x8A] == [protocol.unlock(1, 2)]
    assert await driver.door_states() == {
        n: DoorState.OPEN if n == 2 else DoorState.CLOSED for n in range(1, 9)
    }


async def test_transactions_are_at_least_five_ms_apart(rig):
    driver, sim = await rig(boards=(1, 2))
    for _ in range(3):
        await driver.door_states()
    await driver.unlock_many([1, 9, 10], sequential=False)
    gaps = [b - a for a, b in zip(sim.arrivals, sim.arrivals[1:], strict=False)]
    assert len(gaps) >= 9
    assert min(gaps) >= 0.005


async def test_unlock_many_reads_each_board_once_then_fires_back_to_back(rig):
    driver, sim = await rig(boards=(1, 2))
    sim.door(1, 2).jammed = True
    sim.received.clear()
    outcomes = await driver.unlock_many([1, 9, 2], sequential=False)
    assert outcomes == {1: UnlockOutcome.OPENED, 9: UnlockOutcome.OPENED, 2: UnlockOutcome.JAMMED}
    assert sim.received == [
        protocol.status(1),
        protocol.status(2),
        protocol.unlock(1, 1),
        protocol.unlock(1, 2),
        protocol.unlock(2, 1),
    ]


async def test_a_lost_unlock_reply_is_settled_by_a_status_read_never_by_a_second_unlock(rig):
    driver, sim = await rig()
    sim.lose_reply_after_unlock = True
    sim.received.clear()
    assert await driver.unlock(5) is UnlockOutcome.OPENED
    assert sim.received == [protocol.status(1), protocol.unlock(1, 5), protocol.status(1)]


async def test_a_jammed_lock_answers_the_pulse_with_a_shut_door(rig):
    driver, sim = await rig()
    sim.door(1, 4).jammed = True
    assert await driver.unlock(4) is UnlockOutcome.JAMMED
    assert sim.replies[-1] == protocol.unlock_reply(1, 4, False)


async def test_garbage_and_bad_checksums_are_read_past(rig):
    driver, sim = await rig(read_retries=2)
    sim.door(1, 8).open = True
    sim.garbage_next, sim.corrupt_next = 1, 0
    expected = {n: DoorState.OPEN if n == 8 else DoorState.CLOSED for n in range(1, 9)}
    assert await driver.door_states() == expected
    sim.corrupt_next = 2
    assert await driver.door_states() == expected
    assert [xor8(r[:-1]) == r[-1] for r in sim.replies[-3:]] == [False, False, True]
