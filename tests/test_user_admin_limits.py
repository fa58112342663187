"""Sign-in administration follows the rule of editing users: nobody acts on a user who holds more.

A mailroom administrator limited to one location may unlock, sign out,
reset the second factor of and revoke trusted devices of a locker operator
there, but not of an enterprise administrator (403 naming a permission it
lacks, nothing changed), even one limited to the same location; an
enterprise administrator of the whole tenant lies outside its scope (404).
SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from pigeonhole.domain import clock

from tests.support import accounts
from tests.support.signin import PASSWORD, Staff, enrolled, link_in, new_email, sign_in, token_of, totp

REFUSED = "You cannot change a user who holds the permission"


async def _staff(client, admin, smtp, role: str, locations: list[str] | None) -> Staff:
    email = new_email(role)
    body = {"email": email, "name": f"Staff {role}", "role": role}
    if locations is not None:
        body["locations"] = locations
    user = await admin.ok("POST", "/users", body)
    [mail] = await smtp.wait_for(email)
    link = link_in(mail)
    done = await client.post(urlsplit(link).path, json={"token": token_of(link), "password": PASSWORD})
    assert done.status_code == 200, done.text
    return Staff(slug=admin.slug, id=user["id"], email=email, password=PASSWORD, role=role)


async def _with_everything(client, person: Staff) -> dict:
    """Second factor on, a session on a remembered device, then locked by wrong passwords."""
    secret, _ = await enrolled(client, person)
    first = await sign_in(client, person.slug, person.email, person.password)
    assert first.json()["status"] == "mfa_required", first.text
    second = await client.post(
        f"/api/v1/t/{person.slug}/auth/signin/mfa",
        json={"challenge": first.json()["challenge"], "code": totp(secret), "remember_device": True},
    )
    assert second.status_code == 200 and second.json()["status"] == "signed_in", second.text
    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    for attempt in range(5):
        await sign_in(client, person.slug, person.email, f"wrong password {attempt}")
    assert (await sign_in(client, person.slug, person.email, person.password)).status_code == 423
    client.cookies.clear()
    return second.json()


async def _state(admin, person: Staff) -> tuple[dict, list]:
    status = await admin.ok("GET", f"/auth/users/{person.id}")
    devices = await admin.ok("GET", f"/auth/users/{person.id}/devices")
    return status, devices


async def test_a_scoped_mailroom_admin_cannot_act_on_an_enterprise_admin(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    [head] = [x for x in await admin.ok("GET", "/locations") if x["name"] == "Head Office"]
    _, mia = await accounts.signed_in(
        client, admin, role="mailroom_admin", locations=[head["id"]], name="Mia"
    )

    boss = await _staff(client, admin, smtp, "enterprise_admin", [head["id"]])
    await _with_everything(client, boss)
    before = await _state(admin, boss)
    assert before[0]["locked"] and before[0]["mfa_enabled"] and before[0]["live_sessions"] >= 1
    [device] = before[1]

    for method, path in (
        ("POST", f"/auth/users/{boss.id}/unlock"),
        ("DELETE", f"/auth/users/{boss.id}/sessions"),
        ("DELETE", f"/auth/users/{boss.id}/mfa"),
        ("DELETE", f"/auth/users/{boss.id}/devices/{device['id']}"),
    ):
        refused = await mia.request(method, path)
        assert refused.status_code == 403, (path, refused.text)
        detail = refused.json()["detail"]
        assert detail.startswith(REFUSED) and "which you do not have" in detail, detail
    assert await _state(admin, boss) == before, "a refused action changes nothing"
    # Looking stays allowed: the user is in Mia's scope.
    assert (await mia.ok("GET", f"/auth/users/{boss.id}"))["locked"] is True
    assert (await sign_in(client, t.slug, boss.email, boss.password)).status_code == 423

    # An enterprise administrator of the whole tenant is outside Mia's scope: not found.
    chief = await _staff(client, admin, smtp, "enterprise_admin", None)
    for method, path in (
        ("POST", f"/auth/users/{chief.id}/unlock"),
        ("DELETE", f"/auth/users/{chief.id}/sessions"),
        ("DELETE", f"/auth/users/{chief.id}/mfa"),
    ):
        hidden = await mia.request(method, path)
        assert hidden.status_code == 404, (path, hidden.text)

    # The tenant's own administrator (every permission) can.
    assert "unlocked" in (await admin.ok("POST", f"/auth/users/{boss.id}/unlock"))["detail"]


async def test_a_scoped_mailroom_admin_can_act_on_a_locker_operator_there(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    [head] = [x for x in await admin.ok("GET", "/locations") if x["name"] == "Head Office"]
    _, mia = await accounts.signed_in(
        client, admin, role="mailroom_admin", locations=[head["id"]], name="Mia"
    )

    op = await _staff(client, admin, smtp, "locker_operator", [head["id"]])
    await _with_everything(client, op)
    status, [device] = await _state(admin, op)
    assert status["locked"] and status["mfa_enabled"] and status["live_sessions"] >= 1

    unlocked = await mia.ok("POST", f"/auth/users/{op.id}/unlock")
    assert unlocked["detail"] == f"{op.email} is unlocked and can sign in again."
    ended = await mia.ok("DELETE", f"/auth/users/{op.id}/sessions")
    assert ended["ended"] == status["live_sessions"]
    assert (await mia.delete(f"/auth/users/{op.id}/devices/{device['id']}")).status_code == 204
    assert (await mia.delete(f"/auth/users/{op.id}/mfa")).status_code == 204

    after, devices = await _state(admin, op)
    assert (after["locked"], after["live_sessions"], after["mfa_enabled"], devices) == (False, 0, False, [])
    # With the lock and the second factor gone, the password alone signs in again.
    direct = await sign_in(client, t.slug, op.email, op.password)
    assert direct.json()["status"] == "signed_in", direct.text
    actions = [e["action"] for e in await admin.ok("GET", "/audit")]
    for action in ("user.unlocked", "user.sessions_ended", "user.device_revoked", "user.mfa_reset"):
        assert action in actions
