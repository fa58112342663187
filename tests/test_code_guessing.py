"""Guessing codes does not work: kiosks, banks and codes lock (F1, security)."""

from __future__ import annotations

from datetime import timedelta

from pigeonhole.domain import clock

from tests.flows import deposit_and_close, new_email
from tests.support.smtp import pickup_code


async def ready_package(t, api, smtp):
    email = new_email()
    package = await deposit_and_close(
        api(t, "operator"), api(t, "admin"), t.banks["Lobby"], email=email, size="s"
    )
    [mail] = await smtp.wait_for(email)
    return package, pickup_code(mail)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_five_wrong_codes_pause_the_kiosk_and_say_so(make_tenant, api, smtp):
    t = await make_tenant()
    package, code = await ready_package(t, api, smtp)
    kiosk, other_kiosk = api(t, "kiosk"), api(t, "kiosk2")
    bank = t.banks["Lobby"]
    for left in (4, 3, 2, 1):
        r = await kiosk.post(f"/banks/{bank}/pickup", json={"code": wrong(code)})
        assert r.status_code == 403
        assert f"{left} attempt" in r.json()["detail"]
    r = await kiosk.post(f"/banks/{bank}/pickup", json={"code": wrong(code)})
    assert r.status_code == 429
    assert "Code entry is paused for 5 minutes" in r.json()["detail"]
    assert r.headers["Retry-After"] == "300"
    # Even the right code waits: the kiosk is paused, not judging codes.
    r = await kiosk.post(f"/banks/{bank}/pickup", json={"code": code})
    assert r.status_code == 429
    # Another kiosk of the bank is not paused.
    assert (await other_kiosk.post(f"/banks/{bank}/pickup", json={"code": code})).status_code == 200


async def test_the_pause_ends(make_tenant, api, smtp):
    t = await make_tenant()
    _, code = await ready_package(t, api, smtp)
    kiosk, bank = api(t, "kiosk"), t.banks["Lobby"]
    for _ in range(5):
        await kiosk.post(f"/banks/{bank}/pickup", json={"code": wrong(code)})
    assert (await kiosk.post(f"/banks/{bank}/pickup", json={"code": code})).status_code == 429
    clock.advance(timedelta(minutes=5, seconds=1))
    assert (await kiosk.post(f"/banks/{bank}/pickup", json={"code": code})).status_code == 200


async def test_a_right_code_resets_the_count(make_tenant, api, smtp):
    t = await make_tenant()
    _, code1 = await ready_package(t, api, smtp)
    _, code2 = await ready_package(t, api, smtp)
    kiosk, bank = api(t, "kiosk"), t.banks["Lobby"]
    for _ in range(4):
        await kiosk.post(f"/banks/{bank}/pickup", json={"code": "999999" if code1 != "999999" else "999998"})
    assert (await kiosk.post(f"/banks/{bank}/pickup", json={"code": code1})).status_code == 200
    r = await kiosk.post(f"/banks/{bank}/pickup", json={"code": "999999" if code2 != "999999" else "999998"})
    assert "4 attempts left" in r.json()["detail"]


async def test_guesses_spread_over_kiosks_lock_the_bank(make_tenant, api, smtp):
    t = await make_tenant()
    _, code = await ready_package(t, api, smtp)
    bank = t.banks["Lobby"]
    await api(t, "admin").ok("PATCH", f"/banks/{bank}", {"settings": {"bank_max_failures": 6}})
    kiosks = [api(t, "kiosk"), api(t, "kiosk2")]
    for i in range(5):  # never five in a row at one kiosk
        r = await kiosks[i % 2].post(f"/banks/{bank}/pickup", json={"code": wrong(code)})
        assert r.status_code == 403
    r = await kiosks[1].post(f"/banks/{bank}/pickup", json={"code": wrong(code)})
    assert r.status_code == 429
    assert "this locker bank" in r.json()["detail"]
    for kiosk in kiosks:
        r = await kiosk.post(f"/banks/{bank}/pickup", json={"code": code})
        assert r.status_code == 429, "the whole bank stops taking codes"
    clock.advance(timedelta(minutes=15, seconds=1))
    assert (await kiosks[0].post(f"/banks/{bank}/pickup", json={"code": code})).status_code == 200


async def test_a_code_tried_against_its_package_locks_after_five_failures(make_tenant, api, smtp):
    t = await make_tenant()
    package, code = await ready_package(t, api, smtp)
    admin, bank = api(t, "admin"), t.banks["Lobby"]  # the recipient app names the package
    for _ in range(4):
        r = await admin.post(f"/banks/{bank}/pickup", json={"code": wrong(code), "package_id": package["id"]})
        assert r.status_code == 403
    r = await admin.post(f"/banks/{bank}/pickup", json={"code": wrong(code), "package_id": package["id"]})
    assert r.status_code == 403
    assert "locked" in r.json()["detail"]
    r = await api(t, "kiosk").post(f"/banks/{bank}/pickup", json={"code": code})
    assert r.status_code == 403, "a locked code no longer opens anything"
    events = await admin.ok("GET", f"/packages/{package['id']}/events")
    assert "credential.locked" in [e["kind"] for e in events]


async def test_malformed_code_is_refused_by_the_access_method(make_tenant, api):
    t = await make_tenant()
    r = await api(t, "kiosk").post(f"/banks/{t.banks['Lobby']}/pickup", json={"code": "12ab"})
    assert r.status_code == 422
    assert "6 digits" in r.json()["detail"]


async def test_expired_code_is_refused(make_tenant, api, smtp):
    t = await make_tenant()
    _, code = await ready_package(t, api, smtp)
    clock.advance(timedelta(hours=73))  # the test tenant holds packages 72 hours
    r = await api(t, "kiosk").post(f"/banks/{t.banks['Lobby']}/pickup", json={"code": code})
    assert r.status_code == 403
    assert "expired" in r.json()["detail"]


async def test_a_kiosk_cannot_pick_up_at_another_bank(make_tenant, api, smtp):
    t = await make_tenant()
    r = await api(t, "kiosk").post(f"/banks/{t.banks['Annex']}/pickup", json={"code": "123456"})
    assert r.status_code == 404
