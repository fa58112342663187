"""Staff users (A4): add, edit, delete, search; the welcome mail; history keeps a deleted user's name."""

from __future__ import annotations

import re
import uuid

from tests.flows import compartment
from tests.support import accounts
from tests.support.smtp import body_text

REQUIRE_EMPLOYEE_ID = "\n[settings]\nrequire_employee_id = true\n"


async def _count(admin) -> int:
    return len(await admin.ok("GET", "/users"))


async def test_add_a_user_sends_a_welcome_mail_and_the_user_is_found(make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    address = accounts.email("Ada")
    added = await admin.ok(
        "POST",
        "/users",
        {"email": address.upper(), "name": "Ada Lovelace", "employee_id": "E-1815", "role": "mailroom_admin"},
        status=201,
    )
    assert added["email"] == address.lower()
    assert added["role"] == "mailroom_admin" and added["status"] == "active"
    assert (
        "users:write" in added["effective_permissions"]
        and "roles:write" not in added["effective_permissions"]
    )
    assert added["scope"] is None

    [mail] = await smtp.wait_for(address.lower())
    assert re.search(r"https?://\S+", body_text(mail)), "the welcome mail carries a set-password link"

    assert (await admin.ok("GET", f"/users/{added['id']}"))["name"] == "Ada Lovelace"
    for q in ("lovelace", "ADA", address.split("@")[0][:6], "e-1815"):
        found = await admin.ok("GET", f"/users?q={q}")
        assert [u["id"] for u in found] == [added["id"]], q
    assert await admin.ok("GET", "/users?q=nobody-has-this") == []


async def test_edit_name_role_and_permissions(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    user = await accounts.add_user(admin, role="carrier", name="Carl")
    roles = {r["name"]: r for r in await admin.ok("GET", "/roles")}

    edited = await admin.ok(
        "PATCH",
        f"/users/{user['id']}",
        {"name": "Carl Carrier", "role_id": roles["locker_operator"]["id"], "permissions": ["audit:read"]},
    )
    assert edited["name"] == "Carl Carrier" and edited["role"] == "locker_operator"
    assert edited["permissions"] == ["audit:read"]
    assert set(edited["effective_permissions"]) == set(roles["locker_operator"]["permissions"]) | {
        "audit:read"
    }

    # The session of the edited user holds the new permissions at once.
    me = await accounts.as_user(api(t).client, t.slug, user)
    assert (await me.get("/audit")).status_code == 200
    await admin.ok("PATCH", f"/users/{user['id']}", {"permissions": []})
    refused = await me.get("/audit")
    assert refused.status_code == 403
    assert "'audit:read'" in refused.json()["detail"]


async def test_duplicate_and_bad_input_are_refused_and_change_nothing(make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    first = await accounts.add_user(admin, email=accounts.email("dup"))
    before = await _count(admin)

    same = await admin.post(
        "/users", json={"email": first["email"].upper(), "name": "Again", "role": "carrier"}
    )
    assert same.status_code == 409 and first["email"] in same.json()["detail"]

    cases = {
        "not an email": ({"email": "not-an-email", "name": "X", "role": "carrier"}, 422, "not a valid email"),
        "unknown role": (
            {"email": accounts.email(), "name": "X", "role": "overlord"},
            422,
            "Unknown role 'overlord'",
        ),
        "unknown permission": (
            {"email": accounts.email(), "name": "X", "role": "carrier", "permissions": ["launch:missiles"]},
            422,
            "launch:missiles",
        ),
        "no role": ({"email": accounts.email(), "name": "X"}, 422, "needs a role"),
        "empty name": ({"email": accounts.email(), "name": "", "role": "carrier"}, 400, "name"),
        "unknown field": (
            {"email": accounts.email(), "name": "X", "role": "carrier", "admin": True},
            400,
            "admin",
        ),
        "location of nowhere": (
            {"email": accounts.email(), "name": "X", "role": "carrier", "locations": [str(uuid.uuid4())]},
            404,
            "Location",
        ),
    }
    for label, (body, status, words) in cases.items():
        response = await admin.post("/users", json=body)
        assert response.status_code == status, (label, response.text)
        assert words in response.text, (label, response.text)
    assert await _count(admin) == before

    bad_edit = await admin.patch(f"/users/{first['id']}", json={"role_id": str(uuid.uuid4())})
    assert bad_edit.status_code == 404
    assert (await admin.ok("GET", f"/users/{first['id']}"))["role"] == first["role"]


async def test_tenant_setting_requires_the_employee_id(make_tenant, api):
    t = await make_tenant(extra=REQUIRE_EMPLOYEE_ID)
    admin = api(t, "admin")
    refused = await admin.post("/users", json={"email": accounts.email(), "name": "No Id", "role": "carrier"})
    assert refused.status_code == 422
    assert "employee ID" in refused.json()["detail"]
    assert await _count(admin) == 0
    ok = await accounts.add_user(admin, role="carrier", employee_id="E-7")
    assert ok["employee_id"] == "E-7"
    cleared = await admin.patch(f"/users/{ok['id']}", json={"employee_id": ""})
    assert cleared.status_code == 422


async def test_deleted_user_is_gone_but_custody_history_keeps_the_name(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    user, me = await accounts.signed_in(client, admin, role="locker_operator", name="Olga Operator")
    lobby = t.banks["Lobby"]
    package = await me.ok(
        "POST",
        "/packages",
        {
            "tracking_id": f"TRK-{uuid.uuid4().hex[:8]}",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Rita", "email": accounts.email("rita")},
            "bank_id": lobby,
        },
    )
    assert package["received_by"] == "locker_operator:Olga Operator"
    await admin.ok("POST", f"/ext/simulator/banks/{lobby}/doors/{package['door']['door']}/close")

    assert (await admin.delete(f"/users/{user['id']}")).status_code == 204
    assert (await admin.get(f"/users/{user['id']}")).status_code == 404
    assert user["id"] not in {u["id"] for u in await admin.ok("GET", "/users")}
    # The account's session ends with it.
    assert (await me.get("/packages")).status_code == 401
    # History still names who received the package.
    events = await admin.ok("GET", f"/packages/{package['id']}/events")
    assert "locker_operator:Olga Operator" in {e["actor"] for e in events}
    assert (await compartment(admin, lobby, package["door"]["door"]))["status"] == "occupied"
    # The email is free again for a new account.
    again = await accounts.add_user(admin, email=user["email"], role="carrier")
    assert again["id"] != user["id"]
    # Deleting twice: the account is not there any more.
    assert (await admin.delete(f"/users/{user['id']}")).status_code == 404


async def test_nobody_grants_more_than_they_hold(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    _, mailroom = await accounts.signed_in(client, admin, role="mailroom_admin")
    before = await _count(admin)
    refused = await mailroom.post(
        "/users", json={"email": accounts.email(), "name": "Boss", "role": "enterprise_admin"}
    )
    assert refused.status_code == 403
    assert "cannot grant the permission" in refused.json()["detail"]
    extra = await mailroom.post(
        "/users",
        json={"email": accounts.email(), "name": "Sneaky", "role": "carrier", "permissions": ["roles:write"]},
    )
    assert extra.status_code == 403 and "'roles:write'" in extra.json()["detail"]
    assert await _count(admin) == before
    ok = await mailroom.ok(
        "POST", "/users", {"email": accounts.email(), "name": "Courier", "role": "carrier"}
    )
    assert ok["role"] == "carrier"


async def test_a_user_cannot_delete_their_own_account(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    user, me = await accounts.signed_in(client, admin, role="enterprise_admin")
    refused = await me.delete(f"/users/{user['id']}")
    assert refused.status_code == 409
    assert (await admin.ok("GET", f"/users/{user['id']}"))["status"] == "active"


async def test_sso_provisioning_creates_then_updates_the_user(make_tenant, api):
    from pigeonhole.domain.context import tenant_context
    from pigeonhole.domain.errors import Invalid
    from pigeonhole.domain.identity import users

    t = await make_tenant()
    admin = api(t, "admin")
    address = accounts.email("sso")
    async with tenant_context(t.slug) as ctx:
        created = await users.provision_sso_user(
            ctx, email=address.upper(), name="Sam Sso", role_name=None, attributes={"employee_id": ["E-9"]}
        )
    shown = await admin.ok("GET", f"/users/{created['id']}")
    assert (shown["email"], shown["role"], shown["employee_id"]) == (address, "recipient", "E-9")

    async with tenant_context(t.slug) as ctx:
        updated = await users.provision_sso_user(
            ctx, email=address, name="Sam S.", role_name="locker_operator", attributes={}
        )
    assert updated["id"] == created["id"]
    shown = await admin.ok("GET", f"/users/{created['id']}")
    assert (shown["name"], shown["role"]) == ("Sam S.", "locker_operator")

    try:
        async with tenant_context(t.slug) as ctx:
            await users.provision_sso_user(
                ctx, email=accounts.email(), name="X", role_name="nope", attributes={}
            )
    except Invalid as exc:
        assert "Unknown role 'nope'" in exc.message
    else:
        raise AssertionError("an unknown role from the identity provider was accepted")
    assert len(await admin.ok("GET", "/users")) == 1

    actor = await users.principal(await _tenant(t.slug), created["id"])
    assert actor.role == "locker_operator" and actor.user_id == created["id"]
    assert "packages:write" in actor.permissions and actor.scope is None


async def _tenant(slug):
    from pigeonhole.domain.context import require_tenant

    return await require_tenant(slug)


async def test_nobody_changes_a_user_who_holds_more(make_tenant, api, client):
    t = await make_tenant()
    admin = api(t, "admin")
    boss = await accounts.add_user(admin, role="enterprise_admin", name="Boss")
    _, mailroom = await accounts.signed_in(client, admin, role="mailroom_admin")
    roles = {r["name"]: r["id"] for r in await admin.ok("GET", "/roles")}
    demote = await mailroom.patch(f"/users/{boss['id']}", json={"role_id": roles["carrier"]})
    assert demote.status_code == 403 and "cannot change a user who holds" in demote.json()["detail"]
    assert (await mailroom.delete(f"/users/{boss['id']}")).status_code == 403
    assert (await admin.ok("GET", f"/users/{boss['id']}"))["role"] == "enterprise_admin"
