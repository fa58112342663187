"""A Modbus relay/IO board that runs as a real pymodbus server: over TCP, or RTU on a pty pair.

Tests, benchmarks and demos drive the same driver code a site runs, over a
real socket or serial line. :class:`SimulatedUnit` is one board: relays
(coils), door sensors (discrete inputs), the board-timed pulse of Waveshare
boards, and the faults a real bank shows. :class:`ModbusSimulator` puts
units on one link and can break that link: silence, garbage, the cable
pulled and plugged back.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from pigeonhole_modbus.bus import sleep_until
from pigeonhole_modbus.pdu import OFF, ON, RawWriteCoil

#: The span of coil and input addresses the simulator accepts requests for;
#: the unit itself refuses what it does not have (ILLEGAL_ADDRESS).
SPAN = 0x0500


class DoorFault(enum.StrEnum):
    #: The relay fires but the door stays shut.
    JAMMED = "jammed"
    #: The door opens but nobody closes it (auto-close skips it).
    LEFT_OPEN = "left_open"


class LinkFault(enum.StrEnum):
    #: Requests are lost: nothing happens, nothing comes back.
    NO_ANSWER = "no_answer"
    #: The board acts, its reply is lost: the dangerous case for an unlock.
    REPLY_LOST = "reply_lost"
    #: The board acts, its reply arrives corrupted (bad CRC on RTU, junk on TCP).
    GARBAGE = "garbage"


class SimulatedUnit:
    """One relay/IO board: ``channels`` relays and as many door sensors."""

    def __init__(
        self,
        unit: int = 1,
        channels: int = 8,
        *,
        open_when: str = "set",
        board_pulse: bool = True,
        pulse_base: int = 0x0200,
        cancel_base: int = 0x0400,
        all_relays_coil: int | None = 0x00FF,
        auto_close_ms: int | None = None,
    ) -> None:
        self.unit = unit
        self.channels = channels
        self.open_level = open_when == "set"
        self.board_pulse = board_pulse
        self.pulse_base = pulse_base
        self.cancel_base = cancel_base
        self.all_relays_coil = all_relays_coil
        self.auto_close_ms = auto_close_ms
        self.coils = [False] * channels
        self.doors_open = [False] * channels
        self.faults: dict[int, DoorFault] = {}
        #: How many times each lock was fired (commands that switched its relay on).
        self.fired = [0] * channels
        #: Every write the board carried out: (address, value), for tests.
        self.writes: list[tuple[int, int]] = []
        #: Pulses the board timed itself, as (channel, tenths of a second).
        self.pulses: list[tuple[int, int]] = []
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._closers: dict[int, asyncio.TimerHandle] = {}

    # -- what a person does --------------------------------------------------

    def close(self, channel: int) -> None:
        self._channel(channel)
        self.doors_open[channel] = False
        self._cancel(self._closers, channel)

    def force_open(self, channel: int) -> None:
        """The door opens with no command: pried, or a lock that let go."""
        self._channel(channel)
        self.doors_open[channel] = True

    def set_fault(self, channel: int, fault: DoorFault | str | None) -> None:
        self._channel(channel)
        if fault is None:
            self.faults.pop(channel, None)
        else:
            self.faults[channel] = DoorFault(fault)

    def inputs(self) -> list[bool]:
        """The sensor levels as the board reports them (polarity applied)."""
        return [is_open == self.open_level for is_open in self.doors_open]

    # -- what the Modbus requests do -----------------------------------------

    def read_coils(self, address: int, count: int) -> list[bool] | ExcCodes:
        if address + count > self.channels:
            return ExcCodes.ILLEGAL_ADDRESS
        return self.coils[address : address + count]

    def read_inputs(self, address: int, count: int) -> list[bool] | ExcCodes:
        if address + count > self.channels:
            return ExcCodes.ILLEGAL_ADDRESS
        return self.inputs()[address : address + count]

    def write_coil(self, address: int, value: int) -> ExcCodes | None:
        if address < self.channels or address == self.all_relays_coil:
            if value not in (ON, OFF):
                return ExcCodes.ILLEGAL_VALUE
            channels = range(self.channels) if address == self.all_relays_coil else [address]
            for channel in channels:
                self._cancel(self._timers, channel)
                self._relay(channel, value == ON)
        elif self.board_pulse and 0 <= address - self.pulse_base < self.channels:
            channel = address - self.pulse_base
            if not 1 <= value <= 0xFF:
                return ExcCodes.ILLEGAL_VALUE
            self._cancel(self._timers, channel)
            self._relay(channel, True)
            self.pulses.append((channel, value))
            self._timers[channel] = asyncio.get_running_loop().call_later(
                value / 10, self._pulse_done, channel
            )
        elif self.board_pulse and 0 <= address - self.cancel_base < self.channels:
            channel = address - self.cancel_base
            self._cancel(self._timers, channel)
            self._relay(channel, False)
        else:
            return ExcCodes.ILLEGAL_ADDRESS
        self.writes.append((address, value))
        return None

    def write_coils(self, address: int, values: list[bool]) -> ExcCodes | None:
        if address + len(values) > self.channels:
            return ExcCodes.ILLEGAL_ADDRESS
        for offset, on in enumerate(values):
            self._cancel(self._timers, address + offset)
            self._relay(address + offset, bool(on))
            self.writes.append((address + offset, ON if on else OFF))
        return None

    def _relay(self, channel: int, on: bool) -> None:
        # Every "on" command fires the lock, even on a relay already on: the lock is
        # powered again (a board restarts its pulse) and a door no longer jammed opens.
        if on:
            self.fired[channel] += 1
            if self.faults.get(channel) is not DoorFault.JAMMED:
                self.doors_open[channel] = True
                self._schedule_close(channel)
        self.coils[channel] = on

    def _pulse_done(self, channel: int) -> None:
        self._timers.pop(channel, None)
        self.coils[channel] = False

    def _schedule_close(self, channel: int) -> None:
        if self.auto_close_ms is None or self.faults.get(channel) is DoorFault.LEFT_OPEN:
            return
        self._cancel(self._closers, channel)
        self._closers[channel] = asyncio.get_running_loop().call_later(
            self.auto_close_ms / 1000, self._auto_close, channel
        )

    def _auto_close(self, channel: int) -> None:
        self._closers.pop(channel, None)
        self.doors_open[channel] = False

    @staticmethod
    def _cancel(handles: dict[int, asyncio.TimerHandle], channel: int) -> None:
        handle = handles.pop(channel, None)
        if handle is not None:
            handle.cancel()

    def _channel(self, channel: int) -> None:
        if not 0 <= channel < self.channels:
            raise ValueError(f"unit {self.unit} has channels 0..{self.channels - 1}, not {channel}")

    def shutdown(self) -> None:
        for handles in (self._timers, self._closers):
            for handle in handles.values():
                handle.cancel()
            handles.clear()


def _frame_sizes(function_code: int, count: int) -> tuple[int, int]:
    """RTU request and reply sizes in bytes, for byte timing."""
    if function_code in (1, 2):
        return 8, 5 + (count + 7) // 8
    if function_code == 15:
        return 9 + (count + 7) // 8, 8
    return 8, 8


class ModbusSimulator:
    """Units on one Modbus link, served by pymodbus over TCP or RTU.

    ``baudrate`` (RTU): each reply waits as long as the request and the reply
    would take on a real line at that speed, plus the 3.5-character frame gap
    and ``reply_delay_ms`` (the board's own processing), so a driver's time
    can be compared with the wire time.
    """

    def __init__(
        self,
        units: Iterable[SimulatedUnit] | None = None,
        *,
        baudrate: int | None = None,
        reply_delay_ms: float = 0.0,
    ) -> None:
        self.units = {u.unit: u for u in (units or [SimulatedUnit()])}
        self.baudrate = baudrate
        self.reply_delay_ms = reply_delay_ms
        self.fault: LinkFault | None = None
        #: The function codes the fault hits (None: every request), e.g. {5} for unlocks only.
        self.fault_functions: set[int] | None = None
        #: One-shot faults: garble the next N replies; lose the reply to the next coil write.
        self.garble_next = 0
        self.lose_next_write_reply = False
        #: Requests received, (unit, function code, address).
        self.requests: list[tuple[int, int, int]] = []
        #: RTU bytes of each transaction carried out, (request, reply): the wire time's input.
        self.wire: list[tuple[int, int]] = []
        self.server: ModbusTcpServer | ModbusSerialServer | None = None
        self.framer: FramerType | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.serial_port: str | None = None
        self._pty: PtyPair | None = None
        self._drop_reply = False
        self._garble = False
        self._request = None
        self._received_at = 0.0

    def unit(self, unit: int = 1) -> SimulatedUnit:
        return self.units[unit]

    def set_fault(self, fault: LinkFault | str | None, functions: Iterable[int] | None = None) -> None:
        """Break the link for every request, or only for the given function codes."""
        self.fault = None if fault is None else LinkFault(fault)
        self.fault_functions = None if functions is None else set(functions)

    def count(self, function_code: int, address: int | None = None) -> int:
        """Requests received with this function code (and address)."""
        return sum(
            1 for _, fc, a in self.requests if fc == function_code and (address is None or a == address)
        )

    # -- the pymodbus side ---------------------------------------------------

    def _devices(self) -> list[SimDevice]:
        devices = []
        # Unit 0 stands for every id that is not on the link: a real bus stays silent.
        for unit_id in [0, *self.units]:
            bits = [SimData(0, count=SPAN, values=False, datatype=DataType.BITS)]
            regs = [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]
            devices.append(
                SimDevice(
                    id=unit_id,
                    simdata=(
                        list(bits),
                        [SimData(0, count=SPAN, values=False, datatype=DataType.BITS)],
                        regs,
                        list(regs),
                    ),
                    action=functools.partial(self._action, unit_id),
                )
            )
        return devices

    async def _action(self, unit_id, function_code, start_address, address, _regs, registers, set_values):
        # pymodbus passes the count of 16-bit registers spanned; the request's own count is in its PDU.
        count = getattr(self._request, "count", 0) or 1
        self.requests.append((unit_id, function_code, address))
        unit = self.units.get(unit_id)
        hit = self.fault_functions is None or function_code in self.fault_functions
        fault = self.fault if hit else None
        if unit is None or fault is LinkFault.NO_ANSWER:
            self._drop_reply = True
            return ExcCodes.ILLEGAL_ADDRESS  # never seen: the reply is dropped
        if fault is LinkFault.REPLY_LOST:
            self._drop_reply = True
        if function_code in (5, 15) and self.lose_next_write_reply:
            self.lose_next_write_reply = False
            self._drop_reply = True
        self._garble = fault is LinkFault.GARBAGE
        if self.garble_next > 0:
            self.garble_next -= 1
            self._garble = True
        request, reply = _frame_sizes(function_code, count)
        self.wire.append((request, reply))
        if self.baudrate:
            # The request was on the wire until it arrived here (a pty delivers it at once),
            # then 3.5 characters of silence end it, the board thinks, the reply is sent.
            char = 10 / self.baudrate
            await sleep_until(self._received_at + (request + reply + 3.5) * char + self.reply_delay_ms / 1000)
        elif self.reply_delay_ms:
            await asyncio.sleep(self.reply_delay_ms / 1000)
        if function_code in (1, 2):
            bits = unit.read_coils(address, count) if function_code == 1 else unit.read_inputs(address, count)
            if isinstance(bits, ExcCodes):
                return bits
            for offset, bit in enumerate(bits):
                bit_address = address + offset
                index = bit_address // 16 - start_address
                mask = 1 << (bit_address % 16)
                registers[index] = (registers[index] | mask) if bit else (registers[index] & ~mask)
            return None
        if function_code == 5:
            return unit.write_coil(address, int(set_values[0]))
        if function_code == 15:
            return unit.write_coils(address, [bool(v) for v in set_values])
        return ExcCodes.ILLEGAL_FUNCTION

    def _trace_pdu(self, sending: bool, pdu):
        if not sending:
            self._request = pdu
            self._received_at = time.monotonic()
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if self._drop_reply:
            self._drop_reply = False
            return b""
        if self._garble:
            self._garble = False
            if self.framer is FramerType.RTU:
                return data[:-1] + bytes([data[-1] ^ 0x5A])  # a bad CRC
            return b"\x13\x37" + bytes(reversed(data))  # a wrong transaction id and junk
        return data

    # -- running ---------------------------------------------------------------

    async def start_tcp(self, port: int = 0) -> ModbusSimulator:
        """Listen on 127.0.0.1 (``port`` 0: a free one, then kept across link_down/link_up)."""
        self.framer = FramerType.SOCKET
        self.port = port or _free_port()
        await self._serve_tcp()
        return self

    async def _serve_tcp(self) -> None:
        self.server = ModbusTcpServer(
            self._devices(),
            address=(self.host, self.port),
            custom_pdu=[RawWriteCoil],
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        await self.server.serve_forever(background=True)

    async def start_rtu(
        self, link_dir: Path | None = None, baudrate: int | None = None, *, pty: PtyPair | None = None
    ) -> ModbusSimulator:
        """A socat pty pair: the simulator on one end, ``serial_port`` is the end for the driver.

        ``pty``: an open pair to use instead of making one (the caller closes it).
        """
        self.framer = FramerType.RTU
        if baudrate is not None:
            self.baudrate = baudrate
        if pty is None:
            self._pty = PtyPair(link_dir)
            await self._pty.open()
        else:
            self._pty = pty
        self.serial_port = str(self._pty.driver_end)
        await self._serve_rtu()
        return self

    async def _serve_rtu(self) -> None:
        assert self._pty is not None
        self.server = ModbusSerialServer(
            self._devices(),
            framer=FramerType.RTU,
            port=str(self._pty.board_end),
            baudrate=self.baudrate or 9600,
            custom_pdu=[RawWriteCoil],
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
            reconnect_delay=0,
        )
        await self.server.serve_forever(background=True)

    async def link_down(self) -> None:
        """The cable is pulled: TCP connections drop and nothing listens; the serial port disappears."""
        await self._stop_server()
        if self._pty is not None:
            await self._pty.close()

    async def link_up(self) -> None:
        """The cable is back, on the same address or port name."""
        if self.framer is FramerType.RTU:
            assert self._pty is not None
            await self._pty.open()
            await self._serve_rtu()
        else:
            await self._serve_tcp()

    async def _stop_server(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None
            await asyncio.sleep(0)

    async def stop(self) -> None:
        await self._stop_server()
        if self._pty is not None:
            await self._pty.close()
        for unit in self.units.values():
            unit.shutdown()

    async def __aenter__(self) -> ModbusSimulator:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


class PtyPair:
    """Two linked pseudo-terminals made by socat, named by symlinks in ``directory``.

    The names survive a close and a reopen, as a USB serial adapter's would
    when it is unplugged and plugged back.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or tempfile.mkdtemp(prefix="ph-modbus-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.board_end = self.directory / "board"
        self.driver_end = self.directory / "driver"
        self._process: subprocess.Popen[bytes] | None = None

    async def open(self, timeout: float = 5.0) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (make install puts it in with apt-get)")
        for path in (self.board_end, self.driver_end):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._process = subprocess.Popen(
            [
                socat,
                f"pty,raw,echo=0,link={self.board_end}",
                f"pty,raw,echo=0,link={self.driver_end}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.board_end.exists() and self.driver_end.exists()):
            if self._process.poll() is not None:
                raise RuntimeError(f"socat exited: {self._process.stderr.read().decode(errors='replace')}")
            if loop.time() > deadline:
                raise RuntimeError("socat did not create its ptys in time")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            await asyncio.get_running_loop().run_in_executor(None, self._process.wait, 5)
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
        for path in (self.board_end, self.driver_end):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ModbusBankView:
    """A simulator seen by bank door numbers: what the driver conformance kit drives.

    ``wiring`` maps each door to (unit, channel).
    """

    def __init__(self, sim: ModbusSimulator, wiring: dict[int, tuple[int, int]]) -> None:
        self.sim = sim
        self.wiring = wiring

    def _at(self, door: int) -> tuple[SimulatedUnit, int]:
        unit, channel = self.wiring[door]
        return self.sim.unit(unit), channel

    def door_is_open(self, door: int) -> bool:
        unit, channel = self._at(door)
        return unit.doors_open[channel]

    def unlocks(self, door: int) -> int:
        unit, channel = self._at(door)
        return unit.fired[channel]

    def person_opens(self, door: int) -> None:
        unit, channel = self._at(door)
        unit.force_open(channel)

    def person_closes(self, door: int) -> None:
        unit, channel = self._at(door)
        unit.close(channel)

    def jam(self, door: int, jammed: bool = True) -> None:
        unit, channel = self._at(door)
        unit.set_fault(channel, DoorFault.JAMMED if jammed else None)

    def set_silent(self, silent: bool) -> None:
        self.sim.set_fault(LinkFault.NO_ANSWER if silent else None)

    def corrupt_replies(self, count: int) -> None:
        self.sim.garble_next = count

    def lose_reply_after_unlock(self) -> None:
        self.sim.lose_next_write_reply = True

    async def unplug(self) -> None:
        await self.sim.link_down()

    async def replug(self) -> None:
        await self.sim.link_up()
