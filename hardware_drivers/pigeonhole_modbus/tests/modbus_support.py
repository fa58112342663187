"""What the Modbus tests share: a recording listener, a CRC written from the spec, links to simulators."""

from __future__ import annotations

import asyncio
import time
from uuid import uuid4

import pytest
from pigeonhole.api import DoorState
from pigeonhole_modbus import ModbusConfig, ModbusDriver
from pigeonhole_modbus.simulator import ModbusSimulator, SimulatedUnit


class Listener:
    """The host's door listener as a driver sees it; records what it is told."""

    def __init__(self) -> None:
        self.tenant_id = uuid4()
        self.bank_id = uuid4()
        self.changes: list[tuple[int, DoorState]] = []
        self._changed = asyncio.Event()

    async def door_changed(self, door: int, state: DoorState) -> None:
        self.changes.append((door, DoorState(state)))
        self._changed.set()

    async def wait_for(self, change: tuple[int, DoorState], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while change not in self.changes:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"never told {change}; told {self.changes}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


def crc16(frame: bytes) -> bytes:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF), low byte first: independent of pymodbus."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


def rtu(hex_without_crc: str) -> bytes:
    frame = bytes.fromhex(hex_without_crc)
    return frame + crc16(frame)


async def eventually(check, timeout: float = 5.0, step: float = 0.02):
    """Await ``check()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still {result!r} after {timeout}s")
        await asyncio.sleep(step)


class Bench:
    """A simulator on a real link and the drivers built against it; everything stops at the end."""

    def __init__(self, kind: str, tmp_path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.sim: ModbusSimulator | None = None
        self.drivers: list[ModbusDriver] = []

    async def simulator(self, *units: SimulatedUnit, baudrate: int | None = None) -> ModbusSimulator:
        sim = ModbusSimulator(units or [SimulatedUnit()], baudrate=baudrate)
        if self.kind == "tcp":
            await sim.start_tcp()
        else:
            await sim.start_rtu(self.tmp_path / "pty", baudrate=baudrate)
        self.sim = sim
        return sim

    def config(self, **settings) -> ModbusConfig:
        assert self.sim is not None
        if self.kind == "tcp":
            link = {"transport": "tcp", "host": "127.0.0.1", "port": self.sim.port}
        else:
            link = {"transport": "rtu", "serial_port": self.sim.serial_port, "baudrate": 19200}
        settings.setdefault("poll_ms", 0)
        settings.setdefault("timeout_ms", 200)
        settings.setdefault("reconnect_ms", 0)
        return ModbusConfig(**{**link, **settings})

    async def driver(self, doors=range(1, 9), listener: Listener | None = None, **settings) -> ModbusDriver:
        driver = ModbusDriver(self.config(**settings), list(doors), listener or Listener())
        await driver.start()
        self.drivers.append(driver)
        return driver

    async def close(self) -> None:
        for driver in self.drivers:
            await driver.stop()
        if self.sim is not None:
            await self.sim.stop()


@pytest.fixture(name="bench", params=["tcp", "rtu"])
async def bench_fixture(request, tmp_path):
    """A Bench over TCP, then over RTU: import ``bench_fixture`` to use ``bench``."""
    running = Bench(request.param, tmp_path)
    yield running
    await running.close()
