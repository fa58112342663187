"""The Modbus driver against the pymodbus simulator, over a real TCP socket and a real pty (RTU)."""

from __future__ import annotations

import asyncio

from modbus_support import Listener, bench_fixture, eventually  # noqa: F401 - the `bench` fixture
from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole_modbus import DoorMap
from pigeonhole_modbus.pdu import OFF, ON
from pigeonhole_modbus.simulator import DoorFault, LinkFault, SimulatedUnit

OPENED, JAMMED, NO_ANSWER, ALREADY_OPEN = (
    UnlockOutcome.OPENED,
    UnlockOutcome.JAMMED,
    UnlockOutcome.NO_ANSWER,
    UnlockOutcome.ALREADY_OPEN,
)
FC_READ_INPUTS, FC_WRITE_COIL = 2, 5


async def test_start_switches_every_relay_off(bench):
    unit = SimulatedUnit()
    unit.coils[2] = unit.coils[5] = True  # left on by a crash
    await bench.simulator(unit)
    await bench.driver()
    assert unit.coils == [False] * 8
    assert unit.writes[0] == (0x00FF, OFF)
    assert unit.fired == [0] * 8


async def test_start_switches_relays_off_one_by_one_without_an_all_relays_coil(bench):
    unit = SimulatedUnit(all_relays_coil=None)
    unit.coils[1] = True
    await bench.simulator(unit)
    await bench.driver(doors=[1, 2, 3])
    assert unit.coils == [False] * 8
    assert unit.writes == [(0, OFF), (1, OFF), (2, OFF)]


async def test_unlock_fires_a_board_timed_pulse_once_and_reports_the_sensor(bench):
    sim = await bench.simulator()
    driver = await bench.driver(pulse_ms=300)
    assert await driver.unlock(3) is OPENED
    unit = sim.unit(1)
    assert unit.pulses == [(2, 3)]  # channel 2 (door 3), 3 tenths of a second
    assert unit.fired == [0, 0, 1, 0, 0, 0, 0, 0]
    assert sim.count(FC_WRITE_COIL, 0x0202) == 1
    # The board switches the relay off by itself.
    await eventually(lambda: _coil_off(unit, 2))
    states = await driver.door_states()
    assert states[3] is DoorState.OPEN
    assert [d for d, s in states.items() if s is DoorState.OPEN] == [3]


async def _coil_off(unit, channel):
    return not unit.coils[channel]


async def test_a_board_without_timed_pulses_gets_a_host_timed_pulse(bench):
    sim = await bench.simulator(SimulatedUnit(board_pulse=False))
    driver = await bench.driver(pulse_ms=200)
    assert await driver.unlock(1) is OPENED
    unit = sim.unit(1)
    # The 0x0200 request was refused (not carried out), then relay on, relay off.
    assert sim.count(FC_WRITE_COIL, 0x0200) == 1
    assert unit.writes[1:] == [(0, ON), (0, OFF)]
    assert unit.fired[0] == 1 and unit.coils[0] is False
    assert await driver.unlock(2) is OPENED
    assert sim.count(FC_WRITE_COIL, 0x0201) == 0  # remembered: no second refused attempt
    health = await driver.health()
    assert health.ok and "host-timed" in health.detail


async def test_host_timed_by_configuration(bench):
    sim = await bench.simulator()
    driver = await bench.driver(pulse="host", pulse_ms=100)
    assert await driver.unlock(4) is OPENED
    assert sim.unit(1).writes[1:] == [(3, ON), (3, OFF)]
    assert sim.unit(1).pulses == []


async def test_a_door_already_open_is_not_fired(bench):
    sim = await bench.simulator()
    sim.unit(1).force_open(0)
    driver = await bench.driver()
    assert await driver.unlock(1) is ALREADY_OPEN
    assert sim.unit(1).fired[0] == 0
    assert sim.count(FC_WRITE_COIL, 0x0200) == 0


async def test_fire_when_open_fires_anyway_and_still_says_already_open(bench):
    sim = await bench.simulator()
    sim.unit(1).force_open(0)
    driver = await bench.driver(fire_when_open=True)
    assert await driver.unlock(1) is ALREADY_OPEN
    assert sim.unit(1).fired[0] == 1


async def test_jammed_door_fired_once_reports_jammed(bench):
    sim = await bench.simulator()
    sim.unit(1).set_fault(1, DoorFault.JAMMED)
    driver = await bench.driver(open_timeout_ms=200)
    assert await driver.unlock(2) is JAMMED
    assert sim.unit(1).fired[1] == 1
    assert sim.count(FC_WRITE_COIL, 0x0201) == 1
    assert (await driver.door_states())[2] is DoorState.CLOSED


