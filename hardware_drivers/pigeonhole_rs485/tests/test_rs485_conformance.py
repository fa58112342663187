"""The generic RS485 board driver passes the driver conformance kit on a pty pair."""

import pytest_asyncio
from pigeonhole.hardware.simulation import BankView
from pigeonhole_driverkit import DriverConformance, Rig
from pigeonhole_rs485 import Rs485Driver
from pigeonhole_rs485.simulator import Rs485Simulator

FAST = {"poll_interval_ms": 20, "reply_timeout_ms": 100, "unlock_timeout_ms": 200, "reconnect_ms": 50}


class TestRs485OnAPty(DriverConformance):
    @pytest_asyncio.fixture
    async def rig(self):
        sim = Rs485Simulator([1, 7], channels=12)
        path = await sim.start_pty()
        doors = list(range(1, 25))  # 12 channels of board 1, then 12 of board 7
        view = BankView(sim, {d: (1, d) if d <= 12 else (7, d - 12) for d in doors})
        yield Rig(
            Rs485Driver,
            {"port": path, "boards": [1, 7], "channels": 12, **FAST},
            doors,
            view,
            bad_configs=[
                ({"port": "/dev/x", "boards": [0]}, "outside 1..31"),
                ({"port": "/dev/x", "boards": [32]}, "outside 1..31"),
                ({"port": "/dev/x", "channels": 8, "door_map": {"1": [1, 9]}}, "locks are 1..8"),
                ({"port": "/dev/x", "channels": 0}, "channels"),
                ({"host": "127.0.0.1", "tcp_port": 0}, "tcp_port"),
            ],
        )
        await sim.stop()


class TestRs485WithAFiftyChannelBoardWiredNormallyClosed(DriverConformance):
    @pytest_asyncio.fixture
    async def rig(self):
        sim = Rs485Simulator([31], channels=50, open_when_set=False)
        path = await sim.start_pty()
        doors = list(range(1, 51))
        yield Rig(
            Rs485Driver,
            {"port": path, "boards": [31], "channels": 50, "open_when_set": False, **FAST},
            doors,
            BankView(sim, {d: (31, d) for d in doors}),
            bad_configs=[({"port": "/dev/x", "channels": 65}, "channels")],
        )
        await sim.stop()
