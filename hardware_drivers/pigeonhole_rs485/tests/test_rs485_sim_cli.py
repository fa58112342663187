"""`pigeonhole rs485-sim`: a driver in this process opens a door of a simulator
running as its own process, and the simulator prints the frame."""

import asyncio
import os
import signal
import sys

import msgspec
from pigeonhole.api import UnlockOutcome
from pigeonhole_driverkit import RecordingListener
from pigeonhole_rs485 import Rs485Driver

PIGEONHOLE = os.path.join(os.path.dirname(sys.executable), "pigeonhole")


async def _run(args, driver_cls, extra_config, door, expected_frame):
    proc = await asyncio.create_subprocess_exec(
        PIGEONHOLE,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        config_json = first.split("driver config ", 1)[1]
        raw = {**msgspec.json.decode(config_json), **extra_config, "poll_interval_ms": 0, "settle_ms": 0}
        driver = driver_cls(
            msgspec.convert(raw, driver_cls.Config, strict=False), [door], RecordingListener()
        )
        await driver.start()
        try:
            assert await driver.unlock(door) is UnlockOutcome.OPENED
        finally:
            await driver.stop()
        seen = []
        while expected_frame not in seen:
            seen.append((await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip())
        return first, seen
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 30)


async def test_rs485_sim_serves_a_driver_and_prints_its_frames(tmp_path):
    args = [
        "rs485-sim",
        "--no-byte-timing",
        "--pulse",
        "0",
        "--channels",
        "8",
        "--link",
        str(tmp_path / "tty485"),
    ]
    _, seen = await _run(args, Rs485Driver, {"channels": 8}, 1, "<- 8A 01 01 11 9B")
    assert "<- 80 01 00 33 B2" in seen