async def test_a_lost_reply_to_an_unlock_is_never_repeated_and_the_sensor_tells(bench):
    sim = await bench.simulator()
    driver = await bench.driver()
    sim.set_fault(LinkFault.REPLY_LOST, functions=[FC_WRITE_COIL])
    # The board fired but never said so: the sensor proves the door opened.
    assert await driver.unlock(1) is OPENED
    assert sim.unit(1).fired[0] == 1
    assert sim.count(FC_WRITE_COIL, 0x0200) == 1


async def test_a_garbled_reply_to_an_unlock_is_never_repeated(bench):
    sim = await bench.simulator()
    sim.unit(1).set_fault(4, DoorFault.JAMMED)
    driver = await bench.driver(open_timeout_ms=100)
    sim.set_fault(LinkFault.GARBAGE, functions=[FC_WRITE_COIL])
    # Fired, unconfirmed, door shut: nobody knows whether the board took it.
    assert await driver.unlock(5) is NO_ANSWER
    assert sim.unit(1).fired[4] == 1
    assert sim.count(FC_WRITE_COIL, 0x0204) == 1


async def test_an_unlock_the_board_never_heard_is_no_answer_and_not_repeated(bench):
    sim = await bench.simulator()
    driver = await bench.driver(open_timeout_ms=100)
    sim.set_fault(LinkFault.NO_ANSWER, functions=[FC_WRITE_COIL])
    assert await driver.unlock(1) is NO_ANSWER  # not jammed: the board may never have had it
    assert sim.unit(1).fired[0] == 0
    assert sim.count(FC_WRITE_COIL, 0x0200) == 1
    assert (await driver.door_states())[1] is DoorState.CLOSED


async def test_an_unconfirmed_relay_on_is_switched_off_and_never_on_again(bench):
    sim = await bench.simulator()
    driver = await bench.driver(pulse="host", pulse_ms=100, read_retries=2)
    sim.set_fault(LinkFault.REPLY_LOST, functions=[FC_WRITE_COIL])
    assert await driver.unlock(1) is OPENED  # the sensor saw it open
    unit = sim.unit(1)
    assert unit.fired[0] == 1
    assert unit.coils[0] is False  # switched off at once, not left powered
    # one "on", then "off" with its retries (switching off is safe to repeat)
    assert [value for address, value in unit.writes[1:] if address == 0] == [ON, OFF, OFF, OFF]


async def test_a_silent_board_is_read_again_but_never_fired(bench):
    sim = await bench.simulator()
    driver = await bench.driver(read_retries=2)
    sim.set_fault(LinkFault.NO_ANSWER)
    before = sim.count(FC_READ_INPUTS)
    assert set((await driver.door_states()).values()) == {DoorState.UNKNOWN}
    assert sim.count(FC_READ_INPUTS) - before == 3  # one read and two retries
    assert await driver.unlock(1) is NO_ANSWER
    assert sim.count(FC_WRITE_COIL, 0x0200) == 0  # nothing fired without knowing the door
    health = await driver.health()
    assert not health.ok and "unit 1" in health.detail and "no reply" in health.detail


async def test_garbage_on_reads_is_unknown(bench):
    sim = await bench.simulator()
    driver = await bench.driver(read_retries=1)
    sim.set_fault(LinkFault.GARBAGE)
    assert set((await driver.door_states()).values()) == {DoorState.UNKNOWN}
    assert await driver.unlock(2) is NO_ANSWER
    assert sim.unit(1).fired == [0] * 8
    sim.set_fault(None)
    assert await driver.unlock(2) is OPENED


async def test_doors_that_move_without_a_command_are_reported(bench):
    sim = await bench.simulator()
    listener = Listener()
    await bench.driver(listener=listener, poll_ms=20)
    sim.unit(1).force_open(6)
    await listener.wait_for((7, DoorState.OPEN))
    sim.unit(1).close(6)
    await listener.wait_for((7, DoorState.CLOSED))
    assert listener.changes == [(7, DoorState.OPEN), (7, DoorState.CLOSED)]


async def test_a_commanded_open_is_not_reported_but_its_closing_is(bench):
    sim = await bench.simulator()
    listener = Listener()
    driver = await bench.driver(listener=listener, poll_ms=10)
    assert await driver.unlock(2) is OPENED
    sim.unit(1).close(1)
    await listener.wait_for((2, DoorState.CLOSED))
    assert listener.changes == [(2, DoorState.CLOSED)]


async def test_a_door_left_open_stays_open_while_the_others_close(bench):
    sim = await bench.simulator(SimulatedUnit(auto_close_ms=50))
    sim.unit(1).set_fault(3, DoorFault.LEFT_OPEN)
    listener = Listener()
    driver = await bench.driver(listener=listener, poll_ms=10)
    assert await driver.unlock_many([3, 4], sequential=False) == {3: OPENED, 4: OPENED}
    await listener.wait_for((3, DoorState.CLOSED))
    await driver.poll_once()
    assert (await driver.door_states())[4] is DoorState.OPEN
    assert (4, DoorState.CLOSED) not in listener.changes


