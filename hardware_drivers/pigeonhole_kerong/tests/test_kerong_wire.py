"""Kerong frames on the wire, byte for byte, and what the conformance kit does not cover.

Every example frame of HARDWARE.md appears here, both as built by the protocol
module and as captured by the simulator from what the driver really wrote.
"""

import asyncio

import msgspec
import pytest
import pytest_asyncio
from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole.hardware import SerialTransport, wire_time
from pigeonhole_driverkit import RecordingListener, wait_until
from pigeonhole_kerong import Cu16Driver, Cu48Driver, protocol
from pigeonhole_kerong.simulator import Cu16Simulator, Cu48Simulator

FAST = {"poll_interval_ms": 0, "settle_ms": 0, "reply_timeout_ms": 100, "reconnect_ms": 50}
H = bytes.fromhex


@pytest_asyncio.fixture
async def started():
    """Build and start drivers and simulators; stop them all afterwards."""
    drivers, sims = [], []

    async def driver(cls, doors, **config):
        d = cls(msgspec.convert({**FAST, **config}, cls.Config, strict=False), doors, RecordingListener())
        await d.start()
        drivers.append(d)
        return d

    async def sim(cls, *args, **kwargs):
        s = cls(*args, **kwargs)
        sims.append(s)
        return s

    yield driver, sim
    for d in drivers:
        await d.stop()
    for s in sims:
        await s.stop()


def test_hardware_md_frames_are_what_the_protocol_builds():
    assert protocol.cu48_status(0) == H("02 00 00 50 03 55")
    assert protocol.cu48_unlock(0, 1) == H("02 00 00 51 03 56")
    assert protocol.cu48_unlock_board(0) == H("02 00 30 51 03 86")
    assert protocol.cu48_unlock_everything() == H("02 0A 30 51 03 90")
    assert protocol.cu16_status(0) == H("02 00 30 03 35")
    assert protocol.cu16_unlock(0, 1) == H("02 00 31 03 36")


def test_a_cu48_status_reply_puts_lock_1_in_the_lowest_bit_of_d1():
    bits = [False] * 48
    bits[0] = bits[47] = bits[9] = True  # locks 1, 48 and 10
    reply = protocol.cu48_status_reply(0, bits)
    assert reply[:10] == H("02 00 00 65 01 02 00 00 00 80")
    assert reply[10:] == bytes([0x03, sum(reply[:11]) & 0xFF])
    assert protocol.cu48_read_status(reply, 0) == bits


def test_bad_replies_are_refused_with_the_bytes_in_the_message():
    good = protocol.cu48_status_reply(0, [False] * 48)
    with pytest.raises(ValueError, match="02 00 00 65"):
        protocol.cu48_read_status(good[:-1] + bytes([good[-1] ^ 1]), 0)
    with pytest.raises(ValueError, match="from board 0"):
        protocol.cu48_read_status(good, 1)
    with pytest.raises(ValueError, match="not a CU16"):
        protocol.cu16_read_status(H("02 00 35 00 00 00 00 03 00"), 0)


async def test_cu48_driver_writes_the_documented_frames(started):
    driver, sim = started
    cu48 = await sim(Cu48Simulator, [0])
    d = await driver(Cu48Driver, range(1, 49), port=await cu48.start_pty())
    assert cu48.received == [H("02 00 00 50 03 55")]  # the start-up read
    assert cu48.replies == [protocol.cu48_status_reply(0, [False] * 48)]
    cu48.received.clear()

    assert await d.unlock(1) is UnlockOutcome.OPENED
    assert cu48.received == [H("02 00 00 50 03 55"), H("02 00 00 51 03 56"), H("02 00 00 50 03 55")]
    cu48.received.clear()

    outcomes = await d.unlock_many(range(1, 49), sequential=False)
    assert outcomes == {1: UnlockOutcome.ALREADY_OPEN} | {n: UnlockOutcome.OPENED for n in range(2, 49)}
    # door 1 is already open, so not every lock is asked for: one frame per lock
    assert H("02 00 30 51 03 86") not in cu48.received
    for n in range(2, 49):
        cu48.door(0, n).open = False
    cu48.door(0, 1).open = False
    cu48.received.clear()
    outcomes = await d.unlock_many(range(1, 49), sequential=False)
    assert set(outcomes.values()) == {UnlockOutcome.OPENED}
    assert cu48.received == [H("02 00 00 50 03 55"), H("02 00 30 51 03 86"), H("02 00 00 50 03 55")]
    assert cu48.rejected == []


