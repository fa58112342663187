"""One pickup opens every compartment of its recipient (F2), all at once or one at a time; a used code says so."""

from __future__ import annotations

from tests.flows import compartment, new_email
from tests.support.access import PLUGINS, code_for, contact, deposit_to, events, free_compartment_ids


async def test_one_code_opens_every_compartment_of_the_recipient(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    ada = await contact(admin, "Ada Many")
    other = await contact(admin, "Otto Other")
    first, second = await free_compartment_ids(op, bank, 2)
    p1 = await deposit_to(op, admin, bank, contact_id=ada["id"], compartment_id=first)
    p2 = await deposit_to(op, admin, bank, contact_id=ada["id"], compartment_id=second)
    p3 = await deposit_to(op, admin, bank, contact_id=other["id"])
    code1 = await code_for(smtp, ada["email"], p1["tracking_id"])
    code2 = await code_for(smtp, ada["email"], p2["tracking_id"])

    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": code1})
    assert picked["package_id"] == p1["id"] and picked["door"] == p1["door"]["door"]
    assert picked["open_mode"] == "all_at_once" and picked["person"] == "Ada Many"
    doors = {d["door"]: d for d in picked["doors"]}
    assert set(doors) == {p1["door"]["door"], p2["door"]["door"]}, "every door of hers, no other"
    assert all(d["outcome"] == "opened" for d in doors.values())
    assert [p["package_id"] for p in doors[p2["door"]["door"]]["packages"]] == [p2["id"]]

    for package in (p1, p2):
        done = await op.ok("GET", f"/packages/{package['id']}")
        assert (done["status"], done["picked_up_by"], done["pickup_method"]) == ("picked_up", "Ada Many", "pin")
        assert (await compartment(op, bank, package["door"]["door"]))["status"] == "available"
        [event] = [e for e in await events(op, package["id"]) if e["kind"] == "package.picked_up"]
        assert event["data"]["door"] == package["door"]["door"] and event["method"] == "pin"
    assert (await op.ok("GET", f"/packages/{p3['id']}"))["status"] == "ready", "someone else's stays"

    # Her second code died with its package: the answer names the rule, and counts as a wrong code.
    again = await kiosk.post(f"/banks/{bank}/pickup", json={"code": code2})
    assert again.status_code == 403
    detail = again.json()["detail"]
    assert detail.startswith("This code was already used to pick up the package on ")
    assert "4 attempts left" in detail
    reused = await kiosk.post(f"/banks/{bank}/pickup", json={"code": code1})
    assert "already used to pick up the package on" in reused.json()["detail"] and "3 attempts" in reused.json()["detail"]


async def test_public_recipients_are_matched_by_email_and_doors_open_one_at_a_time(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    changed = await admin.ok("PATCH", f"/banks/{bank}", {"settings": {"open_mode": "one_at_a_time"}})
    assert changed["settings"]["open_mode"] == "one_at_a_time"
    email = new_email()
    first, second = await free_compartment_ids(op, bank, 2)
    p1 = await deposit_to(
        op, admin, bank, recipient={"name": "Pat Public", "email": email.upper()}, compartment_id=first
    )
    p2 = await deposit_to(
        op, admin, bank, recipient={"name": "Pat Public", "email": email}, compartment_id=second
    )
    stranger = await deposit_to(op, admin, bank, recipient={"name": "Pat Public", "email": new_email()})
    code = await code_for(smtp, email, p2["tracking_id"])
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": code})
    assert picked["open_mode"] == "one_at_a_time"
    assert [d["door"] for d in picked["doors"]] == [p2["door"]["door"], p1["door"]["door"]], (
        "the presented code's door first"
    )
    [event] = [e for e in await events(op, p1["id"]) if e["kind"] == "package.picked_up"]
    assert event["data"]["open_mode"] == "one_at_a_time" and event["data"]["with_package"] == p2["id"]
    assert (await op.ok("GET", f"/packages/{stranger['id']}"))["status"] == "ready"


async def test_a_door_that_stays_shut_is_reported_and_its_package_waits(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    ada = await contact(admin, "Ada Jam")
    first, second = await free_compartment_ids(op, bank, 2)
    p1 = await deposit_to(op, admin, bank, contact_id=ada["id"], compartment_id=first)
    p2 = await deposit_to(op, admin, bank, contact_id=ada["id"], compartment_id=second)
    code1 = await code_for(smtp, ada["email"], p1["tracking_id"])
    code2 = await code_for(smtp, ada["email"], p2["tracking_id"])
    jammed = p2["door"]["door"]
    await admin.ok("PUT", f"/ext/simulator/banks/{bank}/doors/{jammed}/fault", {"fault": "jammed"})

    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": code1})
    outcomes = {d["door"]: d["outcome"] for d in picked["doors"]}
    assert outcomes == {p1["door"]["door"]: "opened", jammed: "jammed"}
    assert (await op.ok("GET", f"/packages/{p1['id']}"))["status"] == "picked_up"
    assert (await op.ok("GET", f"/packages/{p2['id']}"))["status"] == "ready", "still inside, still hers"
    assert (await compartment(op, bank, jammed))["status"] == "occupied"

    await admin.ok("PUT", f"/ext/simulator/banks/{bank}/doors/{jammed}/fault", {"fault": None})
    later = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": code2})
    assert [d["door"] for d in later["doors"]] == [jammed] and later["outcome"] == "opened"


async def test_packages_sharing_a_compartment_all_leave_with_one_code(make_tenant, api, smtp):
    """E4: the second package joined the first one's compartment; opening it hands over both."""
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    ada = await contact(admin, "Ada Shared")
    p1 = await deposit_to(op, admin, bank, contact_id=ada["id"], size="s")
    p2 = await deposit_to(op, admin, bank, contact_id=ada["id"], size="xs")
    assert p2["door"]["door"] == p1["door"]["door"], "E4 put the second package with the first"
    code = await code_for(smtp, ada["email"], p1["tracking_id"])
    await code_for(smtp, ada["email"], p2["tracking_id"])
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": code})
    [door] = picked["doors"]
    assert {p["package_id"] for p in door["packages"]} == {p1["id"], p2["id"]}
    for package in (p1, p2):
        assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "picked_up"
    comp = await compartment(op, bank, p1["door"]["door"])
    assert comp["status"] == "available" and comp["package_id"] is None


async def test_a_bad_open_mode_is_refused_and_changes_nothing(make_tenant, api):
    t = await make_tenant(plugins=PLUGINS)
    admin = api(t, "admin")
    bank = t.banks["Lobby"]
    before = await admin.ok("GET", f"/banks/{bank}")
    refused = await admin.patch(f"/banks/{bank}", json={"settings": {"open_mode": "sideways"}})
    assert refused.status_code == 422
    assert "open_mode" in refused.json()["detail"]
    assert (await admin.ok("GET", f"/banks/{bank}"))["settings"] == before["settings"]
