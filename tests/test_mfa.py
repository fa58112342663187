"""TOTP second factor: enrolment with a QR code, two-step sign-in, recovery codes, trusted devices.

Codes are computed with pyotp from the secret enrolment returned, at the
platform's clock, as an authenticator app would. SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import MfaRecoveryCode, UserCredential, UserSession
from pigeonhole.domain import clock
from pigeonhole.domain.context import require_tenant

from tests.support.signin import Staff, enrolled, session_for, sign_in, staff, totp


def _url(slug: str, path: str) -> str:
    return f"/api/v1/t/{slug}{path}"


def code(secret: str) -> str:
    return totp(secret)


async def _rows(slug: str, table, user_id: str) -> list[dict]:
    tenant = await require_tenant(slug)
    async with tenant_tx(tenant.id, write=False) as scope:
        return await scope.select(table).where(table.user_id == user_id)


async def _challenge(client, person: Staff, **kw) -> str:
    response = await sign_in(client, person.slug, person.email, person.password, **kw)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "mfa_required", body
    assert "token" not in body and "set-cookie" not in response.headers
    return body["challenge"]


async def _second_step(client, slug: str, challenge: str, **fields):
    return await client.post(_url(slug, "/auth/signin/mfa"), json={"challenge": challenge, **fields})


async def test_enrolment_shows_a_qr_code_and_needs_a_code_to_turn_on(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    session = await session_for(client, person)
    enrol = await client.post(_url(t.slug, "/auth/mfa/enrol"), headers=session.bearer)
    body = enrol.json()
    uri = urlsplit(body["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert person.email in unquote(uri.path)
    assert parse_qs(uri.query)["secret"] == [body["secret"]]
    assert parse_qs(uri.query)["issuer"] == [f"Pigeonhole Tenant {t.slug}"]
    assert body["qr_svg"].startswith("data:image/svg+xml")
    # The secret is stored sealed, not in clear.
    [cred] = await _rows(t.slug, UserCredential, person.id)
    assert cred["totp_pending"] and body["secret"] not in cred["totp_pending"]

    wrong = await client.post(
        _url(t.slug, "/auth/mfa/confirm"), json={"code": "000000"}, headers=session.bearer
    )
    assert wrong.status_code == 422 and "not valid" in wrong.json()["detail"]
    status = await client.get(_url(t.slug, "/auth/mfa"), headers=session.bearer)
    assert status.json()["enabled"] is False

    confirm = await client.post(
        _url(t.slug, "/auth/mfa/confirm"), json={"code": code(body["secret"])}, headers=session.bearer
    )
    codes = confirm.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = [r["digest"] for r in await _rows(t.slug, MfaRecoveryCode, person.id)]
    assert len(stored) == 10 and not set(codes) & set(stored)
    status = await client.get(_url(t.slug, "/auth/mfa"), headers=session.bearer)
    assert status.json() == {"enabled": True, "recovery_codes_left": 10, "required_for_role": False}


async def test_sign_in_takes_two_steps_and_a_code_works_once(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    secret, _ = await enrolled(client, person)
    sessions_before = len(await _rows(t.slug, UserSession, person.id))

    challenge = await _challenge(client, person)
    wrong = await _second_step(
        client, t.slug, challenge, code="123456" if code(secret) != "123456" else "654321"
    )
    assert wrong.status_code == 401 and wrong.json()["detail"] == "That code is not correct."
    now_code = code(secret)
    done = await _second_step(client, t.slug, challenge, code=now_code)
    assert done.status_code == 200, done.text
    assert done.json()["session"]["method"] == "password+totp"
    assert done.headers["set-cookie"].startswith("ph_session=")
    assert len(await _rows(t.slug, UserSession, person.id)) == sessions_before + 1

    # The challenge is spent, and the same code cannot open a second sign-in.
    reused = await _second_step(client, t.slug, challenge, code=now_code)
    assert reused.status_code == 401 and "already been used" in reused.json()["detail"]
    replay = await _second_step(client, t.slug, await _challenge(client, person), code=now_code)
    assert replay.status_code == 401
    assert len(await _rows(t.slug, UserSession, person.id)) == sessions_before + 1

    # Neither step alone, nor both fields at once.
    both = await _second_step(client, t.slug, challenge, code=now_code, recovery_code="abcd-efgh")
    assert both.status_code == 422


async def test_recovery_codes_work_once_each(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    _secret, codes = await enrolled(client, person)
    used = await _second_step(
        client, t.slug, await _challenge(client, person), recovery_code=codes[0].upper()
    )
    assert used.status_code == 200 and used.json()["session"]["method"] == "password+recovery_code"
    again = await _second_step(client, t.slug, await _challenge(client, person), recovery_code=codes[0])
    assert again.status_code == 401 and "recovery code is not valid" in again.json()["detail"]
    session = await _second_step(client, t.slug, await _challenge(client, person), recovery_code=codes[1])
    bearer = {"Authorization": f"Bearer {session.json()['token']}"}
    assert (await client.get(_url(t.slug, "/auth/mfa"), headers=bearer)).json()["recovery_codes_left"] == 8

    # New codes need the password; the old ones then stop working.
    refused = await client.post(
        _url(t.slug, "/auth/mfa/recovery-codes"), json={"password": "nope"}, headers=bearer
    )
    assert refused.status_code == 403
    fresh = await client.post(
        _url(t.slug, "/auth/mfa/recovery-codes"), json={"password": person.password}, headers=bearer
    )
    assert len(fresh.json()["recovery_codes"]) == 10
    old = await _second_step(client, t.slug, await _challenge(client, person), recovery_code=codes[2])
    assert old.status_code == 401


async def test_an_expired_challenge_is_refused_and_creates_nothing(client, make_tenant, api, smtp, caplog):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    secret, _ = await enrolled(client, person)
    challenge = await _challenge(client, person)
    before = len(await _rows(t.slug, UserSession, person.id))
    clock.advance(timedelta(minutes=6))
    caplog.set_level(logging.WARNING, logger="pigeonhole.domain.identity.signin")
    late = await _second_step(client, t.slug, challenge, code=code(secret))
    assert any("challenge refused (expired)" in r.getMessage() for r in caplog.records)
    assert late.status_code == 401
    assert late.json()["detail"] == "This sign-in step has expired; sign in again with your password."
    made_up = await _second_step(client, t.slug, "phc_made-up", code=code(secret))
    assert made_up.status_code == 401 and "not valid" in made_up.json()["detail"]
    assert len(await _rows(t.slug, UserSession, person.id)) == before


async def test_wrong_codes_are_rate_limited(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    secret, _ = await enrolled(client, person)
    wrong = "000000" if code(secret) != "000000" else "111111"

    # One challenge takes five wrong codes, then it is spent.
    challenge = await _challenge(client, person)
    answers = [(await _second_step(client, t.slug, challenge, code=wrong)).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 401, 429]
    spent = await _second_step(client, t.slug, challenge, code=code(secret))
    assert spent.status_code == 401

    # Across challenges the user gets ten wrong codes per quarter hour; then even the right one waits.
    challenge = await _challenge(client, person)
    for _ in range(4):
        await _second_step(client, t.slug, challenge, code=wrong)
    challenge = await _challenge(client, person)
    blocked = await _second_step(client, t.slug, challenge, code=wrong)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    right_but_waiting = await _second_step(client, t.slug, challenge, code=code(secret))
    assert right_but_waiting.status_code == 429
    clock.advance(timedelta(minutes=16))
    ok = await _second_step(client, t.slug, await _challenge(client, person), code=code(secret))
    assert ok.status_code == 200, ok.text


async def test_do_not_challenge_me_on_this_device_again(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    person = await staff(client, admin, smtp)
    other = await staff(client, admin, smtp)
    secret, _ = await enrolled(client, person)
    await enrolled(client, other)

    remembered = await _second_step(
        client, t.slug, await _challenge(client, person), code=code(secret), remember_device=True
    )
    device = remembered.json()["device_token"]
    assert device.startswith("phd_")
    assert any(c.startswith("ph_device=") for c in remembered.headers.get_list("set-cookie"))
    client.cookies.clear()

    # With the device token, the password alone signs in.
    header = {"X-Device-Token": device}
    direct = await sign_in(client, t.slug, person.email, person.password, headers=header)
    assert direct.json()["status"] == "signed_in", direct.text
    bearer = {"Authorization": f"Bearer {direct.json()['token']}"}
    [listed] = (await client.get(_url(t.slug, "/auth/devices"), headers=bearer)).json()

    # A tampered token, or this token for another user, proves nothing.
    payload, _, signature = device.partition(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    await _challenge(client, person, headers={"X-Device-Token": tampered})
    await _challenge(client, other, headers=header)

    # It expires with mfa_remember_days (30 by default).
    clock.advance(timedelta(days=31))
    await _challenge(client, person, headers=header)
    clock.advance(timedelta(days=-31))

    # The user revokes it: challenged again.
    assert (
        await client.delete(_url(t.slug, f"/auth/devices/{listed['id']}"), headers=bearer)
    ).status_code == 204
    await _challenge(client, person, headers=header)
    assert (await client.get(_url(t.slug, "/auth/devices"), headers=bearer)).json() == []

    # An administrator revokes another one.
    clock.advance(timedelta(seconds=30))
    second = await _second_step(
        client, t.slug, await _challenge(client, person), code=code(secret), remember_device=True
    )
    client.cookies.clear()
    [row] = await admin.ok("GET", f"/auth/users/{person.id}/devices")
    assert (
        await api(t, "operator").delete(f"/auth/users/{person.id}/devices/{row['id']}")
    ).status_code == 403
    assert (await admin.delete(f"/auth/users/{person.id}/devices/{row['id']}")).status_code == 204
    await _challenge(client, person, headers={"X-Device-Token": second.json()["device_token"]})


async def test_a_role_that_requires_mfa_enrols_at_first_sign_in(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok("PATCH", "/auth/settings", {"mfa_required_roles": ["locker_operator"]})
    person = await staff(client, admin, smtp, role="locker_operator")
    first = await sign_in(client, t.slug, person.email, person.password)
    body = first.json()
    assert body["status"] == "mfa_enrolment_required" and "token" not in body
    # The enrolment challenge is not a way around the second step.
    sneaky = await _second_step(client, t.slug, body["challenge"], code="123456")
    assert sneaky.status_code == 401

    enrol = await client.post(_url(t.slug, "/auth/signin/mfa/enrol"), json={"challenge": body["challenge"]})
    secret = enrol.json()["secret"]
    bad = await client.post(
        _url(t.slug, "/auth/signin/mfa/enrol/confirm"),
        json={"challenge": body["challenge"], "code": "000000"},
    )
    assert bad.status_code in (401, 422)
    done = await client.post(
        _url(t.slug, "/auth/signin/mfa/enrol/confirm"),
        json={"challenge": body["challenge"], "code": code(secret)},
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "signed_in" and len(done.json()["recovery_codes"]) == 10
    bearer = {"Authorization": f"Bearer {done.json()['token']}"}

    # Required: the user cannot turn it off; the next sign-in asks for a code.
    refused = await client.post(
        _url(t.slug, "/auth/mfa/disable"), json={"password": person.password}, headers=bearer
    )
    assert refused.status_code == 403 and "requires a second factor" in refused.json()["detail"]
    clock.advance(timedelta(seconds=30))
    await _challenge(client, person)


async def test_turning_mfa_off_needs_the_password_and_an_admin_can_reset_it(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    person = await staff(client, admin, smtp)
    await enrolled(client, person)
    await _challenge(client, person)
    # An administrator turns it off (a lost phone): sign-in is one step again.
    assert (await api(t, "operator").delete(f"/auth/users/{person.id}/mfa")).status_code == 403
    await _challenge(client, person)
    await admin.ok("DELETE", f"/auth/users/{person.id}/mfa")
    direct = await sign_in(client, t.slug, person.email, person.password)
    assert direct.json()["status"] == "signed_in"
    bearer = {"Authorization": f"Bearer {direct.json()['token']}"}
    assert (await client.get(_url(t.slug, "/auth/mfa"), headers=bearer)).json()["enabled"] is False
    assert "user.mfa_reset" in [e["action"] for e in await admin.ok("GET", "/audit")]

    # The user turns it off, with the password.
    secret, _ = await enrolled(client, person)
    session = await _second_step(client, t.slug, await _challenge(client, person), code=code(secret))
    bearer = {"Authorization": f"Bearer {session.json()['token']}"}
    wrong = await client.post(_url(t.slug, "/auth/mfa/disable"), json={"password": "not it"}, headers=bearer)
    assert wrong.status_code == 403
    assert (await client.get(_url(t.slug, "/auth/mfa"), headers=bearer)).json()["enabled"] is True
    off = await client.post(
        _url(t.slug, "/auth/mfa/disable"), json={"password": person.password}, headers=bearer
    )
    assert off.status_code == 204
    assert (await sign_in(client, t.slug, person.email, person.password)).json()["status"] == "signed_in"
