"""Passwords: the welcome link, "Forgot your password?", single-use expiring links, the policy.

Every link is taken from the mail the real SMTP sink received and used as a
user would. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import Notification, SigninLink, UserCredential
from pigeonhole.domain import clock
from pigeonhole.domain.context import require_tenant

from tests.support import isolation
from tests.support.signin import PASSWORD, add_user, link_in, new_email, session_for, sign_in, staff, token_of
from tests.support.smtp import body_text


async def _credential(slug: str, user_id: str) -> dict | None:
    tenant = await require_tenant(slug)
    async with tenant_tx(tenant.id, write=False) as scope:
        return await scope.select(UserCredential).where(UserCredential.user_id == user_id).first()


async def _forgot(client, slug: str, email: str):
    return await client.post(f"/api/v1/t/{slug}/auth/password/forgot", json={"email": email})


async def test_welcome_mail_link_sets_the_first_password_once(client, make_tenant, api, smtp, caplog):
    t = await make_tenant()
    admin = api(t, "admin")
    user, link = await add_user(admin, smtp)
    [mail] = smtp.to(user["email"])
    assert mail["Subject"] == f"Welcome to Tenant {t.slug}: choose your password"
    assert user["email"] in body_text(mail)
    path, token = urlsplit(link).path, token_of(link)
    assert path == f"/api/v1/t/{t.slug}/auth/password/set"

    # The link exists only in the mail: the notification row kept it sealed, and wiped it once sent.
    tenant = await require_tenant(t.slug)
    await isolation.drained(tenant.id)
    async with tenant_tx(tenant.id, write=False) as scope:
        [note] = await scope.select(Notification).where(Notification.event == "account.welcome")
        links = await scope.select(SigninLink.digest).where(SigninLink.user_id == user["id"])
    assert note["status"] == "sent" and note["sealed"] is None and token not in note["data"]
    assert [row["digest"] for row in links] != [token] and token not in str(links)

    # Opening the link says what it is for.
    opened = await client.get(path, params={"token": token})
    assert opened.status_code == 200, opened.text
    assert opened.json()["purpose"] == "welcome" and opened.json()["email"] == user["email"]

    # Before a password is set, nobody signs in.
    assert (await sign_in(client, t.slug, user["email"], PASSWORD)).status_code == 401

    # A password that breaks the policy is refused and the link still works.
    short = await client.post(path, json={"token": token, "password": "short"})
    assert short.status_code == 422
    assert "at least 12 characters" in short.json()["detail"]
    same = await client.post(path, json={"token": token, "password": user["email"].upper()})
    assert same.status_code == 422 and "email address" in same.json()["detail"]
    assert (
        await _credential(t.slug, user["id"]) is None
        or (await _credential(t.slug, user["id"]))["password_hash"] is None
    )

    done = await client.post(path, json={"token": token, "password": PASSWORD})
    assert done.status_code == 200, done.text
    assert (await sign_in(client, t.slug, user["email"], PASSWORD)).json()["status"] == "signed_in"

    # Stored as an argon2id hash, never in clear.
    stored = (await _credential(t.slug, user["id"]))["password_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    # The link worked once: replayed, it is refused, logged, and changes nothing.
    caplog.set_level(logging.WARNING, logger="pigeonhole.domain.identity.reset")
    replay = await client.post(path, json={"token": token, "password": "another good passphrase"})
    assert replay.status_code == 410
    assert "already been used" in replay.json()["detail"]
    assert any("already used" in r.getMessage() for r in caplog.records)
    assert (await client.get(path, params={"token": token})).status_code == 410
    assert (await _credential(t.slug, user["id"]))["password_hash"] == stored
    assert (await sign_in(client, t.slug, user["email"], "another good passphrase")).status_code == 401


async def test_forgot_password_answers_the_same_for_any_address(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    before = await session_for(client, person)
    nobody = new_email("nobody")

    known = await _forgot(client, t.slug, person.email.upper())
    unknown = await _forgot(client, t.slug, nobody)
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers.get("content-length") == unknown.headers.get("content-length")

    mails = await smtp.wait_for(person.email, count=2)  # welcome, then reset
    reset = mails[-1]
    assert reset["Subject"] == f"Reset your Tenant {t.slug} password"
    assert smtp.to(nobody) == []
    link = link_in(reset)
    new_password = "a brand new passphrase"
    done = await client.post(urlsplit(link).path, json={"token": token_of(link), "password": new_password})
    assert done.status_code == 200, done.text

    assert (await sign_in(client, t.slug, person.email, person.password)).status_code == 401
    assert (await sign_in(client, t.slug, person.email, new_password)).json()["status"] == "signed_in"
    # A reset ends every session that was open with the old password.
    old = await client.get(f"/api/v1/t/{t.slug}/auth/session", headers=before.bearer)
    assert old.status_code == 401
    assert "password changed" in old.json()["detail"]


async def test_reset_link_expires_and_a_newer_one_replaces_it(client, make_tenant, api, smtp, caplog):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    await _forgot(client, t.slug, person.email)
    first = link_in((await smtp.wait_for(person.email, count=2))[-1])
    await _forgot(client, t.slug, person.email)
    second = link_in((await smtp.wait_for(person.email, count=3))[-1])
    assert token_of(first) != token_of(second)

    path = urlsplit(first).path
    replaced = await client.post(path, json={"token": token_of(first), "password": "replaced passphrase"})
    assert replaced.status_code == 410

    caplog.set_level(logging.WARNING, logger="pigeonhole.domain.identity.reset")
    clock.advance(timedelta(minutes=61))
    expired = await client.post(path, json={"token": token_of(second), "password": "too late passphrase"})
    assert expired.status_code == 410
    assert expired.json()["detail"].startswith("This link has expired")
    assert any("expired" in r.getMessage() for r in caplog.records)
    assert (await sign_in(client, t.slug, person.email, person.password)).json()["status"] == "signed_in"


async def test_a_made_up_or_foreign_link_is_refused(client, make_tenant, api, smtp):
    t = await make_tenant()
    other = await make_tenant()
    _user, link = await add_user(api(other, "admin"), smtp)
    for token in ("phl_made-up", "not-even-a-token", token_of(link)):  # the last: another tenant's link
        response = await client.post(
            f"/api/v1/t/{t.slug}/auth/password/set", json={"token": token, "password": PASSWORD}
        )
        assert response.status_code == 410, (token, response.text)
        assert "not valid" in response.json()["detail"]
    # The other tenant's link still works where it belongs.
    ok = await client.post(urlsplit(link).path, json={"token": token_of(link), "password": PASSWORD})
    assert ok.status_code == 200


async def test_reset_mails_per_account_are_capped_and_requests_per_address_throttled(
    client, make_tenant, api, smtp
):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    for _ in range(5):
        assert (await _forgot(client, t.slug, person.email)).status_code == 202
    tenant = await require_tenant(t.slug)
    async with tenant_tx(tenant.id, write=False) as scope:
        links = await scope.count(SigninLink).where(
            (SigninLink.user_id == person.id) & (SigninLink.purpose == "reset")
        )
    assert links == 3  # three mails an hour, whatever the number of requests
    for _ in range(15):
        await _forgot(client, t.slug, new_email())
    throttled = await _forgot(client, t.slug, new_email())
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0


async def test_bad_bodies_are_refused_with_the_field_named(client, make_tenant):
    t = await make_tenant()
    missing = await client.post(f"/api/v1/t/{t.slug}/auth/password/set", json={"token": "phl_x"})
    assert missing.status_code == 400 and "password" in missing.text
    typed = await client.post(f"/api/v1/t/{t.slug}/auth/password/forgot", json={"email": 42})
    assert typed.status_code == 400 and "email" in typed.text
    unknown_tenant = await _forgot(client, "no-such-tenant", new_email())
    assert unknown_tenant.status_code == 404


async def test_one_link_used_twice_at_once_sets_one_password(client, make_tenant, api, smtp):
    import asyncio

    t = await make_tenant()
    user, link = await add_user(api(t, "admin"), smtp)
    path, token = urlsplit(link).path, token_of(link)
    first, second = await asyncio.gather(
        client.post(path, json={"token": token, "password": "first racing passphrase"}),
        client.post(path, json={"token": token, "password": "second racing passphrase"}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 410]
    winner = "first racing passphrase" if first.status_code == 200 else "second racing passphrase"
    loser = "second racing passphrase" if first.status_code == 200 else "first racing passphrase"
    assert (await sign_in(client, t.slug, user["email"], winner)).status_code == 200
    assert (await sign_in(client, t.slug, user["email"], loser)).status_code == 401


def _cli(settings, *args: str):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PIGEONHOLE_DATABASE_URL": settings.database_url,
        "PIGEONHOLE_SECRET_KEY": settings.secret_key,
        "PIGEONHOLE_DATA_DIR": str(settings.data_dir),
        "PIGEONHOLE_PUBLIC_URL": "https://lockers.example.test",
    }
    return subprocess.run(
        [sys.executable, "-m", "pigeonhole", *args], capture_output=True, text=True, env=env, timeout=120
    )


async def test_an_operator_hands_out_a_link_and_unlocks_from_the_command_line(
    client, settings, make_tenant, api, smtp
):
    import asyncio

    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    out = await asyncio.to_thread(
        _cli, settings, "user", "password-link", "--tenant", t.slug, "--email", person.email
    )
    assert out.returncode == 0, out.stderr
    link = out.stdout.strip().splitlines()[-1]
    assert link.startswith(f"https://lockers.example.test/api/v1/t/{t.slug}/auth/password/set?token=phl_")
    done = await client.post(
        urlsplit(link).path, json={"token": token_of(link), "password": "operator given pass"}
    )
    assert done.status_code == 200, done.text

    for i in range(5):
        await sign_in(client, t.slug, person.email, f"wrong guess {i}")
    assert (await sign_in(client, t.slug, person.email, "operator given pass")).status_code == 423
    out = await asyncio.to_thread(
        _cli, settings, "user", "unlock", "--tenant", t.slug, "--email", person.email
    )
    assert out.returncode == 0 and "unlocked" in out.stdout, out.stderr
    assert (await sign_in(client, t.slug, person.email, "operator given pass")).status_code == 200

    nobody = await asyncio.to_thread(
        _cli, settings, "user", "unlock", "--tenant", t.slug, "--email", new_email()
    )
    assert nobody.returncode != 0 and "not found" in nobody.stderr
