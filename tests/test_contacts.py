"""Contacts (issue #6): add, edit, delete, search; Personnel ID unique in the tenant."""

from __future__ import annotations

import pytest

from tests.flows import new_email
from tests.support.smtp import body_text


async def _contact(admin, name: str, **fields) -> dict:
    return await admin.ok("POST", "/directory/contacts", {"name": name, **fields})


async def test_add_edit_and_delete_a_contact(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    created = await _contact(
        admin,
        "Grace Hopper",
        email="grace@example.test",
        phone="+1 555 0100",
        personnel_id="P-100",
        employee_id="E-9",
        accessibility="wheelchair user: lower compartments",
        language="fr",
    )
    assert created["active"] is True and created["deactivated_at"] is None
    assert (created["personnel_id"], created["employee_id"], created["language"]) == ("P-100", "E-9", "fr")
    assert created["departments"] == [] and created["custom"] == {}

    edited = await admin.ok(
        "PATCH", f"/directory/contacts/{created['id']}", {"email": "g.hopper@example.test", "phone": None}
    )
    assert edited["email"] == "g.hopper@example.test" and edited["phone"] is None
    assert edited["name"] == "Grace Hopper", "fields not in the body are left alone"
    fetched = await admin.ok("GET", f"/directory/contacts/{created['id']}")
    assert fetched["email"] == "g.hopper@example.test"

    await admin.ok("DELETE", f"/directory/contacts/{created['id']}", status=204)
    gone = await admin.get(f"/directory/contacts/{created['id']}")
    assert gone.status_code == 404


async def test_personnel_id_is_unique_in_the_tenant(make_tenant, api):
    t = await make_tenant()
    other = await make_tenant()
    admin = api(t, "admin")
    first = await _contact(admin, "Alan Turing", personnel_id="P-7")
    clash = await admin.post("/directory/contacts", json={"name": "Alan Two", "personnel_id": " p-7 "})
    assert clash.status_code == 409
    detail = clash.json()["detail"]
    assert "P-7" in detail and "Alan Turing" in detail and first["id"] in detail
    names = [c["name"] for c in await admin.ok("GET", "/directory/contacts")]
    assert names == ["Alan Turing"], "the refused contact was not written"

    second = await _contact(admin, "Joan Clarke", personnel_id="P-8")
    renamed = await admin.patch(f"/directory/contacts/{second['id']}", json={"personnel_id": "P-7"})
    assert renamed.status_code == 409 and "Alan Turing" in renamed.json()["detail"]
    assert (await admin.ok("GET", f"/directory/contacts/{second['id']}"))["personnel_id"] == "P-8"

    # Another tenant has its own Personnel IDs.
    await _contact(api(other, "admin"), "Alan Elsewhere", personnel_id="P-7")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "X", "email": "not-an-email"}, "email"),
        ({"name": "X", "language": "de"}, "language"),
        ({"name": "X", "colour": "blue"}, "colour"),
        ({"name": "X", "department_ids": ["not-a-uuid"]}, "department_ids"),
        ({"name": "X", "custom": {"nope": 1}}, "nope"),
    ],
)
async def test_bad_contacts_are_refused_naming_the_field(make_tenant, api, body, field):
    t = await make_tenant()
    admin = api(t, "admin")
    r = await admin.post("/directory/contacts", json=body)
    assert r.status_code in (400, 422), r.text
    assert field in r.text
    assert await admin.ok("GET", "/directory/contacts") == []


