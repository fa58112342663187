"""Byte for byte: what the driver puts on the wire and what the simulator answers.

The frames of HARDWARE.md's Modbus section, written out with their CRCs, are
compared with what the driver writes on a real pty (a socat pair, the test
playing the board on the other end) and with what the simulator answers when
the test plays the master. CRCs of replies the test builds come from
``crc16`` in modbus_support, written from the spec, not from pymodbus.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from modbus_support import Listener, crc16, rtu
from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole_modbus import ModbusConfig, ModbusDriver
from pigeonhole_modbus.simulator import ModbusSimulator, PtyPair, SimulatedUnit

# HARDWARE.md, Modbus RTU relay/IO boards (unit 1, Waveshare "Modbus RTU Relay (D)").
ALL_RELAYS_OFF = "01 05 00 FF 00 00 FD FA"  # FC05 to coil 00FF switches all relays
ALL_RELAYS_ON = "01 05 00 FF FF 00 BC 0A"
RELAY_0_ON = "01 05 00 00 FF 00 8C 3A"  # FC05 write, coil 0000
RELAY_0_OFF = "01 05 00 00 00 00 CD CA"
PULSE_0_500MS = "01 05 02 00 00 05 0C 71"  # FC05 to 0200 + channel, 5 x 100 ms
CANCEL_0 = "01 05 04 00 00 00 CC FA"  # 0400 + channel cancels
READ_8_COILS = "01 01 00 00 00 08 3D CC"  # FC01, coils 0000..0007
READ_8_INPUTS = "01 02 00 00 00 08 79 CC"  # FC02, discrete inputs 0000..0007
READ_INPUT_0 = "01 02 00 00 00 01 B9 CA"


def frame(text: str) -> bytes:
    return bytes.fromhex(text)


def test_the_written_out_frames_carry_correct_crcs():
    for text in (
        ALL_RELAYS_OFF,
        ALL_RELAYS_ON,
        RELAY_0_ON,
        RELAY_0_OFF,
        PULSE_0_500MS,
        CANCEL_0,
        READ_8_COILS,
        READ_8_INPUTS,
        READ_INPUT_0,
    ):
        raw = frame(text)
        assert crc16(raw[:-2]) == raw[-2:], text


class RawEnd:
    """One end of a pty pair, read and written byte for byte by the test."""

    def __init__(self, path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.replied_at = 0.0

    async def read(self, size: int, timeout: float = 3.0) -> tuple[bytes, float]:
        data = b""
        first = 0.0
        deadline = time.monotonic() + timeout
        while len(data) < size:
            try:
                chunk = os.read(self.fd, size - len(data))
            except BlockingIOError:
                chunk = b""
            if chunk and not data:
                first = time.monotonic()
            data += chunk
            if len(data) < size:
                if time.monotonic() > deadline:
                    raise AssertionError(f"got {data.hex(' ')} of {size} bytes")
                await asyncio.sleep(0.0005)
        return data, first

    async def silent(self, wait: float = 0.3) -> bytes:
        await asyncio.sleep(wait)
        try:
            return os.read(self.fd, 256)
        except BlockingIOError:
            return b""

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)
        self.replied_at = time.monotonic()

    async def expect(self, request: str | bytes, reply: bytes | None) -> float:
        """The next frame must be ``request``; answer ``reply``. Returns when the request began."""
        wanted = frame(request) if isinstance(request, str) else request
        got, at = await self.read(len(wanted))
        assert got.hex(" ") == wanted.hex(" ")
        if reply is not None:
            self.write(reply)
        return at

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
async def pty(tmp_path):
    pair = PtyPair(tmp_path / "pty")
    await pair.open()
    yield pair
    await pair.close()


def rtu_config(pair: PtyPair, **settings) -> ModbusConfig:
    return ModbusConfig(
        transport="rtu",
        serial_port=str(pair.driver_end),
        baudrate=9600,
        poll_ms=0,
        timeout_ms=300,
        **settings,
    )


async def test_the_driver_writes_hardwares_frames_with_rtu_gaps(pty):
    board = RawEnd(pty.board_end)
    driver = ModbusDriver(rtu_config(pty), range(1, 9), Listener())
    try:
        start = asyncio.create_task(driver.start())
        await board.expect(ALL_RELAYS_OFF, frame(ALL_RELAYS_OFF))  # the echo
        await board.expect(READ_8_INPUTS, rtu("01 02 01 00"))
        await start

        unlock = asyncio.create_task(driver.unlock(1))
        await board.expect(READ_INPUT_0, rtu("01 02 01 00"))
        replied = board.replied_at
        began = await board.expect(PULSE_0_500MS, frame(PULSE_0_500MS))
        # 3.5 characters of silence at 9600 baud between our reply and the next request
        assert began - replied >= 3.5 * 10 / 9600
        await board.expect(READ_INPUT_0, rtu("01 02 01 01"))  # the sensor now reads open
        assert await unlock is UnlockOutcome.OPENED
    finally:
        await driver.stop()
        board.close()


async def test_the_host_timed_pulse_is_relay_on_then_off(pty):
    board = RawEnd(pty.board_end)
    driver = ModbusDriver(rtu_config(pty, pulse="host", pulse_ms=100, all_relays_coil=None), [1], Listener())
    try:
        start = asyncio.create_task(driver.start())
        await board.expect(RELAY_0_OFF, frame(RELAY_0_OFF))  # one by one: no all-relays coil
        await board.expect(READ_INPUT_0, rtu("01 02 01 00"))
        await start
        unlock = asyncio.create_task(driver.unlock(1))
        await board.expect(READ_INPUT_0, rtu("01 02 01 00"))
        on_at = await board.expect(RELAY_0_ON, frame(RELAY_0_ON))
        await board.expect(READ_INPUT_0, rtu("01 02 01 01"))
        off_at = await board.expect(RELAY_0_OFF, frame(RELAY_0_OFF))
        assert off_at - on_at >= 0.1  # the relay stayed on for the whole pulse
        assert await unlock is UnlockOutcome.OPENED
    finally:
        await driver.stop()
        board.close()


async def test_an_unlock_with_a_bad_crc_echo_is_no_answer_and_is_not_sent_again(pty):
    board = RawEnd(pty.board_end)
    driver = ModbusDriver(rtu_config(pty, open_timeout_ms=0), [1], Listener())
    try:
        start = asyncio.create_task(driver.start())
        await board.expect(ALL_RELAYS_OFF, frame(ALL_RELAYS_OFF))
        await board.expect(READ_INPUT_0, rtu("01 02 01 00"))
        await start
        unlock = asyncio.create_task(driver.unlock(1))
        await board.expect(READ_INPUT_0, rtu("01 02 01 00"))
        corrupted = frame(PULSE_0_500MS)[:-1] + b"\x00"
        await board.expect(PULSE_0_500MS, corrupted)
        await board.expect(READ_INPUT_0, rtu("01 02 01 00"))  # the sensor may still tell: shut
        assert await unlock is UnlockOutcome.NO_ANSWER  # not jammed: the pulse is unconfirmed
        assert await board.silent() == b""  # no second pulse
    finally:
        await driver.stop()
        board.close()


async def test_the_simulator_answers_hardwares_frames_byte_for_byte(pty):
    sim = await ModbusSimulator([SimulatedUnit(1, 8)]).start_rtu(pty=pty)
    master = RawEnd(pty.driver_end)
    unit = sim.unit(1)
    try:
        master.write(frame(READ_8_INPUTS))
        assert (await master.read(6))[0] == rtu("01 02 01 00")

        master.write(frame(PULSE_0_500MS))
        assert (await master.read(8))[0] == frame(PULSE_0_500MS)
        assert unit.coils[0] and unit.doors_open[0] and unit.pulses == [(0, 5)]
        master.write(frame(CANCEL_0))
        assert (await master.read(8))[0] == frame(CANCEL_0)
        assert unit.coils[0] is False and unit.fired[0] == 1

        master.write(frame(ALL_RELAYS_ON))
        assert (await master.read(8))[0] == frame(ALL_RELAYS_ON)
        master.write(frame(READ_8_COILS))
        assert (await master.read(6))[0] == rtu("01 01 01 FF")
        master.write(frame(READ_8_INPUTS))
        assert (await master.read(6))[0] == rtu("01 02 01 FF")  # every door open
        master.write(frame(ALL_RELAYS_OFF))
        assert (await master.read(8))[0] == frame(ALL_RELAYS_OFF)
        master.write(frame(RELAY_0_ON))
        assert (await master.read(8))[0] == frame(RELAY_0_ON)
        master.write(frame(RELAY_0_OFF))
        assert (await master.read(8))[0] == frame(RELAY_0_OFF)
        assert unit.fired == [3, 1, 1, 1, 1, 1, 1, 1]

        # A coil the board does not have: exception 02 (illegal data address).
        master.write(rtu("01 05 00 10 FF 00"))
        assert (await master.read(5))[0] == rtu("01 85 02")
        # A frame with a bad CRC, and a unit not on the line: silence, nothing done.
        master.write(frame(RELAY_0_ON)[:-1] + b"\x3b")
        assert await master.silent() == b""
        master.write(rtu("07 05 00 00 FF 00"))
        assert await master.silent() == b""
        assert unit.fired == [3, 1, 1, 1, 1, 1, 1, 1]
    finally:
        master.close()
        await sim.stop()


async def test_byte_timing_makes_a_reply_take_the_wire_time(pty):
    sim = await ModbusSimulator([SimulatedUnit(1, 8)], baudrate=9600).start_rtu(pty=pty)
    master = RawEnd(pty.driver_end)
    try:
        master.write(frame(RELAY_0_ON))
        sent = master.replied_at
        echo, arrived = await master.read(8)
        assert echo == frame(RELAY_0_ON)
        # 8 bytes out, 8 back, 3.5 characters of frame gap, at 10 bits a byte
        assert arrived - sent >= (8 + 8 + 3.5) * 10 / 9600
    finally:
        master.close()
        await sim.stop()


async def test_modbus_tcp_frames_both_ways():
    sim = await ModbusSimulator([SimulatedUnit(1, 8)]).start_tcp()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        # MBAP: transaction 0x0001, protocol 0, length 6, unit 1; then the PDU of PULSE_0_500MS
        request = frame("00 01 00 00 00 06 01 05 02 00 00 05")
        writer.write(request)
        assert await asyncio.wait_for(reader.readexactly(12), 3) == request
        writer.write(frame("00 02 00 00 00 06 01 02 00 00 00 08"))
        assert await asyncio.wait_for(reader.readexactly(10), 3) == frame("00 02 00 00 00 04 01 02 01 01")
        writer.close()
        await writer.wait_closed()
    finally:
        await sim.stop()

    # What the driver sends over TCP, seen by a plain socket server playing the gateway.
    received: list[bytes] = []

    async def gateway(reader, writer):
        while True:
            header = await reader.readexactly(7)
            body = await reader.readexactly(int.from_bytes(header[4:6], "big") - 1)
            received.append(header + body)
            pdu = body
            if pdu[0] == 2:
                reply = bytes([2, 1, 0])
            else:
                reply = pdu  # FC05 echo
            writer.write(header[:4] + (len(reply) + 1).to_bytes(2, "big") + header[6:7] + reply)
            await writer.drain()

    server = await asyncio.start_server(gateway, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    driver = ModbusDriver(ModbusConfig(port=port, poll_ms=0, open_timeout_ms=0), [1], Listener())
    try:
        await driver.start()
        assert await driver.unlock(1) is UnlockOutcome.JAMMED  # our gateway's door never opens
        assert [r.hex(" ") for r in received] == [
            "00 01 00 00 00 06 01 05 00 ff 00 00",
            "00 02 00 00 00 06 01 02 00 00 00 01",
            "00 03 00 00 00 06 01 02 00 00 00 01",
            "00 04 00 00 00 06 01 05 02 00 00 05",
            "00 05 00 00 00 06 01 02 00 00 00 01",
        ]
        assert (await driver.door_states()) == {1: DoorState.CLOSED}
    finally:
        await driver.stop()
        server.close()
