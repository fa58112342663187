"""D5: a compartment dedicated to one contact or one department."""

from __future__ import annotations

import uuid

from tests.flows import close_door, compartment, deposit, new_email


async def people(admin):
    tag = uuid.uuid4().hex[:6]
    grace = await admin.ok("POST", "/directory/contacts", {"name": f"Grace {tag}", "email": new_email()})
    alan = await admin.ok("POST", "/directory/contacts", {"name": f"Alan {tag}", "email": new_email()})
    legal = await admin.ok("POST", "/directory/departments", {"name": f"Legal {tag}"})
    return grace, alan, legal


def for_contact(bank, contact, tracking, size="s", **extra):
    return {
        "tracking_id": tracking,
        "carrier": "UPS",
        "size": size,
        "recipient_contact_id": contact["id"],
        "bank_id": bank,
        **extra,
    }


async def test_dedicated_compartment_takes_only_its_owners_packages(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    grace, alan, _ = await people(admin)
    door4 = await compartment(op, bank, 4)
    dedicated = await admin.ok(
        "PATCH", f"/banks/{bank}/compartments/{door4['id']}", {"dedicated_contact_id": grace["id"]}
    )
    assert dedicated["dedicated_contact_id"] == grace["id"]
    view = await op.ok("GET", f"/banks/{bank}")
    assert next(c for c in view["compartments"] if c["door"] == 4)["dedicated_contact_id"] == grace["id"]

    # Others fill doors 1-3 and then go to a medium one, never to door 4.
    doors = [(await deposit(op, bank, size="s"))["door"]["door"] for _ in range(4)]
    assert doors == [1, 2, 3, 5]
    alans = await op.ok("POST", "/packages", for_contact(bank, alan, "AL-1"))
    assert alans["door"]["door"] == 6

    # Grace's package goes to her compartment first.
    first = await op.ok("POST", "/packages", for_contact(bank, grace, "GR-1", size="xs"))
    assert first["door"]["door"] == 4
    await close_door(admin, bank, 4)
    # Hers even where the bank does not add to existing compartments: it is hers.
    await admin.ok("PATCH", f"/banks/{bank}", {"settings": {"add_to_existing": False}})
    second = await op.ok("POST", "/packages", for_contact(bank, grace, "GR-2", size="s"))
    assert second["door"] == {"door": 4, "outcome": "opened", "added_to_existing": True}


async def test_operator_cannot_put_someone_elses_package_there(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    grace, alan, legal = await people(admin)
    door1 = await compartment(op, bank, 1)
    await admin.ok(
        "PATCH", f"/banks/{bank}/compartments/{door1['id']}", {"dedicated_department_id": legal["id"]}
    )
    before = await op.ok("GET", "/packages")
    r = await op.post("/packages", json=for_contact(bank, alan, "AL-1", compartment_id=door1["id"]))
    assert r.status_code == 409
    assert f"dedicated to department {legal['name']}" in r.json()["detail"]
    assert await op.ok("GET", "/packages") == before
    # The department's packages go there.
    package = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": "L-1", "carrier": "UPS", "size": "s", "department_id": legal["id"], "bank_id": bank},
    )
    assert package["door"]["door"] == 1


async def test_bad_dedications_are_refused(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    grace, _, legal = await people(admin)
    door1 = await compartment(op, bank, 1)
    path = f"/banks/{bank}/compartments/{door1['id']}"
    both = {"dedicated_contact_id": grace["id"], "dedicated_department_id": legal["id"]}
    r = await admin.patch(path, json=both)
    assert r.status_code == 422 and "not both" in r.json()["detail"]
    r = await admin.patch(path, json={"dedicated_contact_id": str(uuid.uuid4())})
    assert r.status_code == 404
    r = await api(t, "kiosk").patch(path, json={"dedicated_contact_id": grace["id"]})
    assert r.status_code == 403, "dedicating needs banks:write"
    assert (await compartment(op, bank, 1))["dedicated_contact_id"] is None
    # Null clears it.
    await admin.ok("PATCH", path, {"dedicated_contact_id": grace["id"]})
    cleared = await admin.ok("PATCH", path, {})
    assert cleared["dedicated_contact_id"] is None and cleared["dedicated_department_id"] is None


async def test_deleting_the_owner_clears_the_dedication(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    grace, _, legal = await people(admin)
    door1, door2 = await compartment(op, bank, 1), await compartment(op, bank, 2)
    comps = f"/banks/{bank}/compartments"
    await admin.ok("PATCH", f"{comps}/{door1['id']}", {"dedicated_contact_id": grace["id"]})
    await admin.ok("PATCH", f"{comps}/{door2['id']}", {"dedicated_department_id": legal["id"]})
    await admin.ok("DELETE", f"/directory/contacts/{grace['id']}")
    await admin.ok("DELETE", f"/directory/departments/{legal['id']}")
    for door in (1, 2):
        comp = await compartment(op, bank, door)
        assert comp["dedicated_contact_id"] is None and comp["dedicated_department_id"] is None
    assert (await deposit(op, bank, size="s"))["door"]["door"] == 1
