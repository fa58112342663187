"""Plugin routes live under /ext/{name}, apart from /plugins/{name} (decision 0032).

They used to be mounted under /plugins/{name}/..., where Litestar's router sent
PUT and DELETE /plugins/{name} into the plugin's own router: an admin could not
configure or disable a plugin that has routes (the simulator) and got a bare 404.
"""

from __future__ import annotations

import uuid


async def test_a_plugin_with_routes_is_configured_and_disabled(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    lobby = t.banks["Lobby"]
    doors = f"/ext/simulator/banks/{lobby}/doors"
    assert (await admin.ok("GET", doors))["bank_id"] == lobby

    # The simulator takes no tenant configuration: {} is its whole configuration.
    configured = await admin.put("/plugins/simulator", {"config": {}})
    assert configured.status_code == 200, configured.text
    assert configured.json()["name"] == "simulator" and configured.json()["enabled"] is True
    assert configured.json()["config"] == {}
    assert (await admin.ok("GET", doors))["bank_id"] == lobby, "its routes still answer"

    refused = await admin.put("/plugins/simulator", {"config": {"colour": "red"}})
    assert refused.status_code == 400 and refused.json()["field"] == "colour", refused.text
    listed = {p["name"]: p for p in await admin.ok("GET", "/plugins")}
    assert listed["simulator"]["enabled"] is True and listed["simulator"]["config"] == {}, "nothing changed"

    disabled = await admin.delete("/plugins/simulator")
    assert disabled.status_code == 204, disabled.text
    listed = {p["name"]: p for p in await admin.ok("GET", "/plugins")}
    assert listed["simulator"]["enabled"] is False and listed["simulator"]["config"] is None

    gone = await admin.get(doors)
    assert gone.status_code == 404 and "simulator" in gone.text, "the host refuses a disabled plugin's routes"


async def test_plugin_routes_answer_only_for_a_tenant_that_enabled_it(make_tenant, api):
    a = await make_tenant("a")
    # A manifest cannot leave the simulator out and keep simulated banks, so B turns it off.
    b = await make_tenant("b")
    a_admin, b_admin = api(a, "admin"), api(b, "admin")
    await b_admin.ok("DELETE", "/plugins/simulator", status=204)

    listed = {p["name"]: p for p in await b_admin.ok("GET", "/plugins")}
    assert listed["simulator"]["enabled"] is False
    for bank in (b.banks["Lobby"], a.banks["Lobby"], str(uuid.uuid4())):
        refused = await b_admin.get(f"/ext/simulator/banks/{bank}/doors")
        assert refused.status_code == 404 and "simulator" in refused.text, refused.text
        closed = await b_admin.post(f"/ext/simulator/banks/{bank}/doors/1/close")
        assert closed.status_code == 404 and "simulator" in closed.text, closed.text

    mine = await a_admin.ok("GET", f"/ext/simulator/banks/{a.banks['Lobby']}/doors")
    assert mine["bank_id"] == a.banks["Lobby"] and mine["doors"][0]["door"] == 1, "A still reaches its board"
    # The old mount point is gone: nothing answers there any more.
    old = await a_admin.get(f"/plugins/simulator/banks/{a.banks['Lobby']}/doors")
    assert old.status_code == 404, old.text
