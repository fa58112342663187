"""CSV exports (A2, A4, C2): contacts, users, locations, divisions; an export imports back unchanged."""

from __future__ import annotations

import csv
import io

from tests.test_csv_import import HEADER, contacts_of, department, upload


def parse(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf"), "spreadsheets need the BOM to show accents"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_contacts_export_has_the_import_columns_and_imports_back_unchanged(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await department(admin, "Research")
    await department(admin, "Navy")
    await admin.ok(
        "POST", "/directory/custom-fields",
        {"screen": "contacts", "key": "remote", "label": "Works remotely", "type": "yes_no"},
    )  # fmt: skip
    body = (
        HEADER.strip()
        + ",remote\n"
        + (
            'Grace Hopper,grace@example.test,+1 555 0100,P-2,E-2,"Navy; Research",wheelchair,fr,yes\n'
            "Ada Lovelace,ada@example.test,,P-1,E-1,Research,,en,no\n"
            "Éloïse Dupont,eloise@example.test,,P-3,,,,fr,\n"
        )
    )
    assert (await upload(admin, "contacts", body)).status_code == 201
    alan = await admin.ok(
        "POST", "/directory/contacts", {"name": '=HYPERLINK("http://x")', "personnel_id": "P-4"}
    )
    await admin.ok("PATCH", f"/directory/contacts/{alan['id']}", {"active": False})

    rows = parse(await admin.get("/directory/exports/contacts.csv"))
    assert rows[0] == [*HEADER.strip().split(","), "active", "remote"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["Grace Hopper"] == [
        "Grace Hopper", "grace@example.test", "+1 555 0100", "P-2", "E-2", "Navy; Research", "wheelchair", "fr", "yes", "yes",
    ]  # fmt: skip
    assert by_name["Éloïse Dupont"][9] == ""
    assert '\'=HYPERLINK("http://x")' in by_name, "a formula is quoted so a spreadsheet does not run it"
    assert by_name['\'=HYPERLINK("http://x")'][8] == "no"

    exported = (await admin.get("/directory/exports/contacts.csv")).content
    again = await upload(admin, "contacts", exported)
    assert again.status_code == 201, again.text
    assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"]) == (0, 0, 4)
    people = await contacts_of(admin)
    assert '=HYPERLINK("http://x")' in people, "the importer removes the quote the export added"
    assert people["Grace Hopper"]["custom"] == {"remote": True}


async def test_locations_and_divisions_export(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    north = await admin.ok("POST", "/divisions", {"name": "North"})
    await admin.ok("POST", "/divisions", {"name": "Empty"})
    await admin.ok(
        "POST", "/locations",
        {"division_id": north["id"], "name": "Depot 7", "address": "7 Quay Road, Portland", "region": "OR"},
    )  # fmt: skip
    rows = parse(await admin.get("/directory/exports/locations.csv"))
    assert rows == [
        ["division", "name", "address", "region", "timezone"],
        ["Main", "Head Office", "1 Test Street, Testville", "WA", "America/Los_Angeles"],
        ["North", "Depot 7", "7 Quay Road, Portland", "OR", "UTC"],
    ]
    assert parse(await admin.get("/directory/exports/divisions.csv")) == [
        ["name", "locations"], ["Empty", "0"], ["Main", "1"], ["North", "1"],
    ]  # fmt: skip
    exported = (await admin.get("/directory/exports/locations.csv")).content
    r = await upload(admin, "locations", exported)
    assert r.status_code == 201 and r.json()["unchanged"] == 2


async def test_users_export(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok(
        "POST", "/users", {"email": "ada@example.test", "name": "Ada Lovelace", "role": "mailroom_admin"}
    )
    rows = parse(await admin.get("/directory/exports/users.csv"))
    assert rows[0] == ["email", "name", "employee_id", "role"]
    assert ["ada@example.test", "Ada Lovelace", "", "mailroom_admin"] in rows[1:]


async def test_exports_need_the_read_permission_of_what_they_show(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    assert (await op.get("/directory/exports/contacts.csv")).status_code == 200
    assert (await op.get("/directory/exports/locations.csv")).status_code == 200
    refused = await op.get("/directory/exports/users.csv")
    assert refused.status_code == 403 and "users:read" in refused.json()["detail"]
    kiosk = api(t, "kiosk")
    assert (await kiosk.get("/directory/exports/contacts.csv")).status_code == 403


async def test_an_export_shows_only_the_tenants_own_rows(make_tenant, api):
    a, b = await make_tenant(), await make_tenant()
    await upload(api(a, "admin"), "contacts", HEADER + "Secret Person,secret@example.test,,P-1,,,,en\n")
    rows = parse(await api(b, "admin").get("/directory/exports/contacts.csv"))
    assert rows == [[*HEADER.strip().split(","), "active"]]
