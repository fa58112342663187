"""`pigeonhole kerong-sim`: a driver in this process opens a door of a simulator
running as its own process, and the simulator prints the frame."""

import asyncio
import os
import signal
import sys

import msgspec
import pytest
from pigeonhole.api import UnlockOutcome
from pigeonhole_driverkit import RecordingListener
from pigeonhole_kerong import Cu48Driver

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


@pytest.mark.parametrize("transport", ["pty", "tcp"])
async def test_kerong_sim_serves_a_driver_and_prints_its_frames(transport, tmp_path):
    args = ["kerong-sim", "--no-byte-timing"]
    args += ["--link", str(tmp_path / "ttyKR")] if transport == "pty" else ["--tcp", "0"]
    first, seen = await _run(args, Cu48Driver, {}, 1, "<- 02 00 00 51 03 56")
    assert ("ttyKR" in first) if transport == "pty" else ("127.0.0.1:" in first)
    assert "<- 02 00 00 50 03 55" in seen


def test_bad_board_addresses_are_refused_by_name():
    import subprocess

    result = subprocess.run(
        [PIGEONHOLE, "kerong-sim", "--boards", "0,x"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "board addresses are numbers" in result.stderr
