"""Rows of the edge (site agents, enrolment tokens, alerts, door commands) for walks over every route.

``edge_values`` gives a tenant one of each, made the way a user would make
them, and returns their ids under the names the routes use.
"""

from __future__ import annotations

import uuid

from tests.flows import deposit


async def edge_values(api, tenant) -> dict[str, list]:
    admin, op = api(tenant, "admin"), api(tenant, "operator")
    client = admin.client
    lobby = tenant.banks["Lobby"]
    # A walk takes minutes: no door.left_open alert may land in the middle of it.
    await admin.ok("PATCH", f"/banks/{lobby}", {"settings": {"door_left_open_seconds": 86400}})
    used = await admin.ok("POST", "/agents/enrolment-tokens", {"name": f"site-{uuid.uuid4().hex[:8]}"})
    enrolled = await client.post("/api/v1/agents/enrol", json={"tenant": tenant.slug, "token": used["token"]})
    assert enrolled.status_code == 201, enrolled.text
    pending = await admin.ok("POST", "/agents/enrolment-tokens", {"name": "site-later", "bank_id": lobby})
    package = await deposit(op, lobby, size="s")
    [command] = [
        c for c in await op.ok("GET", f"/banks/{lobby}/commands") if c["doors"] == [package["door"]["door"]]
    ]
    free = next(
        c for c in (await op.ok("GET", f"/banks/{lobby}"))["compartments"] if c["status"] == "available"
    )
    await admin.ok("POST", f"/ext/simulator/banks/{lobby}/doors/{free['door']}/force-open")
    [alert] = [a for a in await op.ok("GET", "/alerts") if a["door"] == free["door"]]
    return {
        "agent_id": [enrolled.json()["agent_id"]],
        "token_id": [pending["id"]],
        "alert_id": [alert["id"]],
        "command_id": [command["id"]],
    }
