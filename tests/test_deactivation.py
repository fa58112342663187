"""Deactivation (C5): a deactivated contact cannot pick up; their waiting packages are flagged."""

from __future__ import annotations

from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.directory import contacts

from tests.flows import close_door, compartment, new_email
from tests.support.smtp import pickup_code


async def _ready_package_for(t, api, smtp, contact: dict, tracking_id: str) -> tuple[dict, str]:
    admin, op = api(t, "admin"), api(t, "operator")
    bank_id = t.banks["Lobby"]
    package = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": tracking_id,
            "carrier": "UPS",
            "size": "s",
            "recipient_contact_id": contact["id"],
            "bank_id": bank_id,
        },
    )
    await close_door(admin, bank_id, package["door"]["door"])
    mails = await smtp.wait_for(contact["email"])
    return package, pickup_code(mails[-1])


async def test_a_deactivated_contact_cannot_pick_up_until_reactivated(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank_id = t.banks["Lobby"]
    leaver = await admin.ok("POST", "/directory/contacts", {"name": "Lee Leaver", "email": new_email()})
    stayer = await admin.ok("POST", "/directory/contacts", {"name": "Stu Stayer", "email": new_email()})
    package, code = await _ready_package_for(t, api, smtp, leaver, "TRK-LEAVE-1")
    other, _ = await _ready_package_for(t, api, smtp, stayer, "TRK-STAY-1")
    assert (await op.ok("GET", f"/packages/{package['id']}"))["mailroom_flag"] is None

    off = await admin.ok("PATCH", f"/directory/contacts/{leaver['id']}", {"active": False})
    assert off["active"] is False and off["deactivated_at"] is not None

    flagged = await op.ok("GET", f"/packages/{package['id']}")
    assert flagged["mailroom_flag"] == "recipient_deactivated"
    assert [p["id"] for p in await op.ok("GET", "/packages?flagged=true")] == [package["id"]]
    assert other["id"] in [p["id"] for p in await op.ok("GET", "/packages?flagged=false")]
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{package['id']}/events")]
    assert kinds[-1] == "package.flagged"

    commands_before = await admin.ok("GET", f"/banks/{bank_id}/commands")
    refused = await kiosk.post(f"/banks/{bank_id}/pickup", json={"code": code})
    assert refused.status_code == 403
    assert "no longer active" in refused.json()["detail"] and "mailroom" in refused.json()["detail"]
    after = await op.ok("GET", f"/packages/{package['id']}")
    assert after["status"] == "ready" and after["picked_up_at"] is None
    comp = await compartment(op, bank_id, package["door"]["door"])
    assert comp["status"] == "occupied", "nothing opened"
    assert await admin.ok("GET", f"/banks/{bank_id}/commands") == commands_before, "no door command"
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{package['id']}/events")]
    assert kinds[-1] == "pickup.refused"

    on = await admin.ok("PATCH", f"/directory/contacts/{leaver['id']}", {"active": True})
    assert on["active"] is True and on["deactivated_at"] is None
    assert (await op.ok("GET", f"/packages/{package['id']}"))["mailroom_flag"] is None
    picked = await kiosk.ok("POST", f"/banks/{bank_id}/pickup", {"code": code})
    assert picked["package_id"] == package["id"] and picked["outcome"] == "opened"


async def test_a_package_received_for_a_deactivated_contact_is_flagged_at_once(make_tenant, api):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    gone = await admin.ok(
        "POST", "/directory/contacts", {"name": "Gone Already", "email": new_email(), "active": False}
    )
    package = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": "TRK-GONE", "carrier": "UPS", "size": "s", "recipient_contact_id": gone["id"]},
    )
    assert package["mailroom_flag"] == "recipient_deactivated"
    assert [p["id"] for p in await op.ok("GET", "/packages?flagged=true")] == [package["id"]]
    # Picked-up packages are history: deactivation flags only what still waits.


