"""Carrier codes (E7): a carrier delivers straight to the banks its code is valid at, nowhere else."""

from __future__ import annotations

from datetime import timedelta

from pigeonhole.domain import clock

from tests.flows import new_email
from tests.support.access import PLUGINS
from tests.support.api import Api


def _package(bank_id: str | None) -> dict:
    body = {
        "tracking_id": "TRK-CARRIER-1",
        "carrier": "UPS",
        "size": "s",
        "recipient": {"name": "Cara Carried", "email": new_email()},
    }
    if bank_id:
        body["bank_id"] = bank_id
    return body


async def test_a_carrier_code_opens_a_short_carrier_session_at_its_banks_only(make_tenant, api, client):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    lobby, annex = t.banks["Lobby"], t.banks["Annex"]
    created = await admin.ok("POST", "/carrier-codes", {"carrier": "UPS", "bank_ids": [lobby], "name": "Route 7"})
    code = created["code"]
    assert code.startswith("PHC-") and len(code) == 23 and created["qr_svg"].startswith("<svg")
    assert created["bank_ids"] == [lobby] and created["status"] == "active"
    [listed] = await admin.ok("GET", "/carrier-codes")
    assert listed["code"] is None and listed["qr_svg"] is None, "shown once"
    assert code[4:] not in str(listed)

    # What the scanner types from the QR form: lower case, no dashes, a line end.
    session = await kiosk.ok(
        "POST", f"/banks/{lobby}/carrier-sessions", {"code": code.replace("-", "").lower() + "\n"}
    )
    assert session["token"].startswith("phcs_") and session["carrier"] == "UPS"
    assert session["permissions"] == ["banks:read", "packages:write"]
    carrier = Api(client, t.slug, session["token"])

    package = await carrier.ok("POST", "/packages", _package(lobby))
    assert package["status"] == "depositing" and package["received_by"] == "carrier:UPS"
    elsewhere = await carrier.post("/packages", json={**_package(annex), "tracking_id": "TRK-CARRIER-2"})
    assert elsewhere.status_code == 404, "bound to the bank where the code was entered"
    nowhere = await carrier.post("/packages", json={**_package(None), "tracking_id": "TRK-CARRIER-3"})
    assert nowhere.status_code == 422
    assert (await carrier.get("/packages")).status_code == 403, "a carrier sees nobody's packages"
    assert [b["id"] for b in await carrier.ok("GET", "/banks")] == [lobby]
    [used] = await admin.ok("GET", "/carrier-codes")
    assert used["last_used_at"] is not None and used["last_used_bank_id"] == lobby

    clock.advance(timedelta(minutes=16))
    expired = await carrier.post("/packages", json={**_package(lobby), "tracking_id": "TRK-CARRIER-4"})
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    # Revoked: its sessions end at once and the code opens nothing.
    fresh = await kiosk.ok("POST", f"/banks/{lobby}/carrier-sessions", {"code": code})
    revoked = await admin.ok("DELETE", f"/carrier-codes/{created['id']}")
    assert revoked["status"] == "revoked"
    ended = await Api(client, t.slug, fresh["token"]).post("/packages", json=_package(lobby))
    assert ended.status_code == 401
    again = await kiosk.post(f"/banks/{lobby}/carrier-sessions", json={"code": code})
    assert again.status_code == 403 and again.json()["detail"].startswith("This carrier code was revoked on")


async def test_a_code_at_the_wrong_bank_is_refused_naming_it_and_changes_nothing(make_tenant, api):
    t = await make_tenant(plugins=PLUGINS)
    admin, kiosk = api(t, "admin"), api(t, "kiosk")
    lobby, annex = t.banks["Lobby"], t.banks["Annex"]
    created = await admin.ok("POST", "/carrier-codes", {"carrier": "FedEx", "bank_ids": [annex]})
    before = await admin.ok("GET", "/carrier-codes")
    bank_before = await admin.ok("GET", f"/banks/{lobby}")
    refused = await kiosk.post(f"/banks/{lobby}/carrier-sessions", json={"code": created["code"]})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This carrier code is not valid at locker bank 'Lobby'"
    assert await admin.ok("GET", "/carrier-codes") == before, "not marked used"
    assert await admin.ok("GET", f"/banks/{lobby}") == bank_before
    # Not counted as a guess: five more wrong-bank tries still get the same answer, not a pause.
    for _ in range(5):
        r = await kiosk.post(f"/banks/{lobby}/carrier-sessions", json={"code": created["code"]})
        assert r.status_code == 403


async def test_wrong_carrier_codes_meet_the_guessing_walls(make_tenant, api):
    t = await make_tenant(plugins=PLUGINS)
    admin, kiosk = api(t, "admin"), api(t, "kiosk")
    lobby = t.banks["Lobby"]
    created = await admin.ok("POST", "/carrier-codes", {"carrier": "DHL", "bank_ids": [lobby]})
    wrong = "PHC-" + ("0000-0000-0000-0000" if created["code"][4:8] != "0000" else "1111-1111-1111-1111")
    for left in (4, 3, 2, 1):
        r = await kiosk.post(f"/banks/{lobby}/carrier-sessions", json={"code": wrong})
        assert r.status_code == 403
        assert r.json()["detail"].startswith(f"This carrier code is not valid. {left} attempt")
    r = await kiosk.post(f"/banks/{lobby}/carrier-sessions", json={"code": wrong})
    assert r.status_code == 429 and r.headers["Retry-After"] == "300"
    paused = await kiosk.post(f"/banks/{lobby}/carrier-sessions", json={"code": created["code"]})
    assert paused.status_code == 429, "the right code waits too while the kiosk is paused"
    malformed = await api(t, "kiosk2").post(f"/banks/{lobby}/carrier-sessions", json={"code": "123456"})
    assert malformed.status_code == 422 and "PHC-XXXX-XXXX-XXXX-XXXX" in malformed.json()["detail"]


async def test_bad_carrier_codes_are_refused_and_change_nothing(make_tenant, api):
    t = await make_tenant(plugins=PLUGINS)
    admin, op = api(t, "admin"), api(t, "operator")
    lobby = t.banks["Lobby"]
    for body, status, words in (
        ({"carrier": "UPS", "bank_ids": []}, 422, "at least one locker bank"),
        ({"carrier": " ", "bank_ids": [lobby]}, 422, "carrier's name"),
        ({"carrier": "UPS", "bank_ids": [lobby], "expires_at": "2000-01-01T00:00:00Z"}, 422, "future"),
        ({"carrier": "UPS", "bank_ids": ["00000000-0000-0000-0000-000000000000"]}, 404, "not found"),
    ):
        r = await admin.post("/carrier-codes", json=body)
        assert r.status_code == status, r.text
        assert words in r.json()["detail"]
    assert await admin.ok("GET", "/carrier-codes") == []
    forbidden = await op.post("/carrier-codes", json={"carrier": "UPS", "bank_ids": [lobby]})
    assert forbidden.status_code == 403 and "apikeys:write" in forbidden.json()["detail"]
