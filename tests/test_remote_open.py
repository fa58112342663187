"""Remote open by an administrator (D4): the same door path, recorded in the chain of custody."""

from __future__ import annotations

from tests.flows import compartment, deposit_and_close


async def set_fault(admin, bank_id: str, door: int, fault: str | None) -> None:
    await admin.ok("PUT", f"/ext/simulator/banks/{bank_id}/doors/{door}/fault", {"fault": fault})


async def test_an_administrator_opens_a_package_compartment_with_a_reason(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    package = await deposit_and_close(op, admin, lobby, size="s")
    comp = await compartment(op, lobby, package["door"]["door"])

    opened = await admin.ok(
        "POST", f"/banks/{lobby}/compartments/{comp['id']}/open", {"reason": "Recipient uses a wheelchair"}
    )
    assert (opened["door"], opened["outcome"], opened["package_id"]) == (
        comp["door"],
        "opened",
        package["id"],
    )

    events = await op.ok("GET", f"/packages/{package['id']}/events")
    requested, done = [e for e in events if e["kind"].startswith("door.remote")]
    assert requested["kind"] == "door.remote_open_requested" and requested["actor"] == "admin:admin"
    assert done["kind"] == "door.remote_opened"
    assert done["data"]["reason"] == "Recipient uses a wheelchair"
    assert done["data"]["command_id"] == str(opened["command_id"]) and done["data"]["outcome"] == "opened"

    command = await op.ok("GET", f"/commands/{opened['command_id']}")
    assert command["kind"] == "remote_open" and command["requested_by"] == "admin:admin"
    assert command["acked_at"] is not None and command["outcome"] == {str(comp["door"]): "opened"}
    assert command["state"] == "done"
    assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "ready", (
        "opening is not a handover"
    )
    assert await op.ok("GET", "/alerts") == [], "a commanded open is not forced"


async def test_an_empty_compartment_opens_too_and_a_jammed_door_is_reported(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    empty = next(
        c for c in (await op.ok("GET", f"/banks/{lobby}"))["compartments"] if c["status"] == "available"
    )
    url = f"/banks/{lobby}/compartments/{empty['id']}/open"
    opened = await op.ok("POST", url, {"reason": "cleaning"})  # operators may open doors too
    assert opened["package_id"] is None and opened["outcome"] == "opened"

    await set_fault(admin, lobby, empty["door"], "jammed")
    failed = await admin.post(url, json={"reason": "second try"})
    assert failed.status_code == 502, failed.text
    assert failed.json()["outcome"] == "jammed" and "did not open (jammed)" in failed.json()["detail"]
    [jammed] = [c for c in await op.ok("GET", "/commands") if c["id"] == failed.json()["command_id"]]
    assert jammed["outcome"] == {str(empty["door"]): "jammed"} and jammed["state"] == "done"


async def test_remote_open_refuses_without_permission_reason_or_compartment(make_tenant, api):
    t = await make_tenant()
    admin, kiosk = api(t, "admin"), api(t, "kiosk")
    lobby, annex = t.banks["Lobby"], t.banks["Annex"]
    comp = (await admin.ok("GET", f"/banks/{lobby}"))["compartments"][0]
    url = f"/banks/{lobby}/compartments/{comp['id']}/open"
    refused = await kiosk.post(url, json={"reason": "let me in"})
    assert refused.status_code == 403 and "doors:open" in refused.json()["detail"]
    blank = await admin.post(url, json={"reason": "   "})
    assert blank.status_code == 422 and "needs a reason" in blank.json()["detail"]
    no_body = await admin.post(url, json={})
    assert no_body.status_code == 400 and "reason" in no_body.text
    wrong_bank = await admin.post(f"/banks/{annex}/compartments/{comp['id']}/open", json={"reason": "x"})
    assert wrong_bank.status_code == 404
    assert await admin.ok("GET", "/commands") == [], "no refusal sent anything to a door"