async def test_unknown_department_is_404_and_nothing_is_written(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    missing = "00000000-0000-4000-8000-000000000000"
    r = await admin.post("/directory/contacts", json={"name": "X", "department_ids": [missing]})
    assert r.status_code == 404 and missing in r.json()["detail"]
    assert await admin.ok("GET", "/directory/contacts") == []


async def test_search_by_name_family_name_email_personnel_id_and_department(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    legal = await admin.ok("POST", "/directory/departments", {"name": "Legal"})
    ada = await _contact(
        admin, "Ada Lovelace", email="ada@analytical.test", personnel_id="AL-1", department_ids=[legal["id"]]
    )
    eloise = await _contact(admin, "Éloïse Dupont", email="e.dupont@example.test", personnel_id="ED-2")
    await _contact(admin, "Adam Smith", email=new_email(), personnel_id="AS-3")

    async def names(query: str) -> list[str]:
        return [c["name"] for c in await admin.ok("GET", f"/directory/contacts?{query}")]

    assert await names("q=ada") == ["Ada Lovelace", "Adam Smith"]
    assert await names("q=ADA%20L") == ["Ada Lovelace"]
    assert await names("q=lovelace") == ["Ada Lovelace"], "family name first"
    assert await names("q=eloise") == ["Éloïse Dupont"], "accents and case do not matter"
    assert await names("q=dupont") == ["Éloïse Dupont"]
    assert await names("q=e.dup") == ["Éloïse Dupont"], "email prefix"
    assert await names("email=ADA@") == ["Ada Lovelace"]
    assert await names("personnel_id=al-1") == ["Ada Lovelace"]
    assert await names("personnel_id=AL") == [], "Personnel ID matches whole"
    assert await names(f"department_id={legal['id']}") == ["Ada Lovelace"]
    assert await names(f"q=a&department_id={legal['id']}") == ["Ada Lovelace"]
    assert await names("department=LEGAL") == ["Ada Lovelace"]
    unknown = await admin.get("/directory/contacts?department=Nowhere")
    assert unknown.status_code == 422 and "Unknown department 'Nowhere'" in unknown.json()["detail"]
    assert await names("q=zzz") == []
    assert await names("limit=1&offset=1") == ["Adam Smith"]
    [found] = await admin.ok("GET", "/directory/contacts?q=ada%20love")
    assert found["id"] == ada["id"] and found["departments"] == [{"id": legal["id"], "name": "Legal"}]
    assert eloise["id"] not in [c["id"] for c in await admin.ok("GET", "/directory/contacts?q=ad")]

    bad = await admin.get("/directory/contacts?limit=0")
    assert bad.status_code == 422 and "limit" in bad.json()["detail"]


async def test_operators_read_the_directory_but_do_not_change_it(make_tenant, api):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    contact = await _contact(admin, "Read Only")
    assert [c["id"] for c in await op.ok("GET", "/directory/contacts")] == [contact["id"]]
    refused = await op.post("/directory/contacts", json={"name": "Nope"})
    assert refused.status_code == 403 and "directory:write" in refused.json()["detail"]
    refused = await op.delete(f"/directory/contacts/{contact['id']}")
    assert refused.status_code == 403
    assert [c["id"] for c in await admin.ok("GET", "/directory/contacts")] == [contact["id"]]


async def test_a_package_for_a_contact_is_addressed_from_the_directory(make_tenant, api, smtp):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    email = new_email()
    contact = await _contact(admin, "Hedy Lamarr", email=email, language="fr")
    bank_id = t.banks["Lobby"]
    package = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "TRK-DIR-1",
            "carrier": "UPS",
            "size": "s",
            "recipient_contact_id": contact["id"],
            "bank_id": bank_id,
        },
    )
    assert package["recipient_contact_id"] == contact["id"]
    assert (package["recipient_name"], package["recipient_email"], package["recipient_language"]) == (
        "Hedy Lamarr",
        email,
        "fr",
    )
    await admin.ok("POST", f"/ext/simulator/banks/{bank_id}/doors/{package['door']['door']}/close")
    [mail] = await smtp.wait_for(email)
    assert "TRK-DIR-1" in body_text(mail)
    listed = await op.ok("GET", f"/packages?recipient_contact_id={contact['id']}")
    assert [p["id"] for p in listed] == [package["id"]]

    # A contact with a package waiting cannot be deleted; the refusal gives the count.
    refused = await admin.delete(f"/directory/contacts/{contact['id']}")
    assert refused.status_code == 409 and "1 package waiting" in refused.json()["detail"]
    assert (await admin.ok("GET", f"/directory/contacts/{contact['id']}"))["name"] == "Hedy Lamarr"

    both = await op.post(
        "/packages",
        json={
            "tracking_id": "TRK-DIR-2",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Someone"},
            "recipient_contact_id": contact["id"],
        },
    )
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    neither = await op.post("/packages", json={"tracking_id": "TRK-DIR-3", "carrier": "UPS", "size": "s"})
    assert neither.status_code == 422 and "recipient" in neither.json()["detail"]
    unknown = await op.post(
        "/packages",
        json={
            "tracking_id": "TRK-DIR-4",
            "carrier": "UPS",
            "size": "s",
            "recipient_contact_id": "00000000-0000-4000-8000-000000000000",
        },
    )
    assert unknown.status_code == 404 and "Contact" in unknown.json()["detail"]
    tracking = [p["tracking_id"] for p in await op.ok("GET", "/packages")]
    assert tracking == ["TRK-DIR-1"]


async def test_concurrent_adds_with_one_personnel_id_make_one_contact(make_tenant, api):
    import asyncio

    t = await make_tenant()
    admin = api(t, "admin")
    answers = await asyncio.gather(
        *(
            admin.post("/directory/contacts", json={"name": f"Racer {i}", "personnel_id": "RACE-1"})
            for i in range(6)
        )
    )
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5, [r.text for r in answers]
    assert all("RACE-1" in r.json()["detail"] for r in answers if r.status_code == 409)
    assert len(await admin.ok("GET", "/directory/contacts?personnel_id=race-1")) == 1
