"""Password sign-in: the session it opens, wrong passwords, lockout, unlock, throttling, tenants apart.

Runs on SQLite and PostgreSQL with users made through the API and the welcome mail.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import UserSession
from pigeonhole.domain import clock
from pigeonhole.domain.context import require_tenant

from tests.support.signin import new_email, session_for, sign_in, staff

LOCKED = "This user account is locked. Too many unsuccessful login attempts."


async def _sessions_of(slug: str, user_id: str) -> list[dict]:
    tenant = await require_tenant(slug)
    async with tenant_tx(tenant.id, write=False) as scope:
        return await scope.select(UserSession).where(UserSession.user_id == user_id)


async def test_sign_in_opens_a_session_usable_as_bearer_and_cookie(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp, role="enterprise_admin")
    response = await sign_in(client, t.slug, person.email.upper(), person.password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "signed_in"
    assert body["token"].startswith("phs_")
    assert body["session"]["user_id"] == person.id and body["session"]["method"] == "password"
    assert body["session"]["idle_minutes"] == 30 and body["session"]["current"] is True
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"ph_session={body['token']}")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; https gets Secure

    # As bearer: the user's permissions apply (an enterprise admin lists users).
    bearer = {"Authorization": f"Bearer {body['token']}"}
    listed = await client.get(f"/api/v1/t/{t.slug}/users", headers=bearer)
    assert listed.status_code == 200 and person.email in listed.text
    me = await client.get(f"/api/v1/t/{t.slug}/auth/session", headers=bearer)
    assert me.json()["user_id"] == person.id and me.json()["current"] is True

    # As cookie (the client kept it): reads work without a header.
    client.cookies.set("ph_session", body["token"])
    assert (await client.get(f"/api/v1/t/{t.slug}/users")).status_code == 200

    # The token is stored only as a digest.
    [row] = await _sessions_of(t.slug, person.id)
    assert body["token"] not in str(row.values())


async def test_wrong_password_and_unknown_account_answer_alike(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    wrong = await sign_in(client, t.slug, person.email, "not the password at all")
    unknown = await sign_in(client, t.slug, new_email("ghost"), "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["detail"] == "The email address or the password is not correct."
    assert "set-cookie" not in wrong.headers
    assert await _sessions_of(t.slug, person.id) == []


async def test_lockout_after_the_tenant_setting_then_admin_unlock(client, make_tenant, api, smtp, caplog):
    t = await make_tenant()
    admin = api(t, "admin")
    person = await staff(client, admin, smtp)
    caplog.set_level(logging.WARNING, logger="pigeonhole.domain.identity.signin")
    for attempt in range(4):
        refused = await sign_in(client, t.slug, person.email, f"wrong password {attempt}")
        assert refused.status_code == 401, refused.text
    fifth = await sign_in(client, t.slug, person.email, "wrong password 5")
    assert fifth.status_code == 423
    assert fifth.json()["detail"] == LOCKED
    assert any("account locked" in r.getMessage() for r in caplog.records)

    # Even the right password is refused while locked, with exactly the same sentence.
    right = await sign_in(client, t.slug, person.email, person.password)
    assert (right.status_code, right.json()["detail"]) == (423, LOCKED)
    assert await _sessions_of(t.slug, person.id) == []
    state = await admin.ok("GET", f"/auth/users/{person.id}")
    assert state["locked"] is True and state["locked_until"]

    # The operator cannot unlock; the administrator can; the lock is audited.
    operator = api(t, "operator")
    denied = await operator.post(f"/auth/users/{person.id}/unlock")
    assert denied.status_code == 403 and "users:write" in denied.json()["detail"]
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 423
    unlocked = await admin.ok("POST", f"/auth/users/{person.id}/unlock")
    assert "unlocked" in unlocked["detail"]
    assert (await sign_in(client, t.slug, person.email, person.password)).json()["status"] == "signed_in"
    actions = [e["action"] for e in await admin.ok("GET", "/audit")]
    assert "user.locked" in actions and "user.unlocked" in actions


async def test_lock_lifts_by_itself_after_lockout_minutes(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    changed = await admin.ok("PATCH", "/auth/settings", {"lockout_attempts": 2, "lockout_minutes": 10})
    assert (changed["lockout_attempts"], changed["lockout_minutes"]) == (2, 10)
    person = await staff(client, admin, smtp)
    assert (await sign_in(client, t.slug, person.email, "wrong password 1")).status_code == 401
    assert (await sign_in(client, t.slug, person.email, "wrong password 2")).status_code == 423
    clock.advance(timedelta(minutes=9))
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 423
    clock.advance(timedelta(minutes=2))
    assert (await sign_in(client, t.slug, person.email, person.password)).json()["status"] == "signed_in"
    # A success clears the count: one new failure does not lock again.
    assert (await sign_in(client, t.slug, person.email, "wrong password 3")).status_code == 401
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 200


async def test_one_address_guessing_across_accounts_is_throttled(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok("PATCH", "/auth/settings", {"signin_ip_max_failures": 3})
    person = await staff(client, admin, smtp)
    for _ in range(3):
        assert (await sign_in(client, t.slug, new_email("guess"), "guessing a password")).status_code == 401
    throttled = await sign_in(client, t.slug, person.email, person.password)
    assert throttled.status_code == 429
    assert "Too many unsuccessful sign-ins" in throttled.json()["detail"]
    assert int(throttled.headers["retry-after"]) > 0
    assert await _sessions_of(t.slug, person.id) == []
    clock.advance(timedelta(minutes=16))
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 200


async def test_users_and_sessions_never_cross_tenants(client, make_tenant, api, smtp):
    a, b = await make_tenant(), await make_tenant()
    person = await staff(client, api(a, "admin"), smtp, role="enterprise_admin")
    # The same credentials at another tenant's door: no such account there.
    elsewhere = await sign_in(client, b.slug, person.email, person.password)
    assert elsewhere.status_code == 401
    session = await session_for(client, person)
    for path in ("/users", "/auth/session", "/banks"):
        response = await client.get(f"/api/v1/t/{b.slug}{path}", headers=session.bearer)
        assert response.status_code == 401, (path, response.text)
    # B's admin cannot see or unlock A's user.
    b_admin = api(b, "admin")
    assert (await b_admin.get(f"/auth/users/{person.id}")).status_code == 404
    assert (await b_admin.post(f"/auth/users/{person.id}/unlock")).status_code == 404
    assert (await b_admin.delete(f"/auth/users/{person.id}/sessions")).status_code == 404
    still = await client.get(f"/api/v1/t/{a.slug}/auth/session", headers=session.bearer)
    assert still.status_code == 200


async def test_settings_are_validated_and_need_the_permission(client, make_tenant, api):
    t = await make_tenant()
    admin, operator = api(t, "admin"), api(t, "operator")
    bad = await admin.patch("/auth/settings", json={"lockout_attempts": 0})
    assert bad.status_code == 422 and "lockout_attempts" in bad.json()["detail"]
    unknown = await admin.patch("/auth/settings", json={"lockout_attemps": 3})
    assert unknown.status_code == 400 and "lockout_attemps" in unknown.text
    role = await admin.patch("/auth/settings", json={"mfa_required_roles": ["no_such_role"]})
    assert role.status_code == 422 and "no_such_role" in role.json()["detail"]
    assert (await admin.ok("GET", "/auth/settings"))["lockout_attempts"] == 5
    assert (await operator.patch("/auth/settings", json={"lockout_attempts": 3})).status_code == 403
    assert (await admin.ok("GET", "/auth/settings"))["lockout_attempts"] == 5


async def test_an_old_hash_is_upgraded_at_the_next_sign_in(client, make_tenant, api, smtp):
    from argon2 import PasswordHasher
    from pigeonhole.db.tables import UserCredential
    from pigeonhole.domain.identity import passwords

    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(person.password)
    tenant = await require_tenant(t.slug)
    async with tenant_tx(tenant.id) as scope:
        await scope.update(UserCredential, {UserCredential.password_hash: weak}).where(
            UserCredential.user_id == person.id
        )
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 200
    async with tenant_tx(tenant.id, write=False) as scope:
        row = await scope.select(UserCredential).where(UserCredential.user_id == person.id).first()
    assert row["password_hash"] != weak
    assert "m=65536,t=3,p=4" in row["password_hash"] and not passwords.needs_rehash(row["password_hash"])
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 200


async def test_when_the_tenant_requires_sso_only_break_glass_admins_use_a_password(
    client, make_tenant, api, smtp
):
    import uuid

    import msgspec
    from pigeonhole.db.tables import SsoSetting

    t = await make_tenant()
    admin = api(t, "admin")
    person = await staff(client, admin, smtp)
    rescue = await staff(client, admin, smtp, role="enterprise_admin")
    tenant = await require_tenant(t.slug)
    # What the SSO settings page stores (C3's sso_settings.update, once a provider is enabled).
    async with tenant_tx(tenant.id) as scope:
        await scope.insert(
            SsoSetting,
            dict(
                id=uuid.uuid4(),
                require_sso=True,
                break_glass=msgspec.json.encode([rescue.id]).decode(),
                updated_at=clock.now(),
            ),
        )
    refused = await sign_in(client, t.slug, person.email, person.password)
    assert refused.status_code == 403 and "single sign-on" in refused.json()["detail"]
    assert await _sessions_of(t.slug, person.id) == []
    # A wrong password still answers as a wrong password (it says nothing about SSO).
    assert (await sign_in(client, t.slug, person.email, "wrong password")).status_code == 401
    assert (await sign_in(client, t.slug, rescue.email, rescue.password)).json()["status"] == "signed_in"


async def test_change_password_needs_the_current_one_and_ends_other_sessions(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    here, elsewhere = await session_for(client, person), await session_for(client, person)
    url = f"/api/v1/t/{t.slug}/auth/password/change"
    wrong = await client.post(
        url, json={"current_password": "not it", "new_password": "a fresh passphrase"}, headers=here.bearer
    )
    assert wrong.status_code == 403 and "nothing was changed" in wrong.json()["detail"]
    weak = await client.post(
        url, json={"current_password": person.password, "new_password": "short"}, headers=here.bearer
    )
    assert weak.status_code == 422
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 200
    done = await client.post(
        url,
        json={"current_password": person.password, "new_password": "a fresh passphrase"},
        headers=here.bearer,
    )
    assert done.status_code == 204, done.text
    session_url = f"/api/v1/t/{t.slug}/auth/session"
    assert (await client.get(session_url, headers=here.bearer)).status_code == 200
    assert (await client.get(session_url, headers=elsewhere.bearer)).status_code == 401
    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 401
    assert (await sign_in(client, t.slug, person.email, "a fresh passphrase")).status_code == 200


async def test_a_burst_of_guesses_at_once_still_gets_only_the_allowed_tries(client, make_tenant, api, smtp):
    import asyncio

    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    answers = await asyncio.gather(
        *(sign_in(client, t.slug, person.email, f"parallel guess {i}") for i in range(10))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * 4 + [423] * 6, statuses
    assert all(r.json()["detail"] == LOCKED for r in answers if r.status_code == 423)
    right = await sign_in(client, t.slug, person.email, person.password)
    assert (right.status_code, right.json()["detail"]) == (423, LOCKED)
