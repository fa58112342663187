"""QR pickup (F1): a long token in the ready message, never the six-digit code; scanners are forgiven."""

from __future__ import annotations

from tests.support.access import PLUGINS, code_for, contact, deposit_to, events, mail_for, qr_token


async def test_the_qr_token_opens_the_door_and_the_code_then_is_used(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    quinn = await contact(admin, "Quinn QR")
    package = await deposit_to(op, admin, bank, contact_id=quinn["id"])
    code = await code_for(smtp, quinn["email"], package["tracking_id"])
    token = qr_token(await mail_for(smtp, quinn["email"], package["tracking_id"]))
    assert code not in token and len(token) == 29

    # What a keyboard-wedge scanner types: another case, a line end.
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"method": "qr", "code": token.lower() + "\n"})
    assert (picked["package_id"], picked["method"], picked["outcome"]) == (package["id"], "qr", "opened")
    done = await op.ok("GET", f"/packages/{package['id']}")
    assert (done["status"], done["pickup_method"]) == ("picked_up", "qr")
    [event] = [e for e in await events(op, package["id"]) if e["kind"] == "package.picked_up"]
    assert event["method"] == "qr"

    used = await kiosk.post(f"/banks/{bank}/pickup", json={"code": code})
    assert used.status_code == 403 and "already used to pick up the package on" in used.json()["detail"]
    again = await kiosk.post(f"/banks/{bank}/pickup", json={"method": "qr", "code": token})
    assert again.status_code == 403 and "already used to pick up the package on" in again.json()["detail"]


async def test_the_six_digit_code_is_not_a_qr_token(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    quinn = await contact(admin, "Quinn Code")
    package = await deposit_to(op, admin, bank, contact_id=quinn["id"])
    code = await code_for(smtp, quinn["email"], package["tracking_id"])
    refused = await kiosk.post(f"/banks/{bank}/pickup", json={"method": "qr", "code": code})
    assert refused.status_code == 422
    assert "A QR pickup token starts with PHQ" in refused.json()["detail"]
    wrong = await kiosk.post(f"/banks/{bank}/pickup", json={"method": "qr", "code": "PHQ" + "A" * 26})
    assert wrong.status_code == 403 and "4 attempts left" in wrong.json()["detail"]
    assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "ready"
