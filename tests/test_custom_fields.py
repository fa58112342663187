"""Custom fields (A5): ten per screen, typed, required, validated on every write, searchable."""

from __future__ import annotations

import pytest

SCREENS = ["users", "contacts", "packages", "locations"]


async def _field(admin, screen: str, key: str, type_: str = "text", **extra) -> dict:
    body = {"screen": screen, "key": key, "label": key.replace("_", " ").title(), "type": type_, **extra}
    return await admin.ok("POST", "/directory/custom-fields", body)


@pytest.mark.parametrize("screen", SCREENS)
async def test_the_eleventh_field_on_a_screen_is_refused(make_tenant, api, screen):
    t = await make_tenant()
    admin = api(t, "admin")
    for i in range(10):
        await _field(admin, screen, f"field_{i}")
    r = await admin.post(
        "/directory/custom-fields",
        json={"screen": screen, "key": "eleventh", "label": "Eleventh", "type": "text"},
    )
    assert r.status_code == 409
    assert "already has 10 custom fields" in r.json()["detail"] and screen in r.json()["detail"]
    listed = await admin.ok("GET", f"/directory/custom-fields?screen={screen}")
    assert [f["key"] for f in listed] == [f"field_{i}" for i in range(10)]
    # Another screen still has room, and deleting one frees a slot.
    other = next(s for s in SCREENS if s != screen)
    await _field(admin, other, "eleventh")
    await admin.ok("DELETE", f"/directory/custom-fields/{listed[3]['id']}", status=204)
    added = await _field(admin, screen, "eleventh")
    assert added["position"] == 4


