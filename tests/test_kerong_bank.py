"""A bank wired to a Kerong KR-CU48 (simulated on a pty pair) through the whole platform:
a deposit opens the door with the documented frame, a person shutting it makes the
package ready, a pried door raises an alert."""

from __future__ import annotations

import asyncio

import pytest
from pigeonhole_kerong import protocol
from pigeonhole_kerong.simulator import Cu48Simulator

from tests.flows import deposit

PLUGINS = """
[plugins.workplace]
hold_hours = 72
[plugins.pin]
[plugins.email]
from_address = "Mailroom <mailroom@example.test>"
[plugins.kerong]
"""


def banks(path: str) -> str:
    config = (
        f'{{ port = "{path}", boards = [3], poll_interval_ms = 20, settle_ms = 0, reply_timeout_ms = 200 }}'
    )
    return f"""
    [[divisions.locations.banks]]
    name = "Lobby"
    driver = "kerong_cu48"
    driver_config = {config}
    compartments = [ {{ size = "s", count = 4 }}, {{ size = "m", count = 2 }} ]
"""


async def eventually(check, what: str, timeout: float = 15.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def cu48():
    sim = Cu48Simulator([3])
    await sim.start_pty()
    yield sim
    await sim.stop()


async def test_a_deposit_opens_a_cu48_door_and_closing_it_makes_the_package_ready(make_tenant, api, cu48):
    t = await make_tenant(plugins=PLUGINS, banks=banks(cu48.path))
    op = api(t, "operator")
    lobby = t.banks["Lobby"]
    package = await deposit(op, lobby, size="m")
    door = package["door"]["door"]
    assert door in (5, 6)  # the two medium compartments come after the four small ones
    assert cu48.door(3, door).open and cu48.door(3, door).unlocks == 1
    assert protocol.cu48_unlock(3, door) in cu48.received
    assert cu48.rejected == []

    cu48.door(3, door).open = False  # the operator shuts the door
    ready = await eventually(
        lambda: _status_is(op, package["id"], "ready"), "the package to be ready once the door is shut"
    )
    assert ready


async def test_a_pried_cu48_door_raises_a_forced_alert(make_tenant, api, cu48):
    t = await make_tenant(plugins=PLUGINS, banks=banks(cu48.path))
    op = api(t, "operator")
    await eventually(lambda: _has_read(cu48), "the driver's first status read")
    cu48.door(3, 2).open = True
    alerts = await eventually(lambda: _alerts(op, "door.forced"), "a door.forced alert")
    assert alerts[0]["door"] == 2 and alerts[0]["bank_id"] == t.banks["Lobby"]


async def _status_is(op, package_id: str, status: str) -> bool:
    return (await op.ok("GET", f"/packages/{package_id}"))["status"] == status


async def _has_read(sim) -> bool:
    return protocol.cu48_status(3) in sim.received


async def _alerts(op, kind: str) -> list:
    return [a for a in await op.ok("GET", "/alerts") if a["kind"] == kind]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"boards": [0]}, "exactly one of `port`"),
        ({"port": "/dev/ttyUSB0", "boards": [0, 0]}, "lists an address twice"),
        ({"port": "/dev/ttyUSB0", "boards": [12]}, "board address 12 is outside 0..9"),
        ({"port": "/dev/ttyUSB0", "door_map": {"7": [0, 49]}}, "door 7 maps to lock 49"),
        ({"port": "/dev/ttyUSB0", "polarity": "nc"}, "polarity"),
    ],
)
async def test_a_bad_cu48_configuration_is_refused_by_name_and_creates_nothing(
    make_tenant, api, cu48, config, words
):
    t = await make_tenant(plugins=PLUGINS, banks=banks(cu48.path))
    admin = api(t, "admin")
    before = await admin.ok("GET", "/banks")
    location = (await admin.ok("GET", "/locations"))[0]["id"]
    refused = await admin.post(
        "/banks",
        json={"location_id": location, "name": "Second", "driver": "kerong_cu48", "driver_config": config},
    )
    assert refused.status_code == 422, refused.text
    assert words in refused.json()["detail"] and "kerong_cu48" in refused.json()["detail"]
    assert await admin.ok("GET", "/banks") == before
