"""Enterprise > divisions > locations (A2): add, rename, delete with reasons."""

from __future__ import annotations


async def test_divisions_and_locations_lifecycle(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    division = await admin.ok("POST", "/divisions", {"name": "Logistics"})
    assert division["name"] == "Logistics"
    dup = await admin.post("/divisions", json={"name": "Logistics"})
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]

    renamed = await admin.ok("PATCH", f"/divisions/{division['id']}", {"name": "Supply Chain"})
    assert renamed["name"] == "Supply Chain"

    location = await admin.ok(
        "POST",
        "/locations",
        {
            "division_id": division["id"],
            "name": "Depot 7",
            "address": "7 Quay Rd",
            "region": "OR",
            "timezone": "America/Los_Angeles",
        },
    )
    moved = await admin.ok(
        "PATCH", f"/locations/{location['id']}", {"name": "Depot Seven", "address": "7 Quay Road"}
    )
    assert (moved["name"], moved["address"], moved["region"]) == ("Depot Seven", "7 Quay Road", "OR")

    refused = await admin.delete(f"/divisions/{division['id']}")
    assert refused.status_code == 409
    assert "still has 1 location" in refused.json()["detail"]

    await admin.ok("DELETE", f"/locations/{location['id']}", status=204)
    await admin.ok("DELETE", f"/divisions/{division['id']}", status=204)
    assert division["id"] not in [d["id"] for d in await admin.ok("GET", "/divisions")]


async def test_a_location_with_banks_cannot_be_deleted(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    location = (await admin.ok("GET", "/locations"))[0]
    r = await admin.delete(f"/locations/{location['id']}")
    assert r.status_code == 409
    assert "still has 2 locker banks" in r.json()["detail"]
    assert location["id"] in [loc["id"] for loc in await admin.ok("GET", "/locations")]


async def test_rename_the_enterprise(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    assert (await admin.ok("PUT", "/", {"name": "Acme Holdings"}))["name"] == "Acme Holdings"
    assert (await admin.ok("GET", "/"))["name"] == "Acme Holdings"
    r = await admin.put("/", json={"name": ""})
    assert r.status_code == 400


async def test_operators_read_but_do_not_change_the_hierarchy(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    assert await op.ok("GET", "/divisions")
    r = await op.post("/divisions", json={"name": "Shadow IT"})
    assert r.status_code == 403
    assert "hierarchy:write" in r.json()["detail"]


async def test_location_in_unknown_division(make_tenant, api):
    t = await make_tenant()
    r = await api(t, "admin").post(
        "/locations", json={"division_id": "00000000-0000-4000-8000-000000000000", "name": "X"}
    )
    assert r.status_code == 404
    assert "Division" in r.json()["detail"]


# --- A2 refusals (directory, #6) ----------------------------------------------------


async def test_renaming_to_a_taken_name_is_refused_and_changes_nothing(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    north = await admin.ok("POST", "/divisions", {"name": "North"})
    south = await admin.ok("POST", "/divisions", {"name": "South"})
    depot = await admin.ok("POST", "/locations", {"division_id": north["id"], "name": "Depot"})
    await admin.ok("POST", "/locations", {"division_id": north["id"], "name": "Yard"})

    taken = await admin.patch(f"/divisions/{south['id']}", json={"name": "North"})
    assert taken.status_code == 409 and "'North' already exists" in taken.json()["detail"]
    clash = await admin.patch(f"/locations/{depot['id']}", json={"name": "Yard"})
    assert clash.status_code == 409 and "'Yard' already exists in this division" in clash.json()["detail"]
    blank = await admin.patch(f"/locations/{depot['id']}", json={"name": "   "})
    assert blank.status_code == 422 and "name" in blank.json()["detail"]
    assert (await admin.ok("GET", f"/locations/{depot['id']}"))["name"] == "Depot"
    assert (await admin.ok("GET", f"/divisions/{south['id']}"))["name"] == "South"
    # The same location name in another division is fine.
    moved = await admin.ok("PATCH", f"/locations/{depot['id']}", {"division_id": south["id"], "name": "Yard"})
    assert (moved["division_id"], moved["name"]) == (south["id"], "Yard")


async def test_a_division_or_location_in_an_access_scope_cannot_be_deleted(make_tenant, api):
    import json

    from pigeonhole.db.tables import ApiKey
    from pigeonhole.domain.context import tenant_context

    t = await make_tenant()
    admin = api(t, "admin")
    spare = await admin.ok("POST", "/divisions", {"name": "Spare"})
    annex = await admin.ok("POST", "/locations", {"division_id": spare["id"], "name": "Annex"})
    empty = await admin.ok("POST", "/divisions", {"name": "Empty"})
    async with tenant_context(t.slug) as ctx:
        await ctx.scope.update(
            ApiKey, {ApiKey.scope: json.dumps({"divisions": [empty["id"]], "locations": [annex["id"]]})}
        ).where(ApiKey.name == "operator")

    refused = await admin.delete(f"/locations/{annex['id']}")
    assert refused.status_code == 409
    assert (
        refused.json()["detail"]
        == "Location 'Annex' is in the access scope of 1 API key; change their scope first"
    )
    refused = await admin.delete(f"/divisions/{empty['id']}")
    assert (
        refused.status_code == 409 and "Division 'Empty' is in the access scope of 1 API key" in refused.text
    )
    names = {loc["name"] for loc in await admin.ok("GET", "/locations")}
    assert "Annex" in names and "Empty" in {d["name"] for d in await admin.ok("GET", "/divisions")}

    # Once the key's scope no longer names them, both go.
    async with tenant_context(t.slug) as ctx:
        await ctx.scope.update(ApiKey, {ApiKey.scope: None}).where(ApiKey.name == "operator")
    await admin.ok("DELETE", f"/locations/{annex['id']}", status=204)
    await admin.ok("DELETE", f"/divisions/{empty['id']}", status=204)
