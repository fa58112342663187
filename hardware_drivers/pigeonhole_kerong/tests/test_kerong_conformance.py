"""The CU48 (on a pty and over a TCP bridge) and the CU16 pass the driver conformance kit."""

import pytest_asyncio
from pigeonhole.hardware.simulation import BankView
from pigeonhole_driverkit import DriverConformance, Rig
from pigeonhole_kerong import Cu16Driver, Cu48Driver
from pigeonhole_kerong.simulator import Cu16Simulator, Cu48Simulator

FAST = {"poll_interval_ms": 20, "settle_ms": 0, "reply_timeout_ms": 100, "reconnect_ms": 50}


def _bad(extra):
    return [
        ({"boards": [0]}, "exactly one of `port`"),
        ({"port": "/dev/x", "host": "10.0.0.1"}, "exactly one of `port`"),
        ({"port": "/dev/x", "boards": [0, 0]}, "twice"),
        ({"port": "/dev/x", "baudrate": 300}, "baudrate"),
        ({"port": "/dev/x", "door_map": {"1": [3, 1]}}, "not in `boards`"),
    ] + extra


class TestCu48OnAPty(DriverConformance):
    @pytest_asyncio.fixture
    async def rig(self):
        sim = Cu48Simulator([0, 1])
        path = await sim.start_pty()
        # 60 doors: all 48 of board 0, then locks 1-12 of board 1
        doors = list(range(1, 61))
        view = BankView(sim, {d: (0, d) if d <= 48 else (1, d - 48) for d in doors})
        yield Rig(
            Cu48Driver,
            {"port": path, "boards": [0, 1], **FAST},
            doors,
            view,
            bad_configs=_bad(
                [
                    ({"port": "/dev/x", "boards": [10]}, "outside 0..9"),
                    ({"port": "/dev/x", "door_map": {"1": [0, 49]}}, "locks are 1..48"),
                ]
            ),
        )
        await sim.stop()


class TestCu48OverATcpBridge(DriverConformance):
    @pytest_asyncio.fixture
    async def rig(self):
        sim = Cu48Simulator([3])
        port = await sim.start_tcp("127.0.0.1")
        doors = list(range(1, 13))
        yield Rig(
            Cu48Driver,
            {"host": "127.0.0.1", "tcp_port": port, "boards": [3], **FAST},
            doors,
            BankView(sim, {d: (3, d) for d in doors}),
            bad_configs=[
                ({"host": "127.0.0.1", "tcp_port": 70000}, "tcp_port"),
                ({"host": "127.0.0.1", "port": "/dev/x"}, "exactly one of `port`"),
            ],
        )
        await sim.stop()


class TestCu16OnAPty(DriverConformance):
    @pytest_asyncio.fixture
    async def rig(self):
        sim = Cu16Simulator([2, 5], open_when_set=False)
        path = await sim.start_pty()
        # a door map that is not the default: board 5 first, lock 16 of board 2 last
        door_map = {d: (5, d) for d in range(1, 17)} | {17: (2, 16)}
        yield Rig(
            Cu16Driver,
            {
                "port": path,
                "boards": [2, 5],
                "open_when_set": False,
                "door_map": {str(d): list(t) for d, t in door_map.items()},
                **FAST,
            },
            list(door_map),
            BankView(sim, door_map),
            bad_configs=_bad(
                [
                    ({"port": "/dev/x", "boards": [16]}, "outside 0..15"),
                    ({"port": "/dev/x", "door_map": {"1": [0, 17]}}, "locks are 1..16"),
                ]
            ),
        )
        await sim.stop()
