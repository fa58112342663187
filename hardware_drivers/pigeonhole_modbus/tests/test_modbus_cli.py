"""``pigeonhole modbus-sim``: boards a demo or a trial bank can drive, in a process of their own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from modbus_support import Listener, eventually
from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole_modbus import ModbusConfig, ModbusDriver

PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))


async def _first_line(process: subprocess.Popen) -> str:
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, process.stdout.readline)


async def test_a_driver_opens_and_sees_doors_close_on_the_simulator_process():
    process = subprocess.Popen(
        [PIGEONHOLE, "modbus-sim", "--tcp", "0", "--units", "1,2", "--auto-close", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    driver = None
    try:
        assert (await _first_line(process)).strip() == "modbus-sim: units 1, 2, 8 relays each"
        line = await _first_line(process)
        match = re.fullmatch(
            r'driver_config = \{ transport = "tcp", host = "127\.0\.0\.1", port = (\d+), unit = 1 \}\n', line
        )
        assert match, line
        listener = Listener()
        driver = ModbusDriver(ModbusConfig(port=int(match.group(1)), unit=2, poll_ms=20), [1, 2], listener)
        await driver.start()
        assert await driver.unlock(2) is UnlockOutcome.OPENED
        await listener.wait_for((2, DoorState.CLOSED))  # the simulated person shut it
        assert await eventually(lambda: _healthy(driver))
    finally:
        if driver is not None:
            await driver.stop()
        process.terminate()
        assert process.wait(10) == 0


async def _healthy(driver):
    return (await driver.health()).ok


async def test_rtu_on_a_pty_pair_with_the_printed_configuration(tmp_path):
    process = subprocess.Popen(
        [PIGEONHOLE, "modbus-sim", "--link", str(tmp_path / "line"), "--baudrate", "19200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    driver = None
    try:
        await _first_line(process)
        line = await _first_line(process)
        assert line == (
            f'driver_config = {{ transport = "rtu", serial_port = "{tmp_path / "line" / "driver"}", '
            "baudrate = 19200, unit = 1 }\n"
        )
        driver = ModbusDriver(
            ModbusConfig(
                transport="rtu", serial_port=str(tmp_path / "line" / "driver"), baudrate=19200, poll_ms=0
            ),
            [1, 2, 3],
            Listener(),
        )
        await driver.start()
        assert await driver.unlock(3) is UnlockOutcome.OPENED
        assert (await driver.door_states()) == {1: DoorState.CLOSED, 2: DoorState.CLOSED, 3: DoorState.OPEN}
    finally:
        if driver is not None:
            await driver.stop()
        process.terminate()
        assert process.wait(10) == 0


def test_the_command_refuses_bad_options():
    run = [PIGEONHOLE, "modbus-sim"]
    done = subprocess.run([*run, "--tcp", "0", "--link", "/tmp/x"], capture_output=True, text=True)
    assert done.returncode == 2 and "--tcp and --link exclude each other" in done.stderr
    done = subprocess.run([*run, "--tcp", "0", "--units", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "unit ids are 1..247, got '0'" in done.stderr
