"""Banks and compartments (D1-D3) and what happens when a door does not open."""

from __future__ import annotations

import uuid

from tests.flows import compartment, deposit, deposit_and_close


async def location_id(op) -> str:
    return (await op.ok("GET", "/locations"))[0]["id"]


async def test_create_bank_with_compartments(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    bank = await admin.ok(
        "POST",
        "/banks",
        {
            "location_id": await location_id(admin),
            "name": "Dock",
            "loading": "rear",
            "driver": "simulator",
            "compartments": [
                {"door": 1, "size": "s", "door_height_cm": 40},
                {"door": 2, "size": "xl", "door_height_cm": 20, "refrigerated": True},
            ],
        },
    )
    assert bank["loading"] == "rear"
    assert [(c["door"], c["size"], c["refrigerated"]) for c in bank["compartments"]] == [
        (1, "s", False),
        (2, "xl", True),
    ]
    assert bank["summary"]["available"] == 2


async def test_bank_with_a_driver_the_tenant_did_not_enable(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    before = await admin.ok("GET", "/banks")
    r = await admin.post(
        "/banks", json={"location_id": await location_id(admin), "name": "X", "driver": "modbus"}
    )
    assert r.status_code == 422
    assert "Lock driver 'modbus' is not enabled" in r.json()["detail"]
    r = await admin.post(
        "/banks",
        json={
            "location_id": await location_id(admin),
            "name": "X",
            "driver": "simulator",
            "driver_config": {"unlock_delay_ms": "slow"},
        },
    )
    assert r.status_code == 422
    assert "unlock_delay_ms" in r.json()["detail"]
    assert await admin.ok("GET", "/banks") == before


async def test_duplicate_doors_are_refused(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    r = await admin.post(
        f"/banks/{t.banks['Annex']}/compartments", json={"compartments": [{"door": 1, "size": "s"}]}
    )
    assert r.status_code == 409
    assert "Door 1" in r.json()["detail"]


async def test_out_of_service_and_back(make_tenant, api):
    t = await make_tenant()
    op, bank = api(t, "operator"), t.banks["Annex"]
    comps = (await op.ok("GET", f"/banks/{bank}"))["compartments"]
    first = comps[0]
    out = await op.ok(
        "POST", f"/banks/{bank}/compartments/{first['id']}/service", {"in_service": False, "note": "hinge"}
    )
    assert out["status"] == "out_of_service" and out["status_note"] == "hinge"
    listed = await op.ok("GET", f"/banks/{bank}/compartments?status=out_of_service")
    assert [c["id"] for c in listed] == [first["id"]]
    # Allocation skips it.
    package = await deposit(op, bank, size="s")
    assert package["door"]["door"] == comps[1]["door"]
    back = await op.ok("POST", f"/banks/{bank}/compartments/{first['id']}/service", {"in_service": True})
    assert back["status"] == "available"
    again = await op.post(f"/banks/{bank}/compartments/{first['id']}/service", json={"in_service": True})
    assert again.status_code == 409


async def test_an_occupied_compartment_cannot_leave_service(make_tenant, api):
    t = await make_tenant()
    op, bank = api(t, "operator"), t.banks["Annex"]
    package = await deposit_and_close(op, api(t, "admin"), bank, size="s")
    comp = await compartment(op, bank, package["door"]["door"])
    r = await op.post(f"/banks/{bank}/compartments/{comp['id']}/service", json={"in_service": False})
    assert r.status_code == 409
    assert "occupied" in r.json()["detail"]
    assert (await compartment(op, bank, comp["door"]))["status"] == "occupied"


async def test_unknown_state_filter(make_tenant, api):
    t = await make_tenant()
    r = await api(t, "operator").get(f"/banks/{t.banks['Annex']}/compartments?status=broken")
    assert r.status_code == 422
    assert "broken" in r.json()["detail"]


async def test_jammed_door_takes_the_compartment_out_and_keeps_the_package(make_tenant, api):
    t = await make_tenant()
    op, admin, bank = api(t, "operator"), api(t, "admin"), t.banks["Annex"]
    await admin.ok("PUT", f"/ext/simulator/banks/{bank}/doors/1/fault", {"fault": "jammed"})
    r = await op.post(
        "/packages",
        json={
            "tracking_id": f"J{uuid.uuid4().hex[:6]}",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Alan Turing", "email": "alan@example.test"},
            "bank_id": bank,
        },
    )
    assert r.status_code == 502, r.text
    detail = r.json()
    assert "did not open (jammed)" in detail["detail"]
    door1 = await compartment(op, bank, 1)
    assert door1["status"] == "out_of_service" and "jammed" in door1["status_note"]
    package = (await op.ok("GET", "/packages"))[0]
    assert package["status"] == "received" and package["compartment_id"] is None
    placed = await op.ok("POST", f"/packages/{package['id']}/deposit", {"bank_id": bank})
    assert placed["door"] == {"door": 2, "outcome": "opened"}
    commands = await op.ok("GET", f"/banks/{bank}/commands")
    outcomes = [c["outcome"] for c in commands]
    assert {"1": "jammed"} in outcomes and {"2": "opened"} in outcomes
    events = await op.ok("GET", f"/packages/{package['id']}/events")
    assert "door.unlock_failed" in [e["kind"] for e in events]
    held = await op.ok("GET", f"/banks/{bank}/reservations")
    assert sorted((r["compartment_id"] == door1["id"], r["status"]) for r in held) == [
        (False, "active"),
        (True, "cancelled"),
    ]


async def test_a_bank_with_no_agent_refuses_before_changing_anything(make_tenant, api, services):
    t = await make_tenant()
    op, bank = api(t, "operator"), t.banks["Annex"]
    agent, services.hub.agent = services.hub.agent, None
    try:
        before = await op.ok("GET", f"/banks/{bank}")
        r = await op.post(
            "/packages",
            json={
                "tracking_id": "OFF1",
                "carrier": "UPS",
                "size": "s",
                "recipient": {"name": "A"},
                "bank_id": bank,
            },
        )
        assert r.status_code == 503
        assert "offline" in r.json()["detail"]
        assert await op.ok("GET", "/packages") == []
        assert await op.ok("GET", f"/banks/{bank}") == before
        r = await api(t, "admin").post(f"/banks/{bank}/pickup", json={"code": "123456"})
        assert r.status_code == 503
    finally:
        services.hub.agent = agent