async def test_every_lock_of_every_board_goes_out_as_one_broadcast_when_the_chain_is_the_banks(started):
    driver, sim = started
    chain = await sim(Cu48Simulator, [0, 1])
    path = await chain.start_pty()
    d = await driver(Cu48Driver, range(1, 97), port=path, boards=[0, 1], whole_chain=True)
    chain.received.clear()
    outcomes = await d.unlock_many(range(1, 97), sequential=False)
    assert set(outcomes.values()) == {UnlockOutcome.OPENED}
    assert H("02 0A 30 51 03 90") in chain.received
    assert sum(1 for f in chain.received if f[3] == 0x51) == 1
    assert all(door.unlocks == 1 for door in chain.doors.values())


async def test_without_whole_chain_the_broadcast_is_never_sent(started):
    driver, sim = started
    chain = await sim(Cu48Simulator, [0, 1])
    d = await driver(Cu48Driver, range(1, 97), port=await chain.start_pty(), boards=[0, 1])
    await d.unlock_many(range(1, 97), sequential=False)
    assert H("02 0A 30 51 03 90") not in chain.received
    assert H("02 00 30 51 03 86") in chain.received and H("02 01 30 51 03 87") in chain.received


async def test_cu16_driver_writes_the_documented_frames(started):
    driver, sim = started
    cu16 = await sim(Cu16Simulator, [0])
    d = await driver(Cu16Driver, range(1, 17), port=await cu16.start_pty())
    cu16.received.clear()
    assert await d.unlock(1) is UnlockOutcome.OPENED
    assert cu16.received == [H("02 00 30 03 35"), H("02 00 31 03 36"), H("02 00 30 03 35")]
    cu16.received.clear()
    for door in cu16.doors.values():
        door.open = False
    await d.unlock_many(range(1, 17), sequential=False)
    assert cu16.received == [H("02 00 30 03 35"), H("02 00 33 03 38"), H("02 00 30 03 35")]


async def test_cu16_status_carries_hook_and_infrared_bits(started):
    driver, sim = started
    cu16 = await sim(Cu16Simulator, [1])
    await cu16.start_pty()
    cu16.door(1, 9).open = True
    cu16.items.add((1, 16))
    reply = cu16.handle(protocol.cu16_status(1))
    assert reply[:7] == H("02 10 35 00 01 00 80")
    hooks, items = protocol.cu16_read_status(reply, 1)
    assert [n for n, bit in enumerate(hooks, 1) if bit] == [9]
    assert [n for n, bit in enumerate(items, 1) if bit] == [16]


async def test_the_simulator_refuses_a_frame_with_a_bad_checksum_and_fires_nothing(started):
    _, sim = started
    cu48 = await sim(Cu48Simulator, [0])
    link = SerialTransport(await cu48.start_pty(), 19200)
    await link.open()
    try:
        await link.write(H("02 00 00 51 03 57"))  # the unlock of lock 1 with SUM off by one
        await link.write(H("02 00 00 50 03 55"))  # a good status request behind it
        reply = await link.read_frame(length=12, timeout=2)
    finally:
        await link.close()
    assert cu48.rejected == [(H("02 00 00 51 03 57"), "bad end byte or checksum")]
    assert cu48.door(0, 1).unlocks == 0
    assert protocol.cu48_read_status(reply, 0) == [False] * 48


async def test_line_noise_before_a_request_is_skipped_by_the_simulator(started):
    _, sim = started
    cu16 = await sim(Cu16Simulator, [0])
    link = SerialTransport(await cu16.start_pty(), 19200)
    await link.open()
    try:
        await link.write(H("FF 7E") + H("02 00 30 03 35"))
        reply = await link.read_frame(length=9, timeout=2)
    finally:
        await link.close()
    assert [why for _, why in cu16.rejected] == ["not the start of a request"] * 2
    assert protocol.cu16_read_status(reply, 0)[0] == [False] * 16


async def test_the_sensor_polarity_is_a_setting(started):
    driver, sim = started
    wired_nc = await sim(Cu48Simulator, [0], open_when_set=False)
    d = await driver(Cu48Driver, [1, 2], port=await wired_nc.start_pty(), open_when_set=False)
    wired_nc.door(0, 2).open = True
    assert await d.door_states() == {1: DoorState.CLOSED, 2: DoorState.OPEN}
    # the same board read with the wrong polarity sees every door inverted
    wrong = await driver(Cu48Driver, [1, 2], port=wired_nc.path, open_when_set=True)
    assert await wrong.door_states() == {1: DoorState.OPEN, 2: DoorState.CLOSED}


async def test_firing_an_open_door_is_a_setting(started):
    driver, sim = started
    cu48 = await sim(Cu48Simulator, [0])
    path = await cu48.start_pty()
    cautious = await driver(Cu48Driver, [1], port=path)
    cu48.door(0, 1).open = True
    assert await cautious.unlock(1) is UnlockOutcome.ALREADY_OPEN
    assert cu48.door(0, 1).unlocks == 0
    await cautious.stop()
    insistent = await driver(Cu48Driver, [1], port=path, fire_when_open=True)
    assert await insistent.unlock(1) is UnlockOutcome.ALREADY_OPEN
    assert cu48.door(0, 1).unlocks == 1


