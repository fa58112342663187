"""A Modbus TCP bank through the whole platform, as a site runs it.

A real ``pigeonhole serve`` (no embedded agent), a real ``pigeonhole agent``
process holding the Modbus driver, and the pymodbus simulator on 127.0.0.1:
a remote open fires the board-timed pulse once and reports what the sensor
saw; a jammed door is refused as jammed without a second pulse; a pried door
raises a forced-door alert.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pigeonhole_modbus.simulator import DoorFault, ModbusSimulator, SimulatedUnit

PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))
ADMIN, AGENT = "ph_modbus_site_admin_0123456789", "ph_modbus_site_agent_0123456789"
MANIFEST = """\
slug = "modbus-site"
name = "Modbus site"

[plugins.workplace]
[plugins.pin]
[plugins.modbus]

[[divisions]]
name = "Site"

  [[divisions.locations]]
  name = "Depot"
  address = "1 Loopback Road"
  timezone = "UTC"

    [[divisions.locations.banks]]
    name = "Depot bank"
    loading = "front"
    driver = "modbus"
    driver_config = {{ transport = "tcp", host = "127.0.0.1", port = {port}, poll_ms = 20, timeout_ms = 300, open_timeout_ms = 200 }}
    compartments = [{{ size = "s", count = 8 }}]

[[api_keys]]
name = "admin"
role = "admin"
key = "{admin}"

[[api_keys]]
name = "site"
role = "agent"
key = "{agent}"
"""


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop
        self.popen = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()


async def until(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def site(tmp_path):
    sim = await ModbusSimulator([SimulatedUnit(1, 8)]).start_tcp()
    procs: list[Proc] = []
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_")}
    port = _free_port()
    env = {
        **base,
        "PYTHONUNBUFFERED": "1",
        "PIGEONHOLE_DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
        "PIGEONHOLE_DATA_DIR": str(tmp_path / "data"),
        "PIGEONHOLE_SECRET_KEY": "modbus-site-test-secret",
        "PIGEONHOLE_AGENT": "off",
        "PIGEONHOLE_LOG_LEVEL": "INFO",
        "PORT": str(port),
    }
    tenant = tmp_path / "tenant"
    tenant.mkdir()
    (tenant / "tenant.toml").write_text(MANIFEST.format(port=sim.port, admin=ADMIN, agent=AGENT))
    try:
        for args in (["migrate"], ["tenant", "apply", str(tenant)]):
            done = subprocess.run([PIGEONHOLE, *args], env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
        serve = Proc([PIGEONHOLE, "serve"], env, tmp_path / "serve.log")
        procs.append(serve)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(
            base_url=f"{url}/api/v1/t/modbus-site", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
        ) as client:

            async def healthy():
                try:
                    return (await client.get(f"{url}/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(healthy, f"the server to answer\n{serve.text()[-3000:]}", timeout=60)
            agent_env = {
                **base,
                "PYTHONUNBUFFERED": "1",
                "PIGEONHOLE_URL": url,
                "PIGEONHOLE_TENANT": "modbus-site",
                "PIGEONHOLE_AGENT_KEY": AGENT,
                "PIGEONHOLE_DATA_DIR": str(tmp_path / "site-data"),
            }
            procs.append(Proc([PIGEONHOLE, "agent"], agent_env, tmp_path / "agent.log"))
            bank = (await client.get("/banks")).json()[0]
            doors = {
                c["door"]: c["id"] for c in (await client.get(f"/banks/{bank['id']}/compartments")).json()
            }
            yield sim, client, bank, doors
    finally:
        for proc in reversed(procs):
            proc.stop()
        await sim.stop()


async def _open(client, bank, doors, door):
    return await client.post(
        f"/banks/{bank['id']}/compartments/{doors[door]}/open", json={"reason": "site test"}
    )


async def test_remote_open_jammed_door_and_pried_door_through_a_site_agent(site):
    sim, client, bank, doors = site
    unit = sim.unit(1)

    async def opened():
        response = await _open(client, bank, doors, 3)
        return response if response.status_code == 200 else None

    # Until the agent has connected and started the driver, the bank answers 503.
    response = await until(opened, "the agent to serve the bank")
    assert response.json()["outcome"] == "opened"
    assert unit.fired[2] == 1 and unit.pulses == [(2, 5)]  # one board-timed pulse of 500 ms
    assert unit.doors_open[2]
    command = (await client.get(f"/commands/{response.json()['command_id']}")).json()
    assert command["outcome"] == {"3": "opened"} and command["acked_at"] is not None

    unit.set_fault(3, DoorFault.JAMMED)
    jammed = await _open(client, bank, doors, 4)
    assert jammed.status_code == 502
    assert "jammed" in jammed.text
    assert unit.fired[3] == 1  # never a second pulse
    assert not unit.doors_open[3]

    unit.force_open(6)  # door 7, with no command

    async def forced_alert():
        alerts = (await client.get("/alerts")).json()
        return [a for a in alerts if a["kind"] == "door.forced" and a.get("door") == 7]

    assert await until(forced_alert, "a forced-door alert for door 7")
