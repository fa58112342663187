"""Departments (issue #6): members, key contact, packages addressed to a department."""

from __future__ import annotations

import pytest

from tests.flows import close_door, new_email
from tests.support.smtp import body_text, pickup_code


async def _contact(admin, name: str, **fields) -> dict:
    return await admin.ok("POST", "/directory/contacts", {"name": name, **fields})


async def test_members_and_key_contact_can_change(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    ada = await _contact(admin, "Ada Lovelace")
    bob = await _contact(admin, "Bob Kahn")
    cy = await _contact(admin, "Cy Young")
    dept = await admin.ok(
        "POST",
        "/directory/departments",
        {"name": "Finance", "key_contact_id": ada["id"], "member_ids": [ada["id"], bob["id"]]},
    )
    assert dept["key_contact"]["name"] == "Ada Lovelace"
    assert [m["name"] for m in dept["members"]] == ["Ada Lovelace", "Bob Kahn"]
    assert dept["member_count"] == 2

    changed = await admin.ok(
        "POST", f"/directory/departments/{dept['id']}/members", {"add": [cy["id"]], "remove": [ada["id"]]}
    )
    assert [m["name"] for m in changed["members"]] == ["Bob Kahn", "Cy Young"]
    replaced = await admin.ok(
        "PUT", f"/directory/departments/{dept['id']}/members", {"contact_ids": [ada["id"]]}
    )
    assert [m["name"] for m in replaced["members"]] == ["Ada Lovelace"]
    # Membership shows on the contact too.
    assert (await admin.ok("GET", f"/directory/contacts/{ada['id']}"))["departments"] == [
        {"id": dept["id"], "name": "Finance"}
    ]

    key = await admin.ok(
        "PATCH",
        f"/directory/departments/{dept['id']}",
        {"key_contact_id": bob["id"], "name": "Finance & Tax"},
    )
    assert (key["key_contact"]["name"], key["name"]) == ("Bob Kahn", "Finance & Tax")
    unset = await admin.ok("PATCH", f"/directory/departments/{dept['id']}", {"key_contact_id": None})
    assert unset["key_contact"] is None and unset["name"] == "Finance & Tax"

    listed = await admin.ok("GET", "/directory/departments")
    assert [(d["name"], d["member_count"]) for d in listed] == [("Finance & Tax", 1)]

    # Deleting the key contact clears the department's key contact, not the department.
    await admin.ok("PATCH", f"/directory/departments/{dept['id']}", {"key_contact_id": cy["id"]})
    await admin.ok("DELETE", f"/directory/contacts/{cy['id']}", status=204)
    assert (await admin.ok("GET", f"/directory/departments/{dept['id']}"))["key_contact"] is None


async def test_bad_department_changes_are_refused_and_change_nothing(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    ada = await _contact(admin, "Ada Lovelace")
    dept = await admin.ok("POST", "/directory/departments", {"name": "Legal", "member_ids": [ada["id"]]})
    missing = "00000000-0000-4000-8000-000000000000"

    dup = await admin.post("/directory/departments", json={"name": "  legal "})
    assert dup.status_code == 409 and "Legal" in dup.json()["detail"]
    r = await admin.post("/directory/departments", json={"name": "HR", "key_contact_id": missing})
    assert r.status_code == 404 and missing in r.json()["detail"]
    r = await admin.put(f"/directory/departments/{dept['id']}/members", json={"contact_ids": [missing]})
    assert r.status_code == 404
    r = await admin.post("/directory/departments", json={"name": ""})
    assert r.status_code in (400, 422) and "name" in r.text
    r = await admin.patch(f"/directory/departments/{dept['id']}", json={"key_contact_id": missing})
    assert r.status_code == 404

    [only] = await admin.ok("GET", "/directory/departments")
    assert (only["name"], only["member_count"], only["key_contact_id"]) == ("Legal", 1, None)


async def test_a_department_package_reaches_the_key_contact_and_blocks_deletion(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    email = new_email()
    key = await _contact(admin, "Kay Contact", email=email)
    dept = await admin.ok(
        "POST", "/directory/departments", {"name": "Reception", "key_contact_id": key["id"]}
    )
    bank_id = t.banks["Lobby"]
    package = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "TRK-DEPT-1",
            "carrier": "DHL",
            "size": "s",
            "department_id": dept["id"],
            "bank_id": bank_id,
        },
    )
    assert package["department_id"] == dept["id"]
    assert (package["recipient_name"], package["recipient_email"]) == ("Reception", email)
    assert package["recipient_contact_id"] is None
    await close_door(admin, bank_id, package["door"]["door"])
    [mail] = await smtp.wait_for(email)
    assert "TRK-DEPT-1" in body_text(mail)

    refused = await admin.delete(f"/directory/departments/{dept['id']}")
    assert refused.status_code == 409
    assert "still has 1 package waiting" in refused.json()["detail"]
    assert (await admin.ok("GET", f"/directory/departments/{dept['id']}"))["waiting_packages"] == 1
    [listed] = await admin.ok("GET", "/directory/departments")
    assert (listed["waiting_packages"], listed["key_contact"]["name"]) == (1, "Kay Contact")
    assert [p["id"] for p in await op.ok("GET", f"/packages?department_id={dept['id']}")] == [package["id"]]

    await kiosk.ok("POST", f"/banks/{bank_id}/pickup", {"code": pickup_code(mail)})
    await admin.ok("DELETE", f"/directory/departments/{dept['id']}", status=204)
    done = await op.ok("GET", f"/packages/{package['id']}")
    assert done["recipient_name"] == "Reception" and done["status"] == "picked_up"


async def test_a_package_for_a_contact_may_also_name_their_department(make_tenant, api):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    ada = await _contact(admin, "Ada Lovelace", email=new_email())
    dept = await admin.ok("POST", "/directory/departments", {"name": "Research"})
    package = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "TRK-DEPT-2",
            "carrier": "DHL",
            "size": "s",
            "recipient_contact_id": ada["id"],
            "department_id": dept["id"],
        },
    )
    assert (package["recipient_name"], package["department_id"]) == ("Ada Lovelace", dept["id"])
    refused = await admin.delete(f"/directory/departments/{dept['id']}")
    assert refused.status_code == 409 and "1 package" in refused.json()["detail"]