async def test_a_board_missing_from_the_chain_is_named_in_health(started):
    driver, sim = started
    cu48 = await sim(Cu48Simulator, [0])
    d = await driver(Cu48Driver, range(1, 50), port=await cu48.start_pty(), boards=[0, 5])
    health = await d.health()
    assert not health.ok and "board 5" in health.detail and "board 0" not in health.detail
    assert await d.unlock(49) is UnlockOutcome.NO_ANSWER  # door 49 is lock 1 of board 5
    assert await d.unlock(48) is UnlockOutcome.OPENED
    states = await d.door_states()
    assert states[49] is DoorState.UNKNOWN and states[48] is DoorState.OPEN


async def test_two_banks_on_one_chain_share_the_bus_without_garbling(started):
    driver, sim = started
    chain = await sim(Cu48Simulator, [0, 1], byte_timing=True)
    path = await chain.start_pty()
    left = await driver(Cu48Driver, range(1, 7), port=path, boards=[0])
    right = await driver(Cu48Driver, range(1, 7), port=path, boards=[1])
    assert left.bus is right.bus
    results = await asyncio.gather(
        *(left.unlock(n) for n in range(1, 7)), *(right.unlock(n) for n in range(1, 7))
    )
    assert set(results) == {UnlockOutcome.OPENED}
    assert chain.rejected == []
    assert [chain.door(b, n).unlocks for b in (0, 1) for n in range(1, 7)] == [1] * 12


async def test_the_simulator_takes_the_wire_time_of_its_baud_rate(started):
    driver, sim = started
    cu48 = await sim(Cu48Simulator, [0], byte_timing=True)
    d = await driver(Cu48Driver, [1], port=await cu48.start_pty())
    loop = asyncio.get_running_loop()
    began = loop.time()
    await d.door_states()
    # a status request (6 bytes) and its reply (12 bytes) at 19200 baud: 9.4 ms at the least
    assert loop.time() - began >= wire_time(18, 19200) == pytest.approx(0.009375)


async def test_the_tcp_bridge_refuses_while_unplugged_and_the_driver_says_why(started):
    driver, sim = started
    bridge = await sim(Cu48Simulator, [0])
    port = await bridge.start_tcp()
    d = await driver(Cu48Driver, [1, 2], host="127.0.0.1", tcp_port=port)
    await bridge.unplug()
    await wait_until(
        lambda: _unhealthy_with(d, "cannot connect"), what="health naming the refused connection"
    )
    await bridge.replug()
    await wait_until(lambda: _healthy(d), what="the bridge accepted again")
    assert await d.unlock(2) is UnlockOutcome.OPENED


async def test_a_pulled_serial_cable_is_named_in_health(started):
    driver, sim = started
    cu16 = await sim(Cu16Simulator, [0])
    d = await driver(Cu16Driver, [1], port=await cu16.start_pty())
    await cu16.unplug()
    await wait_until(lambda: _unhealthy_with(d, "cannot open"), what="health naming the missing port")
    await cu16.replug()
    await wait_until(lambda: _healthy(d), what="the port back")


async def test_a_driver_starts_while_the_cable_is_out_and_comes_up_when_it_is_plugged(started):
    driver, sim = started
    cu48 = await sim(Cu48Simulator, [0])
    path = await cu48.start_pty()
    await cu48.unplug()
    d = await driver(Cu48Driver, [1], port=path)
    assert not (await d.health()).ok
    await cu48.replug()
    await wait_until(lambda: _healthy(d), what="the port plugged in")
    assert await d.unlock(1) is UnlockOutcome.OPENED


async def _healthy(driver) -> bool:
    return (await driver.health()).ok


async def _unhealthy_with(driver, words: str) -> bool:
    health = await driver.health()
    return not health.ok and words in health.detail


async def test_garbage_on_the_line_is_read_past(started):
    driver, sim = started
    cu48 = await sim(Cu48Simulator, [0])
    d = await driver(Cu48Driver, [1, 2], port=await cu48.start_pty(), read_retries=2)
    cu48.door(0, 2).open = True
    cu48.garbage_next = 2
    assert await d.door_states() == {1: DoorState.CLOSED, 2: DoorState.OPEN}
    assert [reply[0] for reply in cu48.replies[-3:]] == [0xFF, 0xFF, 0x02]
    cu48.garbage_next = 3  # more than the retries: unknown, never a guess
    assert await d.door_states() == {1: DoorState.UNKNOWN, 2: DoorState.UNKNOWN}
