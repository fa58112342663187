"""Door events and alerts: forced, left open past the bank's timer, closed (issue #4).

In-process, with the embedded agent and the simulated board: the board's door
sensor is driven through the simulator plugin's routes, as a person would
(force a door, leave it open, close it).
"""

from __future__ import annotations

import asyncio
import time

from tests.flows import close_door, compartment, deposit, deposit_and_close


async def force_open(admin, bank_id: str, door: int) -> None:
    await admin.ok("POST", f"/ext/simulator/banks/{bank_id}/doors/{door}/force-open")


async def wait_alerts(op, kind: str, count: int = 1, timeout: float = 15.0, **query) -> list[dict]:
    deadline = time.monotonic() + timeout
    params = "&".join(f"{k}={v}" for k, v in {"status": "all", **query}.items())
    while True:
        found = [a for a in await op.ok("GET", f"/alerts?{params}") if a["kind"] == kind]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {kind} alert: {await op.ok('GET', '/alerts?status=all')}"
        await asyncio.sleep(0.05)


async def test_a_door_opened_without_a_command_raises_a_forced_alert(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    package = await deposit_and_close(op, admin, lobby, size="s")
    door = package["door"]["door"]
    occupied = await compartment(op, lobby, door)

    await force_open(admin, lobby, door)
    [alert] = await op.ok("GET", "/alerts")
    assert alert["kind"] == "door.forced" and alert["open"] is True
    assert (alert["bank_id"], alert["door"]) == (lobby, door)
    assert alert["package_id"] == package["id"] and alert["compartment_id"] == occupied["id"]
    assert alert["message"] == f"Door {door} of bank 'Lobby' with a package inside opened without a command."
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{package['id']}/events")]
    assert kinds[-2:] == ["door.forced", "alert.raised"]

    # An empty compartment pried open is forced too; a commanded open is not.
    empty = next(
        c for c in (await op.ok("GET", f"/banks/{lobby}"))["compartments"] if c["status"] == "available"
    )
    await force_open(admin, lobby, empty["door"])
    assert [a["door"] for a in await op.ok("GET", "/alerts")] == [empty["door"], door]
    await deposit(op, lobby, size="l")
    assert len(await op.ok("GET", "/alerts")) == 2, "a deposit opening its door raises nothing"

    acked = await admin.ok("POST", f"/alerts/{alert['id']}/acknowledge", {"note": "checked, package inside"})
    assert acked["open"] is False and acked["acknowledged_by"] == "admin:admin"
    again = await admin.post(f"/alerts/{alert['id']}/acknowledge", json={})
    assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]
    assert [a["id"] for a in await op.ok("GET", "/alerts")] != [alert["id"]]
    assert alert["id"] in [a["id"] for a in await op.ok("GET", "/alerts?status=acknowledged")]
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{package['id']}/events")]
    assert kinds[-1] == "alert.acknowledged"


async def test_a_door_left_open_past_the_bank_timer_raises_an_alert_cleared_by_closing(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    await admin.ok("PATCH", f"/banks/{lobby}", {"settings": {"door_left_open_seconds": 0.3}})
    package = await deposit(op, lobby, size="s")
    door = package["door"]["door"]

    [alert] = await wait_alerts(op, "door.left_open")
    assert (alert["door"], alert["package_id"]) == (door, package["id"])
    assert alert["message"] == f"Door {door} of bank 'Lobby' has been open for more than 0.3 seconds."
    assert alert["cleared_at"] is None

    await close_door(admin, lobby, door)
    [closed] = [a for a in await op.ok("GET", "/alerts") if a["id"] == alert["id"]]
    assert closed["cleared_at"] is not None, "the door closed"
    assert closed["open"] is True, "still listed until someone acknowledges it"
    assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "ready"

    # Closed in time: nothing.
    await admin.ok("PATCH", f"/banks/{lobby}", {"settings": {"door_left_open_seconds": 30}})
    quick = await deposit_and_close(op, admin, lobby, size="s")
    await admin.ok("PATCH", f"/banks/{lobby}", {"settings": {"door_left_open_seconds": 0.3}})
    await asyncio.sleep(0.6)
    assert [a["door"] for a in await wait_alerts(op, "door.left_open")] == [door]
    assert quick["door"]["door"] != door


async def test_the_left_open_timer_survives_a_server_restart(make_tenant, api, services):
    """The hub forgets its timers when the process goes; the door_status table does not."""
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    await admin.ok("PATCH", f"/banks/{lobby}", {"settings": {"door_left_open_seconds": 0.5}})
    package = await deposit(op, lobby, size="s")
    hub = services.hub
    for timer in hub._door_timers.values():  # the process dies: its timers with it
        timer.cancel()
    hub._door_timers.clear()
    await asyncio.sleep(0.7)
    assert await op.ok("GET", "/alerts?status=all") == [], "nobody was watching"

    assert await hub.rearm_doors() >= 1  # what Services.start does in a new process
    [alert] = await wait_alerts(op, "door.left_open")
    assert alert["door"] == package["door"]["door"]


async def test_alert_routes_refuse_what_they_should(make_tenant, api):
    t = await make_tenant()
    op, kiosk = api(t, "operator"), api(t, "kiosk")
    assert (await kiosk.get("/alerts")).status_code == 403
    bad = await op.get("/alerts?status=sleeping")
    assert bad.status_code == 422 and "open, acknowledged, all" in bad.json()["detail"]
    missing = await op.post("/alerts/00000000-0000-0000-0000-000000000001/acknowledge", json={})
    assert missing.status_code == 404


async def test_plugins_of_the_tenant_observe_alerts_through_the_hook(make_tenant, api):
    """The seam notification channels (#5) plug into: pigeonhole_alert, after commit."""
    from pigeonhole.api import AlertView, hookimpl
    from pigeonhole.domain.context import require_tenant, tenant_context

    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    lobby = t.banks["Lobby"]
    info = await require_tenant(t.slug)
    seen: list[AlertView] = []

    class Observer:
        @hookimpl
        def pigeonhole_alert(self, alert: AlertView) -> None:
            seen.append(alert)

    async with tenant_context(info, write=False) as ctx:
        ctx.plugins.pm.register(Observer(), name="observer")  # as if the tenant enabled it
    door = (await op.ok("GET", f"/banks/{lobby}"))["compartments"][0]["door"]
    await force_open(admin, lobby, door)
    [alert] = seen
    assert (alert.kind, alert.tenant, str(alert.bank_id), alert.door) == ("door.forced", t.slug, lobby, door)
    [listed] = await op.ok("GET", "/alerts")
    assert listed["id"] == str(alert.id) and listed["message"] == alert.message
