"""Badge pickup by Personnel ID (F1) and department packages in one session (F3, C4)."""

from __future__ import annotations


from tests.support.access import PLUGINS, code_for, contact, deposit_to, events, free_compartment_ids


async def test_a_badge_opens_every_package_of_its_holder(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    bea = await contact(admin, "Bea Badge", personnel_id="E-1042")
    other = await contact(admin, "Otto Other", personnel_id="E-2000")
    first, second = await free_compartment_ids(op, bank, 2)
    p1 = await deposit_to(op, admin, bank, contact_id=bea["id"], compartment_id=first)
    p2 = await deposit_to(op, admin, bank, contact_id=bea["id"], compartment_id=second)
    theirs = await deposit_to(op, admin, bank, contact_id=other["id"])

    # The reader types like a keyboard: different case, a line end.
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"method": "badge", "code": "e-1042\r\n"})
    assert picked["method"] == "badge" and picked["person"] == "Bea Badge"
    assert {d["door"] for d in picked["doors"]} == {p1["door"]["door"], p2["door"]["door"]}
    for package in (p1, p2):
        done = await op.ok("GET", f"/packages/{package['id']}")
        assert (done["status"], done["pickup_method"], done["picked_up_by"]) == ("picked_up", "badge", "Bea Badge")
        [event] = [e for e in await events(op, package["id"]) if e["kind"] == "package.picked_up"]
        assert event["method"] == "badge" and event["data"]["contact_id"] == bea["id"]
    assert (await op.ok("GET", f"/packages/{theirs['id']}"))["status"] == "ready"

    # Nothing left for her: not a guess, no door moves.
    commands_before = await admin.ok("GET", f"/banks/{bank}/commands")
    empty = await kiosk.post(f"/banks/{bank}/pickup", json={"method": "badge", "code": "E-1042"})
    assert empty.status_code == 404
    assert empty.json()["detail"] == "No package is waiting for Bea Badge at locker bank 'Lobby'"
    assert await admin.ok("GET", f"/banks/{bank}/commands") == commands_before


async def test_unknown_and_deactivated_badges_open_nothing(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    gone = await contact(admin, "Gail Gone", personnel_id="E-7")
    package = await deposit_to(op, admin, bank, contact_id=gone["id"])
    await code_for(smtp, gone["email"], package["tracking_id"])

    for left in (4, 3, 2, 1):
        r = await kiosk.post(f"/banks/{bank}/pickup", json={"method": "badge", "code": "NOBODY"})
        assert r.status_code == 403
        assert r.json()["detail"] == (
            f"This badge is not known at this locker bank. {left} attempt{'s' if left > 1 else ''} "
            "left before code entry pauses."
        )
    r = await kiosk.post(f"/banks/{bank}/pickup", json={"method": "badge", "code": "NOBODY"})
    assert r.status_code == 429, "badges meet the same walls as codes"

    await admin.ok("PATCH", f"/directory/contacts/{gone['id']}", {"active": False})
    kiosk2 = api(t, "kiosk2")
    refused = await kiosk2.post(f"/banks/{bank}/pickup", json={"method": "badge", "code": "E-7"})
    assert refused.status_code == 403 and "no longer active" in refused.json()["detail"]
    assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "ready"

    blank = await kiosk2.post(f"/banks/{bank}/pickup", json={"method": "badge", "code": " \n"})
    assert blank.status_code == 422 and "no number" in blank.json()["detail"]


async def test_badges_work_only_where_the_plugin_is_enabled(make_tenant, api):
    t = await make_tenant()
    r = await api(t, "kiosk").post(f"/banks/{t.banks['Lobby']}/pickup", json={"method": "badge", "code": "E-1"})
    assert r.status_code == 422
    assert "Access method 'badge' is not enabled for this tenant" in r.json()["detail"]


async def _department(admin, op, bank):
    key = await contact(admin, "Kim Key", personnel_id="K-1")
    member = await contact(admin, "Max Member", personnel_id="M-1")
    department = await admin.ok(
        "POST",
        "/directory/departments",
        {"name": "Legal", "key_contact_id": key["id"], "member_ids": [key["id"], member["id"]]},
    )
    own = await deposit_to(op, admin, bank, contact_id=member["id"])
    shared = await deposit_to(op, admin, bank, department_id=department["id"])
    return key, member, department, own, shared


async def test_a_member_collects_personal_and_department_packages_in_one_session(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    key, member, department, own, shared = await _department(admin, op, bank)
    code = await code_for(smtp, member["email"], own["tracking_id"])

    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": code})
    packages = {p["package_id"]: p for d in picked["doors"] for p in d["packages"]}
    assert set(packages) == {own["id"], shared["id"]}
    assert packages[shared["id"]]["department"] is True and packages[own["id"]]["department"] is False
    done = await op.ok("GET", f"/packages/{shared['id']}")
    assert (done["status"], done["picked_up_by"]) == ("picked_up", "Max Member")
    [event] = [e for e in await events(op, shared["id"]) if e["kind"] == "package.picked_up"]
    assert event["data"]["department_id"] == department["id"]


async def test_department_settings_decide_who_collects_what(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    await admin.ok("PATCH", f"/banks/{bank}", {"settings": {"department_members_pick_up": False}})
    key, member, department, own, shared = await _department(admin, op, bank)

    # A member, when members may not: only their own package.
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"method": "badge", "code": "M-1"})
    assert [p["package_id"] for d in picked["doors"] for p in d["packages"]] == [own["id"]]
    assert (await op.ok("GET", f"/packages/{shared['id']}"))["status"] == "ready"

    # The key contact always may (C4).
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"method": "badge", "code": "K-1"})
    assert [p["package_id"] for d in picked["doors"] for p in d["packages"]] == [shared["id"]]
    assert picked["person"] == "Kim Key"

    # With department packages off, a session is personal only.
    await admin.ok("PATCH", f"/banks/{bank}", {"settings": {"pickup_department_packages": False}})
    again = await deposit_to(op, admin, bank, department_id=department["id"])
    nothing = await kiosk.post(f"/banks/{bank}/pickup", json={"method": "badge", "code": "K-1"})
    assert nothing.status_code == 404
    assert (await op.ok("GET", f"/packages/{again['id']}"))["status"] == "ready"
    # The department's own code (mailed to the key contact) still opens it.
    code = await code_for(smtp, key["email"], again["tracking_id"])
    assert (await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": code}))["package_id"] == again["id"]


