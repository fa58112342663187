"""Roles (A3) and scopes: built-in and custom roles; a user limited to a location acts only there (B6).

Two walks take every route from the application (like tests/test_isolation.py),
so a route added later is covered the day it exists:

- a user limited to one location, holding every permission, gets 404 for
  anything outside that location (and the walk changes nothing);
- a user whose role holds no permission gets 403 naming the permission on
  every route but the few a signed-in person needs for themselves.
"""

from __future__ import annotations

import uuid

from pigeonhole.domain.context import require_tenant

from tests.flows import deposit_and_close
from tests.support import accounts, isolation
from tests.support.storage import storage_values

# A second division, location and bank, outside the scoped user's location.
NORTH = """
[[divisions]]
name = "North"

  [[divisions.locations]]
  name = "Depot"
  address = "9 Far Road"

    [[divisions.locations.banks]]
    name = "Depot bank"
    driver = "simulator"
    compartments = [ { size = "s", count = 3 }, { size = "m", count = 2 } ]

[[api_keys]]
name = "kiosk-depot"
role = "kiosk"
bank = "Depot bank"
key = "ph_test_{slug}_kiosk_depot"
"""


def _tag() -> str:
    return uuid.uuid4().hex[:8]


async def _two_sites(make_tenant, api):
    t = await make_tenant(extra=NORTH.replace("{slug}", "SLUG"))
    admin = api(t, "admin")
    locations = {x["name"]: x for x in await admin.ok("GET", "/locations")}
    divisions = {d["name"]: d for d in await admin.ok("GET", "/divisions")}
    return t, admin, locations, divisions


