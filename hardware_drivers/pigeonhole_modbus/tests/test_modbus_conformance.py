"""The driver conformance kit, run against the Modbus driver over TCP and over RTU on a pty pair."""

from __future__ import annotations

import pytest_asyncio
from pigeonhole_driverkit import DriverConformance, Rig
from pigeonhole_modbus import ModbusDriver
from pigeonhole_modbus.simulator import ModbusBankView, ModbusSimulator, SimulatedUnit

DOORS = list(range(1, 9))
TIMINGS = {"poll_ms": 20, "timeout_ms": 150, "open_timeout_ms": 150, "reconnect_ms": 50}
BAD_CONFIGS = [
    ({"transport": "ip"}, "transport"),
    ({"pulse_ms": 30}, "pulse_ms"),
    ({"doors": [{"door": 1, "coil": 0}, {"door": 1, "coil": 1}]}, "door 1 is mapped twice"),
    ({"doors": [{"door": 1, "coil": 0}, {"door": 2, "coil": 0}]}, "coil 0 of unit 1 drives two doors"),
    ({"unit": 0}, "unit"),
]


def _view(sim: ModbusSimulator) -> ModbusBankView:
    return ModbusBankView(sim, {door: (1, door - 1) for door in DOORS})


class TestModbusTcp(DriverConformance):
    @pytest_asyncio.fixture
    async def rig(self):
        sim = await ModbusSimulator([SimulatedUnit(1, 8)]).start_tcp()
        yield Rig(
            driver_cls=ModbusDriver,
            config={"transport": "tcp", "host": "127.0.0.1", "port": sim.port, **TIMINGS},
            doors=DOORS,
            board=_view(sim),
            bad_configs=BAD_CONFIGS,
        )
        await sim.stop()


class TestModbusRtu(DriverConformance):
    @pytest_asyncio.fixture
    async def rig(self, tmp_path):
        sim = await ModbusSimulator([SimulatedUnit(1, 8)]).start_rtu(tmp_path / "pty")
        yield Rig(
            driver_cls=ModbusDriver,
            config={"transport": "rtu", "serial_port": sim.serial_port, "baudrate": 19200, **TIMINGS},
            doors=DOORS,
            board=_view(sim),
            bad_configs=BAD_CONFIGS,
        )
        await sim.stop()