async def test_sync_deactivates_contacts_missing_from_the_source_and_flags_their_packages(make_tenant, api):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    kept = await admin.ok("POST", "/directory/contacts", {"name": "Kept", "personnel_id": "K-1"})
    missing = await admin.ok("POST", "/directory/contacts", {"name": "Missing", "personnel_id": "M-1"})
    package = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": "TRK-SYNC", "carrier": "UPS", "size": "s", "recipient_contact_id": missing["id"]},
    )
    rows = [
        contacts.ContactIn(name="Kept Renamed", personnel_id="k-1"),
        contacts.ContactIn(name="New", personnel_id="N-1"),
    ]
    async with tenant_context(t.slug) as ctx:
        result = await contacts.upsert_many(ctx, rows, deactivate_missing=True)
    assert (result.created, result.updated, result.deactivated, result.errors) == (1, 1, 1, [])
    everyone = {c["name"]: c for c in await admin.ok("GET", "/directory/contacts")}
    assert set(everyone) == {"Kept Renamed", "Missing", "New"}
    assert everyone["Kept Renamed"]["id"] == kept["id"]
    assert everyone["Missing"]["active"] is False and everyone["New"]["active"] is True
    assert (await op.ok("GET", f"/packages/{package['id']}"))["mailroom_flag"] == "recipient_deactivated"


async def test_bulk_upsert_is_all_or_nothing_with_errors_per_row(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok("POST", "/directory/departments", {"name": "Legal"})
    rows = [
        contacts.ContactIn(name="Fine", personnel_id="F-1", departments=["legal", "LEGAL"]),
        contacts.ContactIn(name="Twin A", personnel_id="T-1"),
        contacts.ContactIn(name="Twin B", personnel_id="t-1"),
        contacts.ContactIn(name="Bad Mail", email="nope"),
        contacts.ContactIn(name="Lost", departments=["Nowhere"]),
    ]
    async with tenant_context(t.slug) as ctx:
        result = await contacts.upsert_many(ctx, rows)
    by_row = {e.row: e.message for e in result.errors}
    assert set(by_row) == {2, 3, 4}
    assert "appears twice" in by_row[2] and "rows 2 and 3" in by_row[2]
    assert "nope" in by_row[3]
    assert "Unknown department 'Nowhere'" in by_row[4]
    assert await admin.ok("GET", "/directory/contacts") == [], "nothing written"

    async with tenant_context(t.slug) as ctx:
        dry = await contacts.upsert_many(ctx, rows[:2], dry_run=True)
    assert (dry.created, dry.errors) == (2, [])
    assert await admin.ok("GET", "/directory/contacts") == [], "a dry run writes nothing"
    async with tenant_context(t.slug) as ctx:
        done = await contacts.upsert_many(ctx, rows[:2])
    assert done.created == 2
    [fine] = await admin.ok("GET", "/directory/contacts?personnel_id=F-1")
    assert [d["name"] for d in fine["departments"]] == ["Legal"]


async def test_bulk_upsert_matches_by_personnel_id_then_email_and_replaces_values(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok(
        "POST",
        "/directory/custom-fields",
        {"screen": "contacts", "key": "site", "label": "Site", "type": "text"},
    )
    await admin.ok("POST", "/directory/departments", {"name": "Legal"})
    await admin.ok("POST", "/directory/departments", {"name": "Sales"})
    first = [
        contacts.ContactIn(
            name="Pat One", personnel_id="P-1", custom={"site": "North"}, departments=["Legal"]
        ),
        contacts.ContactIn(name="Mel Two", email="mel@example.test", custom={"site": "South"}),
    ]
    async with tenant_context(t.slug) as ctx:
        assert (await contacts.upsert_many(ctx, first)).created == 2
    async with tenant_context(t.slug) as ctx:
        again = await contacts.upsert_many(ctx, first)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2), "the same rows change nothing"

    second = [
        contacts.ContactIn(
            name="Pat Renamed", personnel_id="p-1", custom={"site": "East"}, departments=["Sales"]
        ),
        contacts.ContactIn(
            name="Mel Two", email="MEL@example.test", phone="+33 1 23", custom={"site": "West"}
        ),
    ]
    async with tenant_context(t.slug) as ctx:
        result = await contacts.upsert_many(ctx, second)
    assert (result.created, result.updated) == (0, 2)
    everyone = {c["name"]: c for c in await admin.ok("GET", "/directory/contacts")}
    assert set(everyone) == {"Pat Renamed", "Mel Two"}
    assert everyone["Pat Renamed"]["custom"] == {"site": "East"}
    assert [d["name"] for d in everyone["Pat Renamed"]["departments"]] == ["Sales"]
    assert (everyone["Mel Two"]["phone"], everyone["Mel Two"]["custom"]) == ("+33 1 23", {"site": "West"})
    assert [c["name"] for c in await admin.ok("GET", "/directory/contacts?custom.site=west")] == ["Mel Two"]
