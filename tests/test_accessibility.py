"""E10: recipients with accessibility needs get doors 35 to 123 cm from the floor."""

from __future__ import annotations

from tests.flows import close_door, compartment, new_email

NONE_FREE = "No lockers are currently available in selected locker bank"

# The test tenant's Lobby: doors 1-4 size s at 30, 60, 100, 140 cm; 5-7 size m at 50, 90, 130;
# door 8 size l at 60.


def inline(bank_id: str, *, size: str = "s", accessible: bool = True, email: str | None = None, **extra):
    return {
        "carrier": "UPS",
        "size": size,
        "recipient": {"name": "Ada", "email": email or new_email(), "accessible": accessible},
        "bank_id": bank_id,
        **extra,
    }


async def test_accessible_recipient_skips_doors_out_of_reach(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    plain = await op.ok("POST", "/packages", inline(bank, accessible=False))
    assert plain["door"]["door"] == 1, "without needs the smallest first door (30 cm) is fine"
    doors = []
    for _ in range(5):
        package = await op.ok("POST", "/packages", inline(bank))
        assert package["accessible"] is True
        doors.append(package["door"]["door"])
    heights = {c["door"]: c["door_height_cm"] for c in (await op.ok("GET", f"/banks/{bank}"))["compartments"]}
    assert doors == [2, 3, 5, 6, 8]
    assert all(35 <= heights[d] <= 123 for d in doors)


async def test_none_free_answers_the_exact_sentence_and_changes_nothing(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    location = (await admin.ok("GET", "/locations"))[0]["id"]
    bank = await admin.ok(
        "POST",
        "/banks",
        {
            "location_id": location,
            "name": "Tall",
            "driver": "simulator",
            "compartments": [
                {"door": 1, "size": "m", "door_height_cm": 30},
                {"door": 2, "size": "m", "door_height_cm": 124},
                {"door": 3, "size": "s", "door_height_cm": 35},
            ],
        },
    )
    bank_id = bank["id"]
    edge = await op.ok("POST", "/packages", inline(bank_id, size="s"))
    assert edge["door"]["door"] == 3, "35 cm is within reach"
    before = (await op.ok("GET", f"/banks/{bank_id}"), await op.ok("GET", "/packages"))
    r = await op.post("/packages", json=inline(bank_id, size="s"))
    assert r.status_code == 409
    assert r.json()["detail"] == NONE_FREE
    assert (await op.ok("GET", f"/banks/{bank_id}"), await op.ok("GET", "/packages")) == before
    # Someone without needs still gets one of the other doors.
    assert (await op.ok("POST", "/packages", inline(bank_id, accessible=False)))["door"]["door"] == 1


async def test_directory_contact_with_needs_and_no_joining_out_of_reach(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    contact = await admin.ok("POST", "/directory/contacts", {"name": "Grace", "email": new_email()})
    body = {"carrier": "UPS", "size": "s", "recipient_contact_id": contact["id"], "bank_id": bank}
    first = await op.ok("POST", "/packages", {**body, "tracking_id": "A-1"})
    assert first["door"]["door"] == 1
    await close_door(admin, bank, 1)
    # The contact now needs an accessible door: the compartment they have (30 cm) is not joined.
    await admin.ok("PATCH", f"/directory/contacts/{contact['id']}", {"accessibility": "wheelchair"})
    second = await op.ok("POST", "/packages", {**body, "tracking_id": "A-2"})
    assert second["door"]["door"] == 2 and "added_to_existing" not in second["door"]
    assert second["accessible"] is True
    await close_door(admin, bank, 2)
    third = await op.ok("POST", "/packages", {**body, "tracking_id": "A-3"})
    assert third["door"]["door"] == 2 and third["door"]["added_to_existing"] is True


async def test_operator_choice_out_of_reach_is_refused(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    low = await compartment(op, bank, 1)
    before = await op.ok("GET", "/packages")
    r = await op.post("/packages", json=inline(bank, compartment_id=low["id"]))
    assert r.status_code == 409
    assert "between 35 and 123 cm" in r.json()["detail"]
    assert await op.ok("GET", "/packages") == before
