"""Sessions: CSRF on cookie requests, the idle period (B5), expiry, sign out, everywhere, by an admin.

Runs on SQLite and PostgreSQL; time moves with the platform clock, not by sleeping.
"""

from __future__ import annotations

from datetime import timedelta

from pigeonhole.domain import clock

from tests.support.signin import session_for, staff


def _url(slug: str, path: str) -> str:
    return f"/api/v1/t/{slug}{path}"


async def test_cookie_requests_that_change_state_need_the_csrf_token(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    person = await staff(client, admin, smtp, role="enterprise_admin")
    session = await session_for(client, person)
    client.cookies.set("ph_session", session.token)
    before = await admin.ok("GET", "/divisions")

    missing = await client.post(_url(t.slug, "/divisions"), json={"name": "By cookie, no token"})
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.json()["detail"]
    broken = await client.post(
        _url(t.slug, "/divisions"),
        json={"name": "By cookie, broken token"},
        headers={"X-CSRF-Token": session.csrf[:-2] + "00"},
    )
    assert broken.status_code == 403
    other = await session_for(client, person)  # another session's token does not fit this one
    client.cookies.set("ph_session", session.token)
    crossed = await client.post(
        _url(t.slug, "/divisions"), json={"name": "Crossed token"}, headers={"X-CSRF-Token": other.csrf}
    )
    assert crossed.status_code == 403
    assert await admin.ok("GET", "/divisions") == before

    made = await client.post(
        _url(t.slug, "/divisions"),
        json={"name": "By cookie, with token"},
        headers={"X-CSRF-Token": session.csrf},
    )
    assert made.status_code == 201, made.text
    # Reads by cookie and writes by bearer need no CSRF token.
    assert (await client.get(_url(t.slug, "/divisions"))).status_code == 200
    client.cookies.clear()
    by_bearer = await client.post(
        _url(t.slug, "/divisions"), json={"name": "By bearer"}, headers=session.bearer
    )
    assert by_bearer.status_code == 201


async def test_sessions_end_after_the_idle_period_but_not_while_used(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok("PATCH", "/auth/settings", {"session_idle_minutes": 10})
    person = await staff(client, admin, smtp)
    session = await session_for(client, person)
    assert session.body["session"]["idle_minutes"] == 10
    for _ in range(3):  # used every 9 minutes: 27 minutes, still signed in
        clock.advance(timedelta(minutes=9))
        assert (await client.get(_url(t.slug, "/auth/session"), headers=session.bearer)).status_code == 200
    clock.advance(timedelta(minutes=11))
    idle = await client.get(_url(t.slug, "/auth/session"), headers=session.bearer)
    assert idle.status_code == 401
    assert idle.json()["detail"] == "You were signed out after 10 minutes without activity; sign in again."
    # It stays ended, even once the clock no longer says idle.
    again = await client.get(_url(t.slug, "/auth/session"), headers=session.bearer)
    assert again.status_code == 401 and "(idle)" in again.json()["detail"]


async def test_sessions_expire_after_their_maximum_age(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    await admin.ok("PATCH", "/auth/settings", {"session_max_hours": 1, "session_idle_minutes": 50})
    person = await staff(client, admin, smtp)
    session = await session_for(client, person)
    clock.advance(timedelta(minutes=40))
    assert (await client.get(_url(t.slug, "/auth/session"), headers=session.bearer)).status_code == 200
    clock.advance(timedelta(minutes=21))
    expired = await client.get(_url(t.slug, "/auth/session"), headers=session.bearer)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


async def test_sign_out_and_sign_out_everywhere(client, make_tenant, api, smtp):
    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    laptop = await session_for(client, person)
    phone = await session_for(client, person)
    tablet = await session_for(client, person)
    listed = await client.get(_url(t.slug, "/auth/sessions"), headers=laptop.bearer)
    assert len(listed.json()) == 3
    assert [s["current"] for s in listed.json()].count(True) == 1

    out = await client.post(_url(t.slug, "/auth/signout"), headers=laptop.bearer)
    assert out.status_code == 204
    assert 'ph_session=""' in out.headers["set-cookie"] or "ph_session=;" in out.headers["set-cookie"]
    ended = await client.get(_url(t.slug, "/auth/session"), headers=laptop.bearer)
    assert ended.status_code == 401 and "signed out" in ended.json()["detail"]
    assert (await client.get(_url(t.slug, "/auth/session"), headers=phone.bearer)).status_code == 200

    everywhere = await client.post(_url(t.slug, "/auth/signout-everywhere"), headers=phone.bearer)
    assert everywhere.json() == {"ended": 2}
    for session in (phone, tablet):
        gone = await client.get(_url(t.slug, "/auth/session"), headers=session.bearer)
        assert gone.status_code == 401 and "signed out everywhere" in gone.json()["detail"]


async def test_ending_one_session_by_id_only_works_on_your_own(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin = api(t, "admin")
    ann, bob = await staff(client, admin, smtp), await staff(client, admin, smtp)
    ann_1, ann_2 = await session_for(client, ann), await session_for(client, ann)
    bob_1 = await session_for(client, bob)
    # Bob cannot end Ann's session: for him it does not exist.
    foreign = await client.delete(
        _url(t.slug, f"/auth/sessions/{ann_2.body['session']['id']}"), headers=bob_1.bearer
    )
    assert foreign.status_code == 404
    assert (await client.get(_url(t.slug, "/auth/session"), headers=ann_2.bearer)).status_code == 200
    mine = await client.delete(
        _url(t.slug, f"/auth/sessions/{ann_2.body['session']['id']}"), headers=ann_1.bearer
    )
    assert mine.status_code == 204
    assert (await client.get(_url(t.slug, "/auth/session"), headers=ann_2.bearer)).status_code == 401
    assert (await client.get(_url(t.slug, "/auth/session"), headers=ann_1.bearer)).status_code == 200


async def test_an_administrator_ends_a_users_sessions(client, make_tenant, api, smtp):
    t = await make_tenant()
    admin, operator = api(t, "admin"), api(t, "operator")
    person = await staff(client, admin, smtp)
    first, second = await session_for(client, person), await session_for(client, person)
    denied = await operator.delete(f"/auth/users/{person.id}/sessions")
    assert denied.status_code == 403
    assert (await client.get(_url(t.slug, "/auth/session"), headers=first.bearer)).status_code == 200
    assert (await admin.ok("GET", f"/auth/users/{person.id}"))["live_sessions"] == 2
    assert await admin.ok("DELETE", f"/auth/users/{person.id}/sessions") == {"ended": 2}
    for session in (first, second):
        gone = await client.get(_url(t.slug, "/auth/session"), headers=session.bearer)
        assert gone.status_code == 401 and "ended by admin:admin" in gone.json()["detail"]
    assert "user.sessions_ended" in [e["action"] for e in await admin.ok("GET", "/audit")]
    # Deleting the user ends their sessions too.
    third = await session_for(client, person)
    await admin.ok("DELETE", f"/users/{person.id}")
    assert (await client.get(_url(t.slug, "/auth/session"), headers=third.bearer)).status_code == 401


async def test_my_routes_are_for_users_not_api_keys(client, make_tenant, api):
    t = await make_tenant()
    admin = api(t, "admin")
    for method, path in (
        ("GET", "/auth/sessions"),
        ("POST", "/auth/signout-everywhere"),
        ("POST", "/auth/mfa/enrol"),
    ):
        response = await admin.request(method, path)
        assert response.status_code == 403, (path, response.text)
        assert "signed-in user" in response.json()["detail"]
    forged = await client.get(_url(t.slug, "/auth/session"), headers={"Authorization": "Bearer phs_made-up"})
    assert forged.status_code == 401 and "not valid" in forged.json()["detail"]


async def test_the_cookie_is_secure_over_https(settings, services, make_tenant, api, smtp, client):
    import httpx
    from pigeonhole.web.app import create_app

    t = await make_tenant()
    person = await staff(client, api(t, "admin"), smtp)
    app = create_app(settings, services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as tls:
        response = await tls.post(
            _url(t.slug, "/auth/signin"), json={"email": person.email, "password": person.password}
        )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