async def test_field_definitions_are_checked(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    cases = [
        ({"screen": "contacts", "key": "Bad Key", "label": "L", "type": "text"}, "Bad Key"),
        ({"screen": "planets", "key": "k", "label": "L", "type": "text"}, "screen"),
        ({"screen": "contacts", "key": "k", "label": "L", "type": "colour"}, "type"),
        ({"screen": "contacts", "key": "k", "label": "L", "type": "choice"}, "at least one choice"),
        ({"screen": "contacts", "key": "k", "label": "L", "type": "text", "choices": ["a"]}, "choices"),
    ]
    for body, words in cases:
        r = await admin.post("/directory/custom-fields", json=body)
        assert r.status_code in (400, 422), (body, r.text)
        assert words in r.text, (body, r.text)
    await _field(admin, "contacts", "floor", "number")
    dup = await admin.post(
        "/directory/custom-fields", json={"screen": "contacts", "key": "floor", "label": "F", "type": "text"}
    )
    assert dup.status_code == 409 and "floor" in dup.json()["detail"]
    assert [f["key"] for f in await admin.ok("GET", "/directory/custom-fields")] == ["floor"]
    op = api(t, "operator")
    refused = await op.post(
        "/directory/custom-fields", json={"screen": "contacts", "key": "x", "label": "X", "type": "text"}
    )
    assert refused.status_code == 403 and "settings:write" in refused.json()["detail"]


async def test_contact_values_are_typed_validated_returned_and_searchable(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    await _field(admin, "contacts", "cost_centre", "text", required=True)
    await _field(admin, "contacts", "floor", "number")
    await _field(admin, "contacts", "start_date", "date")
    await _field(admin, "contacts", "site", "choice", choices=["North", "South"])
    await _field(admin, "contacts", "first_aider", "yes_no")

    missing = await admin.post("/directory/contacts", json={"name": "No Centre"})
    assert missing.status_code == 422 and "Cost Centre" in missing.json()["detail"]
    assert "required" in missing.json()["detail"]

    bad_values = [
        ({"cost_centre": "CC-1", "floor": "third"}, "floor"),
        ({"cost_centre": "CC-1", "start_date": "31/12/2024"}, "start_date"),
        ({"cost_centre": "CC-1", "site": "East"}, "North, South"),
        ({"cost_centre": "CC-1", "first_aider": "maybe"}, "first_aider"),
        ({"cost_centre": "CC-1", "shoe_size": 42}, "shoe_size"),
        ({"cost_centre": "x" * 501}, "500"),
    ]
    for custom, words in bad_values:
        r = await admin.post("/directory/contacts", json={"name": "Bad", "custom": custom})
        assert r.status_code == 422 and words in r.json()["detail"], (custom, r.text)
    assert await admin.ok("GET", "/directory/contacts") == [], "refusals wrote nothing"

    ann = await admin.ok(
        "POST",
        "/directory/contacts",
        {
            "name": "Ann Other",
            "custom": {
                "cost_centre": "CC-100",
                "floor": "3",
                "start_date": "2024-02-29",
                "site": "north",
                "first_aider": "yes",
            },
        },
    )
    assert ann["custom"] == {
        "cost_centre": "CC-100",
        "floor": 3,
        "start_date": "2024-02-29",
        "site": "North",
        "first_aider": True,
    }
    bob = await admin.ok(
        "POST", "/directory/contacts", {"name": "Bob Other", "custom": {"cost_centre": "CC-200", "floor": 3}}
    )

    async def names(query: str) -> list[str]:
        return [c["name"] for c in await admin.ok("GET", f"/directory/contacts?{query}")]

    assert await names("custom.cost_centre=cc-") == ["Ann Other", "Bob Other"], "text matches by prefix"
    assert await names("custom.cost_centre=cc-1") == ["Ann Other"]
    assert await names("custom.cost_centre=CC-2") == ["Bob Other"]
    assert await names("custom.floor=3") == ["Ann Other", "Bob Other"]
    assert await names("custom.floor=3&custom.site=North") == ["Ann Other"]
    assert await names("custom.first_aider=no") == []
    assert await names("q=bob&custom.floor=3") == ["Bob Other"]
    unknown = await admin.get("/directory/contacts?custom.shoe_size=42")
    assert unknown.status_code == 422 and "shoe_size" in unknown.json()["detail"]

    # Clearing a required value is refused; other edits keep the values.
    cleared = await admin.patch(f"/directory/contacts/{bob['id']}", json={"custom": {"cost_centre": ""}})
    assert cleared.status_code == 422 and "required" in cleared.json()["detail"]
    edited = await admin.ok("PATCH", f"/directory/contacts/{bob['id']}", {"custom": {"floor": None}})
    assert edited["custom"] == {"cost_centre": "CC-200"}

    # A choice still in use cannot be dropped.
    site = next(
        f for f in await admin.ok("GET", "/directory/custom-fields?screen=contacts") if f["key"] == "site"
    )
    dropped = await admin.patch(f"/directory/custom-fields/{site['id']}", json={"choices": ["South"]})
    assert dropped.status_code == 409 and "North" in dropped.json()["detail"]
    await admin.ok("PATCH", f"/directory/custom-fields/{site['id']}", {"choices": ["North", "South", "East"]})

    # Deleting a field deletes its values.
    await admin.ok("DELETE", f"/directory/custom-fields/{site['id']}", status=204)
    assert "site" not in (await admin.ok("GET", f"/directory/contacts/{ann['id']}"))["custom"]


async def test_package_values_are_checked_on_receive(make_tenant, api):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    await _field(admin, "packages", "purchase_order", "text", required=True)
    await _field(admin, "packages", "fragile", "yes_no")
    body = {"tracking_id": "TRK-CF-1", "carrier": "UPS", "size": "s", "recipient": {"name": "Ada"}}
    refused = await op.post("/packages", json=body)
    assert refused.status_code == 422 and "Purchase Order" in refused.json()["detail"]
    wrong = await op.post(
        "/packages", json={**body, "custom": {"purchase_order": "PO-1", "fragile": "perhaps"}}
    )
    assert wrong.status_code == 422 and "fragile" in wrong.json()["detail"]
    assert await op.ok("GET", "/packages") == [], "a refused package is not recorded"
    package = await op.ok(
        "POST", "/packages", {**body, "custom": {"purchase_order": "PO-1", "fragile": "no"}}
    )
    assert package["custom"] == {"purchase_order": "PO-1", "fragile": False}
    assert (await op.ok("GET", f"/packages/{package['id']}"))["custom"] == package["custom"]
    [listed] = await op.ok("GET", "/packages")
    assert listed["custom"] == package["custom"]
    assert [p["id"] for p in await op.ok("GET", "/packages?custom.purchase_order=po-")] == [package["id"]]
    assert await op.ok("GET", "/packages?custom.fragile=yes") == []
    unknown = await op.get("/packages?custom.colour=red")
    assert unknown.status_code == 422 and "colour" in unknown.json()["detail"]


async def test_location_values_are_checked_on_create_and_rename(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    [existing] = await admin.ok("GET", "/locations")
    division_id = existing["division_id"]
    await _field(admin, "locations", "building_code", "text", required=True)
    refused = await admin.post("/locations", json={"division_id": division_id, "name": "Annex"})
    assert refused.status_code == 422 and "Building Code" in refused.json()["detail"]
    # A location made before the field was required must get a value on its next edit.
    rename = await admin.patch(f"/locations/{existing['id']}", json={"name": "Head Office East"})
    assert rename.status_code == 422 and "required" in rename.json()["detail"]
    assert (await admin.ok("GET", f"/locations/{existing['id']}"))["name"] == "Head Office"
    renamed = await admin.ok(
        "PATCH",
        f"/locations/{existing['id']}",
        {"name": "Head Office East", "custom": {"building_code": "B1"}},
    )
    assert renamed["custom"] == {"building_code": "B1"} and renamed["name"] == "Head Office East"
    created = await admin.ok(
        "POST", "/locations", {"division_id": division_id, "name": "Annex", "custom": {"building_code": "B2"}}
    )
    assert created["custom"] == {"building_code": "B2"}
    listed = {loc["name"]: loc["custom"] for loc in await admin.ok("GET", "/locations")}
    assert listed == {"Head Office East": {"building_code": "B1"}, "Annex": {"building_code": "B2"}}
    assert [loc["name"] for loc in await admin.ok("GET", "/locations?custom.building_code=b2")] == ["Annex"]


async def test_users_screen_validator_for_identity(make_tenant, api):
    """Identity (#3) owns users; it calls custom_fields.validate/save/load for the users screen."""
    from pigeonhole.domain.context import tenant_context
    from pigeonhole.domain.directory import custom_fields
    from pigeonhole.domain.errors import Invalid

    t = await make_tenant()
    admin = api(t, "admin")
    await _field(admin, "users", "badge_number", "number", required=True)
    async with tenant_context(t.slug) as ctx:
        with pytest.raises(Invalid, match="Badge Number"):
            await custom_fields.validate(ctx, "users", {})
        with pytest.raises(Invalid, match="badge_number"):
            await custom_fields.validate(ctx, "users", {"badge_number": "abc"})
        assert await custom_fields.validate(ctx, "users", {"badge_number": "12"}) == {"badge_number": 12}


async def test_a_field_made_required_later_is_asked_for_at_the_next_edit(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    contact = await admin.ok("POST", "/directory/contacts", {"name": "Early Bird"})
    await _field(admin, "contacts", "badge", "text", required=True)
    edit = await admin.patch(f"/directory/contacts/{contact['id']}", json={"phone": "+1 555 0101"})
    assert edit.status_code == 422 and "Badge" in edit.json()["detail"]
    assert (await admin.ok("GET", f"/directory/contacts/{contact['id']}"))["phone"] is None
    # Deactivating a leaver never waits for a missing value.
    off = await admin.ok("PATCH", f"/directory/contacts/{contact['id']}", {"active": False})
    assert off["active"] is False
    done = await admin.ok(
        "PATCH", f"/directory/contacts/{contact['id']}", {"phone": "+1 555 0101", "custom": {"badge": "B-9"}}
    )
    assert (done["phone"], done["custom"]) == ("+1 555 0101", {"badge": "B-9"})


async def test_concurrent_additions_never_make_an_eleventh_field(make_tenant, api):
    import asyncio

    t = await make_tenant()
    admin = api(t, "admin")
    answers = await asyncio.gather(
        *(
            admin.post(
                "/directory/custom-fields",
                json={"screen": "contacts", "key": f"f{i}", "label": f"F{i}", "type": "text"},
            )
            for i in range(14)
        )
    )
    assert sorted(r.status_code for r in answers).count(201) == 10, [r.text for r in answers]
    refused = [r for r in answers if r.status_code != 201]
    assert all(r.status_code == 409 and "already has 10 custom fields" in r.text for r in refused)
    fields = await admin.ok("GET", "/directory/custom-fields?screen=contacts")
    assert sorted(f["position"] for f in fields) == list(range(1, 11))