DIRECTORY_MANIFEST = """
[[custom_fields]]
screen = "contacts"
key = "cost_centre"
label = "Cost centre"
type = "text"
required = true

[[departments]]
name = "Finance"
key_contact = "F-1"

[[departments]]
name = "Facilities"

[[contacts]]
name = "Fran Finance"
email = "fran@example.test"
personnel_id = "F-1"
departments = ["Finance"]
custom = { cost_centre = "FIN-1" }

[[contacts]]
name = "Fred Facilities"
personnel_id = "F-2"
departments = ["Facilities", "Finance"]
custom = { cost_centre = "FAC-1" }
"""


async def test_a_manifest_declares_custom_fields_departments_and_contacts(make_tenant, api):
    from pigeonhole.manifests.apply import ManifestError, apply

    from tests.support import tenants

    t = await make_tenant(extra=DIRECTORY_MANIFEST)
    admin = api(t, "admin")
    listed = {d["name"]: d for d in await admin.ok("GET", "/directory/departments")}
    assert set(listed) == {"Finance", "Facilities"}
    finance = await admin.ok("GET", f"/directory/departments/{listed['Finance']['id']}")
    assert finance["key_contact"]["name"] == "Fran Finance"
    assert [m["name"] for m in finance["members"]] == ["Fran Finance", "Fred Facilities"]
    [fred] = await admin.ok("GET", "/directory/contacts?personnel_id=F-2")
    assert fred["custom"] == {"cost_centre": "FAC-1"}
    [field] = await admin.ok("GET", "/directory/custom-fields?screen=contacts")
    assert (field["key"], field["required"]) == ("cost_centre", True)

    assert (await apply(t.folder)).changes == [], "the same manifest again changes nothing"
    # Someone deactivated through the API stays deactivated when the manifest is applied again.
    await admin.ok("PATCH", f"/directory/contacts/{fred['id']}", {"active": False})
    assert (await apply(t.folder)).changes == []
    assert (await admin.ok("GET", f"/directory/contacts/{fred['id']}"))["active"] is False

    edited = DIRECTORY_MANIFEST.replace('key_contact = "F-1"', 'key_contact = "F-2"')
    (t.folder / "tenant.toml").write_text(tenants.manifest(t.slug, extra=edited))
    assert (await apply(t.folder)).changes == ["~ department Finance: key contact F-2"]

    broken = edited.replace('departments = ["Finance"]', 'departments = ["Nowhere"]')
    (t.folder / "tenant.toml").write_text(tenants.manifest(t.slug, extra=broken))
    with pytest.raises(ManifestError, match="Unknown department 'Nowhere'"):
        await apply(t.folder)
    [fran] = await admin.ok("GET", "/directory/contacts?personnel_id=F-1")
    assert [d["name"] for d in fran["departments"]] == ["Finance"], "a broken manifest changes nothing"