async def test_builtin_roles_and_custom_roles(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    roles = {r["name"]: r for r in await admin.ok("GET", "/roles")}
    assert {"enterprise_admin", "mailroom_admin", "locker_operator", "carrier", "recipient"} <= set(roles)
    assert all(roles[n]["builtin"] for n in ("enterprise_admin", "carrier"))
    catalog = {p["name"] for p in await admin.ok("GET", "/permissions")}
    assert set(roles["enterprise_admin"]["permissions"]) == catalog
    assert roles["recipient"]["permissions"] == []

    desk = await admin.ok(
        "POST",
        "/roles",
        {"name": "Front desk", "permissions": ["packages:read", "packages:write"]},
        status=201,
    )
    assert desk["builtin"] is False and desk["users"] == 0
    user = await accounts.add_user(admin, role_id=desk["id"])
    assert set(user["effective_permissions"]) == {"packages:read", "packages:write"}

    edited = await admin.ok("PATCH", f"/roles/{desk['id']}", {"permissions": ["packages:read"]})
    assert edited["permissions"] == ["packages:read"] and edited["users"] == 1
    me = await accounts.as_user(client, t.slug, user)
    refused = await me.post(
        "/packages", json={"tracking_id": "T", "carrier": "UPS", "size": "s", "recipient": {"name": "R"}}
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You do not have the permission 'packages:write' (role 'Front desk')"

    held = await admin.delete(f"/roles/{desk['id']}")
    assert held.status_code == 409
    assert held.json()["detail"] == "Role 'Front desk' is still held by 1 user"
    await accounts.add_user(admin, role_id=desk["id"])
    held = await admin.delete(f"/roles/{desk['id']}")
    assert held.json()["detail"] == "Role 'Front desk' is still held by 2 users"
    for u in await admin.ok("GET", f"/users?role_id={desk['id']}"):
        await admin.ok("DELETE", f"/users/{u['id']}")
    await admin.ok("DELETE", f"/roles/{desk['id']}")
    assert (await admin.get(f"/roles/{desk['id']}")).status_code == 404

    builtin = await admin.delete(f"/roles/{roles['carrier']['id']}")
    assert builtin.status_code == 403 and "built-in" in builtin.json()["detail"]
    changed = await admin.patch(f"/roles/{roles['carrier']['id']}", json={"permissions": []})
    assert changed.status_code == 403


async def test_bad_roles_are_refused_and_change_nothing(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    before = [(r["id"], r["name"], r["permissions"]) for r in await admin.ok("GET", "/roles")]
    cases = {
        "unknown permission": ({"name": "X", "permissions": ["packages:eat"]}, 422, "packages:eat"),
        "taken name": ({"name": "carrier", "permissions": []}, 409, "already exists"),
        "no name": ({"name": "", "permissions": []}, 400, "name"),
        "no permissions field": ({"name": "X"}, 400, "permissions"),
        "permissions not a list": ({"name": "X", "permissions": "all"}, 400, "permissions"),
    }
    for label, (body, status, words) in cases.items():
        response = await admin.post("/roles", json=body)
        assert response.status_code == status, (label, response.text)
        assert words in response.text, (label, response.text)
    # Nobody makes a role with more than they hold.
    _, mailroom = await accounts.signed_in(client, admin, role="mailroom_admin")
    assert (await mailroom.post("/roles", json={"name": "Y", "permissions": []})).status_code == 403
    assert [(r["id"], r["name"], r["permissions"]) for r in await admin.ok("GET", "/roles")] == before


async def test_a_location_scoped_user_sees_and_acts_only_there(make_tenant, api, client, smtp):
    t, admin, locations, divisions = await _two_sites(make_tenant, api)
    head, depot = locations["Head Office"], locations["Depot"]
    banks = {b["name"]: b for b in await admin.ok("GET", "/banks")}
    depot_bank = banks["Depot bank"]["id"]
    far = await deposit_and_close(
        api(t, "operator"), admin, depot_bank, size="s", name="Far Away", email=accounts.email("far")
    )
    near = await deposit_and_close(
        api(t, "operator"), admin, t.banks["Lobby"], size="s", name="Near By", email=accounts.email("near")
    )

    user, me = await accounts.signed_in(
        client, admin, role="mailroom_admin", locations=[head["id"]], name="Mia Mailroom"
    )
    assert user["scope"] == {"divisions": [], "locations": [head["id"]]}

    assert {b["name"] for b in await me.ok("GET", "/banks")} == {"Lobby", "Annex"}
    assert [x["name"] for x in await me.ok("GET", "/locations")] == ["Head Office"]
    assert [d["name"] for d in await me.ok("GET", "/divisions")] == ["Main"]
    shown = {p["id"] for p in await me.ok("GET", "/packages")}
    assert near["id"] in shown and far["id"] not in shown

    for path in (
        f"/banks/{depot_bank}",
        f"/locations/{depot['id']}",
        f"/packages/{far['id']}",
        f"/divisions/{divisions['North']['id']}",
        f"/packages/{far['id']}/events",
    ):
        response = await me.get(path)
        assert response.status_code == 404, (path, response.text)
        assert "not found" in response.json()["detail"]

    # Acting: in scope works, outside is 'not found', tenant-wide is 403.
    inside = await me.ok(
        "POST",
        "/packages",
        {
            "tracking_id": f"T-{_tag()}",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "In"},
            "bank_id": t.banks["Lobby"],
        },
    )
    assert inside["bank_id"] == t.banks["Lobby"]
    outside = await me.post(
        "/packages",
        json={
            "tracking_id": f"T-{_tag()}",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Out"},
            "bank_id": depot_bank,
        },
    )
    assert outside.status_code == 404
    nowhere = await me.post(
        "/packages",
        json={"tracking_id": f"T-{_tag()}", "carrier": "UPS", "size": "s", "recipient": {"name": "Out"}},
    )
    assert nowhere.status_code == 422 and "give bank_id" in nowhere.json()["detail"]
    division_write = await me.patch(f"/divisions/{divisions['Main']['id']}", json={"name": "Mine"})
    assert division_write.status_code == 403
    assert (await me.post("/divisions", json={"name": "New"})).status_code == 403
    assert (await me.get("/audit")).status_code == 403

    # Users: the scoped admin adds users of its own location only.
    mine = await me.ok("POST", "/users", {"email": accounts.email(), "name": "Local", "role": "carrier"})
    assert mine["scope"] == {"divisions": [], "locations": [head["id"]]}
    wider = await me.post(
        "/users",
        json={"email": accounts.email(), "name": "Far", "role": "carrier", "locations": [depot["id"]]},
    )
    assert wider.status_code == 403
    depot_user = await accounts.add_user(admin, role="carrier", locations=[depot["id"]])
    assert (await me.get(f"/users/{depot_user['id']}")).status_code == 404
    assert depot_user["id"] not in {u["id"] for u in await me.ok("GET", "/users")}

    # A division scope brings every location of the division, also new ones.
    north_user, north = await accounts.signed_in(
        client, admin, role="enterprise_admin", divisions=[divisions["North"]["id"]]
    )
    assert {b["name"] for b in await north.ok("GET", "/banks")} == {"Depot bank"}
    annex = await north.ok("POST", "/locations", {"division_id": divisions["North"]["id"], "name": "Annex N"})
    assert annex["name"] in {x["name"] for x in await north.ok("GET", "/locations")}
    assert (await north.get(f"/packages/{near['id']}")).status_code == 404


async def _scoped_world(make_tenant, api, client, smtp):
    """A tenant with a location in scope (Head Office) and one out of it (Depot), rows in both."""
    t, admin, locations, divisions = await _two_sites(make_tenant, api)
    head, depot = locations["Head Office"], locations["Depot"]
    banks = {b["name"]: b for b in await admin.ok("GET", "/banks")}
    depot_bank = banks["Depot bank"]["id"]
    op = api(t, "operator")
    far = await deposit_and_close(
        op, admin, depot_bank, size="s", name="Far Away", email=accounts.email("far")
    )
    near = await deposit_and_close(op, admin, t.banks["Lobby"], size="s", name="Near", email=accounts.email())
    depot_user = await accounts.add_user(admin, role="carrier", locations=[depot["id"]])
    near_user = await accounts.add_user(admin, role="carrier", locations=[head["id"]])
    keys = {k["name"]: k for k in await admin.ok("GET", "/api-keys")}
    lobby = await admin.ok("GET", f"/banks/{t.banks['Lobby']}")
    depot_full = await admin.ok("GET", f"/banks/{depot_bank}")
    role = await admin.ok("POST", "/roles", {"name": f"Walk {_tag()}", "permissions": ["packages:read"]})
    near_command = (await admin.ok("GET", f"/banks/{t.banks['Lobby']}/commands"))[0]["id"]
    far_command = (await admin.ok("GET", f"/banks/{depot_bank}/commands"))[0]["id"]
    # storage (#5): a storage reservation in scope and one outside
    walker = await admin.ok("POST", "/directory/contacts", {"name": f"Walker {_tag()}"})
    [near_storage] = (await storage_values(admin, op, t.banks["Lobby"], walker["id"]))["reservation_id"]
    [far_storage] = (await storage_values(admin, op, depot_bank, walker["id"]))["reservation_id"]
    inside = {
        "bank_id": t.banks["Lobby"],
        "compartment_id": lobby["compartments"][0]["id"],
        "package_id": near["id"],
        "location_id": head["id"],
        "division_id": divisions["Main"]["id"],
        "key_id": keys["kiosk-lobby"]["id"],
        "user_id": near_user["id"],
        "role_id": role["id"],
        "door": 1,
        "name": "simulator",
        "code": "000000",
        "tracking_id": near["tracking_id"],
        "command_id": near_command,
        # messages (#5): a message about a package in scope
        "notification_id": (await admin.ok("GET", f"/packages/{near['id']}/notifications"))[0]["id"],
        # storage (#5): a storage reservation in scope
        "reservation_id": near_storage,
    }
    outside = {
        "bank_id": depot_bank,
        "compartment_id": depot_full["compartments"][0]["id"],
        "package_id": far["id"],
        "location_id": depot["id"],
        "division_id": divisions["North"]["id"],
        "key_id": keys["kiosk-depot"]["id"],
        "user_id": depot_user["id"],
        "command_id": far_command,
        "notification_id": (await admin.ok("GET", f"/packages/{far['id']}/notifications"))[0]["id"],
        "reservation_id": far_storage,
    }
    needles = {str(v) for v in outside.values()} | {
        far["tracking_id"],
        depot_user["email"],
        "Far Away",
        "Depot bank",
        "9 Far Road",
    }
    return t, admin, head, inside, outside, needles


async def test_every_route_answers_404_outside_the_scope_and_changes_nothing(
    make_tenant, api, client, smtp, settings, services
):
    from pigeonhole.web.app import create_app

    t, admin, head, inside, outside, needles = await _scoped_world(make_tenant, api, client, smtp)
    info = await require_tenant(t.slug)
    _, me = await accounts.signed_in(client, admin, role="enterprise_admin", locations=[head["id"]])
    await isolation.drained(info.id)
    before = await _stable_snapshot(info.id)

    routes = isolation.all_routes(create_app(settings, services=services))
    failures, walked = [], 0
    for route in routes:
        carried = set(route.path_params) | route.body_ids(inside)
        for slot in sorted(carried & set(outside)):
            ids = {**inside, slot: outside[slot]}
            request = route.request(t.slug, ids)
            response = await isolation.send(client, request, me.key)
            walked += 1
            # Tenant-wide routes refuse a scoped caller before looking at anything: 403 is fine there.
            tenant_wide = response.status_code == 403 and WHOLE_TENANT in response.text
            if response.status_code != 404 and not tenant_wide:
                failures.append(f"{request} [{slot} outside]: {response.status_code} {response.text[:200]}")
            shown = isolation.leaks(response, request, needles)
            if shown:
                failures.append(f"{request}: shows {shown}")
    # Routes naming no row: whatever they answer, they show nothing outside the scope.
    for route in routes:
        if route.method != "GET" or set(route.path_params) - {"tenant"}:
            continue
        request = route.request(t.slug, inside)
        response = await isolation.send(client, request, me.key)
        walked += 1
        if response.status_code >= 500:
            failures.append(f"{request}: {response.status_code}")
        shown = isolation.leaks(response, request, needles)
        if shown:
            failures.append(f"{request}: a list shows what is outside the scope: {shown}")
    assert walked > 60
    assert not failures, f"{len(failures)} of {walked} requests broke the scope:\n" + "\n".join(failures)
    await isolation.drained(info.id)
    after = await _stable_snapshot(info.id)
    for table in before:
        assert after[table] == before[table], f"the walk changed {table}"


#: The refusal of tenant-wide changes to a caller limited to some locations (scopes.require_whole_tenant).
WHOLE_TENANT = "Only a user with access to the whole tenant"

#: Columns a request updates by being made (last use of a key, a session's activity).
NOISY = {"api_key": {"last_used_at"}, "user_session": {"last_seen_at"}, "tenant": set()}
#: Tables that record requests themselves (sign-in throttles) rather than the tenant's data.
SKIPPED_TABLES = {"signin_throttle"}


async def _stable_snapshot(tenant_id):
    snap = await isolation.snapshot(tenant_id)
    out = {}
    for table, rows in snap.items():
        if table in SKIPPED_TABLES:
            continue
        drop = NOISY.get(table, set())
        out[table] = [{k: v for k, v in r.items() if k not in drop} for r in rows]
    return out


#: Routes a signed-in person (or someone signing in) uses for themselves: no
#: permission guards them, by design. Every other route must answer 403.
SELF_SERVICE_PREFIXES = (
    "/auth/signin",
    "/auth/password",
    "/auth/session",
    "/auth/signout",
    "/auth/sessions",
    "/auth/mfa",
    "/auth/devices",
    "/sso/saml/",
    "/sso/oidc/",
    "/agents/enrol",
    "/recipient/new-code",  # access (#5, F5): public, answers the same whatever is asked
)
SELF_SERVICE_EXCEPT = ("/agents/enrolment-tokens",)


def _self_service(route) -> bool:
    rel = route.relative
    if any(rel.startswith(p) for p in SELF_SERVICE_EXCEPT):
        return False
    return any(rel.startswith(p) for p in SELF_SERVICE_PREFIXES)


async def test_every_route_checks_a_permission(make_tenant, api, client, settings, services):
    """A user whose role holds nothing is refused everywhere with 403 naming the permission."""
    from pigeonhole.web.app import create_app

    t = await make_tenant()
    admin = api(t, "admin")
    info = await require_tenant(t.slug)
    nothing = await admin.ok("POST", "/roles", {"name": "Nothing", "permissions": []})
    _, me = await accounts.signed_in(client, admin, role_id=nothing["id"])
    lobby = await admin.ok("GET", f"/banks/{t.banks['Lobby']}")
    ids = {
        "bank_id": t.banks["Lobby"],
        "compartment_id": lobby["compartments"][0]["id"],
        "location_id": lobby["location_id"],
        "division_id": (await admin.ok("GET", "/divisions"))[0]["id"],
        "key_id": (await admin.ok("GET", "/api-keys"))[0]["id"],
        "role_id": nothing["id"],
        "user_id": (await accounts.add_user(admin))["id"],
        "door": 1,
        # Any installed plugin would do: plugin routes live under /ext/{name} (decision 0032).
        "name": "workplace",
        "code": "000000",
    }
    await isolation.drained(info.id)
    before = await _stable_snapshot(info.id)
    routes = isolation.all_routes(create_app(settings, services=services))
    failures, checked = [], 0
    for route in routes:
        if _self_service(route):
            continue
        request = route.request(t.slug, ids)
        response = await isolation.send(client, request, me.key)
        checked += 1
        detail = response.json().get("detail", "") if response.content else ""
        if response.status_code != 403 or "permission '" not in str(detail):
            failures.append(f"{request}: {response.status_code} {response.text[:200]}")
    assert checked > 50
    assert not failures, "routes without a permission check:\n" + "\n".join(failures)
    after = await _stable_snapshot(info.id)
    for table in before:
        assert after[table] == before[table], f"a refused request changed {table}"


async def test_an_api_key_holds_a_subset_of_its_creators_permissions(make_tenant, api, client):
    t, admin, locations, _ = await _two_sites(make_tenant, api)
    head = locations["Head Office"]
    narrow = await admin.ok(
        "POST",
        "/api-keys",
        {"name": "reader", "role": "operator", "permissions": ["packages:read"]},
        status=201,
    )
    assert narrow["permissions"] == ["packages:read"] and narrow["key"].startswith("ph_")
    reader = api(t)
    reader.key = narrow["key"]
    assert (await reader.get("/packages")).status_code == 200
    refused = await reader.get("/banks")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This API key does not have the permission 'banks:read'"

    not_in_role = await admin.post(
        "/api-keys",
        json={"name": "x", "role": "kiosk", "bank_id": t.banks["Lobby"], "permissions": ["users:write"]},
    )
    assert not_in_role.status_code == 422

    user, mailroom = await accounts.signed_in(client, admin, role="mailroom_admin", locations=[head["id"]])
    too_much = await mailroom.post("/api-keys", json={"name": "boss", "role": "admin"})
    assert too_much.status_code == 403
    assert "which you do not have" in too_much.json()["detail"]
    made = await mailroom.ok(
        "POST",
        "/api-keys",
        {"name": "desk", "role": "operator", "permissions": ["packages:read", "banks:read"]},
    )
    assert made["scope"] == {"divisions": [], "locations": [head["id"]]}
    assert made["created_by"] == f"mailroom_admin:{user['name']}"
    desk = api(t)
    desk.key = made["key"]
    assert {b["name"] for b in await desk.ok("GET", "/banks")} == {"Lobby", "Annex"}

    # Device credentials stay bound to their bank; revoking works and is seen.
    kiosk = await admin.ok(
        "POST", "/api-keys", {"name": "kiosk-2", "role": "kiosk", "bank_id": t.banks["Annex"]}
    )
    device = api(t)
    device.key = kiosk["key"]
    assert [b["name"] for b in await device.ok("GET", "/banks")] == ["Annex"]
    assert (await device.get(f"/banks/{t.banks['Lobby']}")).status_code == 404
    await admin.ok("DELETE", f"/api-keys/{kiosk['id']}")
    assert (await device.get("/banks")).status_code == 401
    listed = {k["id"]: k for k in await admin.ok("GET", "/api-keys")}
    assert listed[kiosk["id"]]["revoked_at"] is not None and listed[kiosk["id"]]["last_used_at"] is not None
    assert "key" not in listed[kiosk["id"]] or listed[kiosk["id"]]["key"] is None