async def test_unlock_many_one_after_the_other(bench):
    sim = await bench.simulator()
    driver = await bench.driver()
    sim.requests.clear()
    assert await driver.unlock_many([1, 2, 3]) == {1: OPENED, 2: OPENED, 3: OPENED}
    # read, pulse, read - per door
    assert [fc for _, fc, _ in sim.requests] == [2, 5, 2] * 3


async def test_unlock_many_all_at_once(bench):
    sim = await bench.simulator()
    sim.unit(1).set_fault(1, DoorFault.JAMMED)
    sim.unit(1).force_open(2)
    driver = await bench.driver(open_timeout_ms=200)
    sim.requests.clear()
    outcomes = await driver.unlock_many([1, 2, 3, 4], sequential=False)
    assert outcomes == {1: OPENED, 2: JAMMED, 3: ALREADY_OPEN, 4: OPENED}
    codes = [fc for _, fc, _ in sim.requests]
    # one read of every sensor, the three pulses back to back, then reads
    assert codes[:4] == [2, 5, 5, 5]
    assert set(codes[4:]) == {2}
    assert [ch for ch, _ in sim.unit(1).pulses] == [0, 1, 3]


async def test_wiring_across_units_with_separate_inputs_and_inverted_sensors(bench):
    unit1 = SimulatedUnit(1, channels=4)
    unit2 = SimulatedUnit(2, channels=8, open_when="clear")
    await bench.simulator(unit1, unit2)
    wiring = [
        DoorMap(door=1, unit=1, coil=0),
        DoorMap(door=2, unit=1, coil=3),
        DoorMap(door=3, unit=2, coil=5, input=5),
    ]
    driver = await _driver(bench, [1, 2], wiring[:2])
    assert await driver.unlock(2) is OPENED
    assert unit1.fired == [0, 0, 0, 1] and unit2.fired == [0] * 8
    # Unit 2's sensors read clear when open: polarity is per bank, so unit 2 is a bank of its own.
    inverted = await _driver(bench, [3], wiring[2:], open_when="clear")
    assert (await inverted.door_states()) == {3: DoorState.CLOSED}
    assert await inverted.unlock(3) is OPENED
    assert unit2.fired[5] == 1
    assert unit2.inputs()[5] is False  # open reads clear on this board


async def _driver(bench, doors, wiring, **settings):
    from pigeonhole_modbus import ModbusDriver

    config = bench.config(doors=wiring, **settings)
    driver = ModbusDriver(config, doors, Listener())
    await driver.start()
    bench.drivers.append(driver)
    return driver


async def test_a_door_without_wiring_is_no_answer_and_unhealthy(bench):
    sim = await bench.simulator()
    driver = await _driver(bench, [1, 2, 9], [DoorMap(door=1, coil=0), DoorMap(door=2, coil=1)])
    assert await driver.unlock(9) is NO_ANSWER
    assert (await driver.door_states())[9] is DoorState.UNKNOWN
    health = await driver.health()
    assert not health.ok and "doors 9 have no coil" in health.detail
    assert sim.unit(1).fired == [0] * 8


async def test_the_link_goes_down_and_comes_back(bench):
    sim = await bench.simulator()
    driver = await bench.driver()
    assert await driver.unlock(1) is OPENED
    await sim.link_down()
    assert await driver.unlock(2) is NO_ANSWER
    assert set((await driver.door_states()).values()) == {DoorState.UNKNOWN}
    assert not (await driver.health()).ok
    await sim.link_up()
    await eventually(lambda: _healthy(driver))
    assert await driver.unlock(2) is OPENED
    assert sim.unit(1).fired[:2] == [1, 1]


async def _healthy(driver):
    return (await driver.health()).ok


async def test_banks_on_one_line_share_its_bus(bench):
    sim = await bench.simulator(SimulatedUnit(1, 4), SimulatedUnit(2, 4))
    first = await _driver(bench, [1, 2], [DoorMap(door=1, unit=1, coil=0), DoorMap(door=2, unit=1, coil=1)])
    second = await _driver(bench, [1, 2], [DoorMap(door=1, unit=2, coil=0), DoorMap(door=2, unit=2, coil=1)])
    assert first.bus is second.bus  # one port, one lock: their frames cannot collide
    outcomes = await asyncio.gather(first.unlock_many([1, 2], sequential=False), second.unlock(2))
    assert outcomes == [{1: OPENED, 2: OPENED}, OPENED]
    assert sim.unit(1).fired == [1, 1, 0, 0] and sim.unit(2).fired == [0, 1, 0, 0]
    await first.stop()
    bench.drivers.remove(first)
    assert await second.unlock(1) is OPENED  # the line stays open for the bank still on it
    line = second.bus
    await second.stop()
    bench.drivers.remove(second)
    assert not line.connected  # the last bank on the line closed it
    third = await bench.driver(doors=[3])
    assert third.bus is not line
    assert await third.unlock(3) is OPENED
