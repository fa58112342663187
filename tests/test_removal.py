"""Taking expired packages out of the lockers (G5)."""

from __future__ import annotations

from tests.flows import compartment, deposit_and_close, new_email
from tests.support.smtp import body_text, pickup_code
from tests.support.timelines import USPS, events, later, workplace


async def _expired(t, api, smtp, count: int, bank: str = "Lobby") -> list[dict]:
    op, admin = api(t, "operator"), api(t, "admin")
    made = []
    for _ in range(count):
        email = new_email()
        made.append(await deposit_and_close(op, admin, t.banks[bank], email=email, size="s"))
        await smtp.wait_for(email)
    await later(24 * 6)
    for package in made:
        assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "expired"
    return made


async def test_one_call_empties_every_expired_door_of_a_bank(make_tenant, api, smtp):
    t = await make_tenant("rm", plugins=USPS)
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    made = await _expired(t, api, smtp, 2)
    other = await _expired(t, api, smtp, 1, bank="Annex")
    ready_email = new_email()
    still = await deposit_and_close(op, api(t, "admin"), bank, email=ready_email, size="s")

    removal = await op.ok("POST", f"/banks/{bank}/expired/remove")
    assert sorted(r["package_id"] for r in removal["removed"]) == sorted(p["id"] for p in made)
    assert {r["status"] for r in removal["removed"]} == {"at_counter"}
    command = await op.ok("GET", f"/commands/{removal['command_id']}")
    assert sorted(command["doors"]) == sorted(p["door"]["door"] for p in made), "one command, every door"
    for package in made:
        assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "at_counter"
        assert (await compartment(op, bank, package["door"]["door"]))["status"] == "available"
        assert (await events(op, package["id"]))[-1] == "package.removed"
    assert (await op.ok("GET", f"/packages/{still['id']}"))["status"] == "ready", "only expired ones"
    assert (await op.ok("GET", f"/packages/{other[0]['id']}"))["status"] == "expired", "only this bank"

    again = await op.ok("POST", f"/banks/{bank}/expired/remove")
    assert again == {"bank_id": bank, "command_id": None, "removed": [], "failed": []}
    # The freed compartments take new parcels: every small door but the ready one.
    for _ in range(3):
        await deposit_and_close(op, api(t, "admin"), bank, email=new_email(), size="s")


async def test_removing_one_package(make_tenant, api, smtp):
    t = await make_tenant("rm", plugins=workplace())
    op = api(t, "operator")
    [package] = await _expired(t, api, smtp, 1)
    removed = await op.ok("POST", f"/packages/{package['id']}/remove")
    assert (removed["status"], removed["destination"]) == ("in_storage", "shelf")
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{package['id']}/events")]
    assert (
        kinds.index("package.expired")
        < kinds.index("door.removal_requested")
        < kinds.index("package.removed")
    )


async def test_only_an_expired_package_can_be_removed(make_tenant, api, smtp):
    t = await make_tenant("rm", plugins=USPS)
    op = api(t, "operator")
    email = new_email()
    package = await deposit_and_close(op, api(t, "admin"), t.banks["Lobby"], email=email)
    before = await op.ok("GET", f"/packages/{package['id']}")
    events_before = await op.ok("GET", f"/packages/{package['id']}/events")
    response = await op.post(f"/packages/{package['id']}/remove")
    assert response.status_code == 409, response.text
    assert "only an expired package" in response.json()["detail"]
    assert await op.ok("GET", f"/packages/{package['id']}") == before
    assert await op.ok("GET", f"/packages/{package['id']}/events") == events_before, "no door opened"


async def test_removal_needs_packages_write(make_tenant, api, smtp):
    t = await make_tenant("rm", plugins=USPS)
    [package] = await _expired(t, api, smtp, 1)
    kiosk = api(t, "kiosk")
    bank = t.banks["Lobby"]
    assert (await kiosk.post(f"/banks/{bank}/expired/remove")).status_code == 403
    assert (await kiosk.post(f"/packages/{package['id']}/remove")).status_code == 403
    assert (await api(t, "operator").ok("GET", f"/packages/{package['id']}"))["status"] == "expired"
    reader = await api(t, "admin").ok(
        "POST",
        "/api-keys",
        {"name": "reader", "role": "operator", "permissions": ["packages:read", "banks:read"]},
    )
    narrowed = api(t, "operator")
    narrowed.key = reader["key"]
    refused = await narrowed.post(f"/banks/{bank}/expired/remove")
    assert refused.status_code == 403 and "packages:write" in refused.text
    assert (await narrowed.ok("GET", f"/packages/{package['id']}"))["status"] == "expired"


async def test_a_shared_compartment_keeps_the_parcel_still_waiting(make_tenant, api, smtp):
    """E4: two parcels for one person share a door; the first expires, the second still waits."""
    t = await make_tenant("rm", plugins=USPS)
    op, admin, kiosk = api(t, "operator"), api(t, "admin"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    email = new_email()
    first = await deposit_and_close(op, admin, bank, email=email, size="s")
    await smtp.wait_for(email)
    await later(48)
    second = await deposit_and_close(op, admin, bank, email=email, size="s")
    assert second["door"]["door"] == first["door"]["door"], "added to the compartment they already have"
    door = first["door"]["door"]
    mails = await smtp.wait_for(email, 4)  # ready, reminder 1 and 2 of the first, ready of the second
    [second_ready] = [
        m
        for m in mails
        if second["tracking_id"] in m["Subject"] + body_text(m) and "ready" in m["Subject"].lower()
    ]
    await later(72)
    assert (await op.ok("GET", f"/packages/{first['id']}"))["status"] == "expired"
    assert (await op.ok("GET", f"/packages/{second['id']}"))["status"] == "ready"
    assert (await compartment(op, bank, door))["status"] == "occupied", "the second parcel still waits there"

    removal = await op.ok("POST", f"/banks/{bank}/expired/remove")
    assert [r["package_id"] for r in removal["removed"]] == [first["id"]]
    assert (await op.ok("GET", f"/packages/{first['id']}"))["status"] == "at_counter"
    assert (await compartment(op, bank, door))["status"] == "occupied"
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": pickup_code(second_ready)})
    assert picked["door"] == door
    assert (await op.ok("GET", f"/packages/{second['id']}"))["status"] == "picked_up"
    assert (await compartment(op, bank, door))["status"] == "available"
