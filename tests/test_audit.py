"""The audit log: who changed users, roles, keys and plugins, when, and what; with filters."""

from __future__ import annotations

from datetime import timedelta

from pigeonhole.domain import clock

from tests.support import accounts


async def test_changes_are_audited_with_who_what_when_and_target(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    start = clock.now()
    user, me = await accounts.signed_in(client, admin, role="enterprise_admin", name="Eve Admin")
    role = await me.ok("POST", "/roles", {"name": "Auditors", "permissions": ["audit:read"]})
    clerk = await me.ok("POST", "/users", {"email": accounts.email(), "name": "Cleo", "role_id": role["id"]})
    await me.ok("PATCH", f"/users/{clerk['id']}", {"name": "Cleo Clerk"})
    key = await me.ok("POST", "/api-keys", {"name": "erp", "role": "operator"})
    await me.ok("DELETE", f"/api-keys/{key['id']}")
    plugin = await me.ok("PUT", "/plugins/workplace", {"config": {"hold_hours": 24}})
    await me.ok("DELETE", f"/users/{clerk['id']}")
    await me.ok("DELETE", f"/roles/{role['id']}")

    log = await admin.ok("GET", "/audit")
    mine = [e for e in log if e["actor"] == "enterprise_admin:Eve Admin"]
    assert [e["action"] for e in reversed(mine)] == [
        "role.created",
        "user.created",
        "user.updated",
        "api_key.created",
        "api_key.revoked",
        "plugin.configured",
        "user.deleted",
        "role.deleted",
    ]
    assert all(e["actor_kind"] == "user" and e["at"] >= start.isoformat()[:19] for e in mine)
    created = next(e for e in mine if e["action"] == "user.created")
    assert created["target_type"] == "user" and created["target_id"] == clerk["id"]
    assert created["data"]["name"] == "Cleo" and created["data"]["role"] == "Auditors"
    assert next(e for e in mine if e["action"] == "user.updated")["data"] == {"name": "Cleo Clerk"}
    # A plugin's configuration may hold secrets: the log names the fields only.
    configured = next(e for e in mine if e["action"] == "plugin.configured")
    assert configured["target_id"] == "workplace"
    assert configured["data"] == {"fields": sorted(plugin["config"])} and "hold_hours" in plugin["config"]
    # The admin key's own change (adding Eve) is there too, under the key's name.
    eve = next(e for e in log if e["action"] == "user.created" and e["target_id"] == user["id"])
    assert (eve["actor"], eve["actor_kind"]) == ("admin:admin", "api_key")


async def test_filters(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    a = await accounts.add_user(admin, role="carrier")
    clock.advance(timedelta(hours=1))
    middle = clock.now()
    clock.advance(timedelta(hours=1))
    b = await accounts.add_user(admin, role="carrier")
    await admin.ok("PATCH", f"/users/{b['id']}", {"name": "Bea"})
    await admin.ok("POST", "/roles", {"name": "R1", "permissions": []})

    def ids(entries):
        return [(e["action"], e["target_id"]) for e in entries]

    assert ids(await admin.ok("GET", "/audit?action=user.")) == [
        ("user.updated", b["id"]),
        ("user.created", b["id"]),
        ("user.created", a["id"]),
    ]
    assert ids(await admin.ok("GET", "/audit?action=user.created")) == [
        ("user.created", b["id"]),
        ("user.created", a["id"]),
    ]
    assert ids(await admin.ok("GET", f"/audit?target_id={a['id']}")) == [("user.created", a["id"])]
    assert [e["action"] for e in await admin.ok("GET", "/audit?target_type=role")] == ["role.created"]
    until = await admin.request("GET", "/audit", params={"until": middle.isoformat()})
    assert ids(until.json()) == [("user.created", a["id"])]
    since = (await admin.request("GET", "/audit", params={"since": middle.isoformat()})).json()
    assert ("user.created", a["id"]) not in ids(since) and len(since) == 3
    assert len(await admin.ok("GET", "/audit?limit=1")) == 1
    assert len(await admin.ok("GET", "/audit?actor=admin:admin")) == 4
    assert await admin.ok("GET", "/audit?actor=nobody") == []


async def test_bad_filters_and_missing_permission(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    for query, status in (
        ("limit=0", 422),
        ("limit=5000", 422),
        ("offset=-1", 422),
        ("actor_kind=robot", 422),
        ("since=yesterday", 400),
    ):
        response = await admin.get(f"/audit?{query}")
        assert response.status_code == status, (query, response.text)
    refused = await api(t, "operator").get("/audit")
    assert refused.status_code == 403 and "'audit:read'" in refused.json()["detail"]
    _, carrier = await accounts.signed_in(client, admin, role="carrier")
    assert (await carrier.get("/audit")).status_code == 403


async def test_a_refused_change_leaves_no_entry(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    before = await admin.ok("GET", "/audit")
    assert (
        await admin.post("/users", json={"email": "bad", "name": "X", "role": "carrier"})
    ).status_code == 422
    assert (await admin.post("/roles", json={"name": "carrier", "permissions": []})).status_code == 409
    assert await admin.ok("GET", "/audit") == before
