"""Returns and exchanges through the lockers (K1, G4): drop-off code, kiosk, carrier collection."""

from __future__ import annotations

import uuid

from tests.flows import close_door, compartment, new_email
from tests.support.api import Api
from tests.test_partner_api import partner_key


def headers_of(mail) -> str:
    return mail.get("X-Pigeonhole-Event", "")


async def state(op: Api, bank_id: str, package_id: str, door: int) -> tuple:
    """What a user can see of a return: the package, its compartment, its events."""
    package = await op.ok("GET", f"/packages/{package_id}")
    comp = await compartment(op, bank_id, door)
    events = await op.ok("GET", f"/packages/{package_id}/events")
    return package["status"], comp["status"], comp.get("package_id"), len(events)


async def test_a_return_from_code_to_carrier(make_tenant, api, client, smtp):
    t = await make_tenant()
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    partner = await partner_key(admin, client)
    lobby = t.banks["Lobby"]
    email = new_email()
    made = await partner.ok(
        "POST",
        "/partner/returns",
        {
            "bank_id": lobby,
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Kim", "email": email},
            "days": 3,
        },
    )
    ret, code, door = made["package"], made["code"], made["door"]
    assert ret["direction"] == "return" and ret["status"] == "awaiting_dropoff" and len(code) == 6
    assert ret["tracking_id"].startswith("PH-"), "a tracking id is made when the partner gives none"
    assert (await compartment(op, lobby, door))["status"] == "reserved"
    [reservation] = [
        r
        for r in await op.ok("GET", f"/banks/{lobby}/reservations?status=active")
        if r["id"] == made["reservation_id"]
    ]
    assert reservation["kind"] == "return"
    [created] = await smtp.wait_for(email)
    assert headers_of(created) == "return.created"

    opened = await kiosk.ok("POST", f"/banks/{lobby}/dropoff", {"code": code})
    assert opened["door"] == door and opened["outcome"] == "opened" and opened["kind"] == "return"
    assert (await op.ok("GET", f"/packages/{ret['id']}"))["status"] == "dropping_off"
    await close_door(admin, lobby, door)
    waiting = await op.ok("GET", f"/packages/{ret['id']}")
    assert waiting["status"] == "awaiting_carrier" and waiting["deposited_at"] is not None
    assert waiting["direction"] == "return"
    assert (await compartment(op, lobby, door))["status"] == "occupied"
    mails = await smtp.wait_for(email, count=2)
    assert [headers_of(m) for m in mails] == ["return.created", "return.deposited"]

    # The code is spent: presenting it again is refused, and nothing moves.
    before = await state(op, lobby, ret["id"], door)
    reused = await kiosk.post(f"/banks/{lobby}/dropoff", json={"code": code})
    assert reused.status_code == 403 and "already used" in reused.json()["detail"]
    assert await state(op, lobby, ret["id"], door) == before

    collected = await op.ok("POST", f"/banks/{lobby}/returns/collect", {})
    assert [(c["package_id"], c["door"], c["outcome"]) for c in collected] == [(ret["id"], door, "opened")]
    done = await op.ok("GET", f"/packages/{ret['id']}")
    assert done["status"] == "collected" and done["pickup_method"] == "carrier"
    assert (await compartment(op, lobby, door))["status"] == "available"
    [ended] = [
        r for r in await op.ok("GET", f"/banks/{lobby}/reservations") if r["id"] == made["reservation_id"]
    ]
    assert ended["status"] == "fulfilled"
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{ret['id']}/events")]
    assert kinds == ["return.created", "door.opened", "door.closed", "return.deposited", "return.collected"]
    nothing = await op.post(f"/banks/{lobby}/returns/collect", json={})
    assert nothing.status_code == 409 and "No return is waiting" in nothing.json()["detail"]


async def test_a_dropoff_code_at_the_wrong_bank_opens_nothing(make_tenant, api, client, smtp):
    t = await make_tenant()
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    partner = await partner_key(admin, client)
    annex = t.banks["Annex"]
    made = await partner.ok(
        "POST",
        "/partner/returns",
        {"bank_id": annex, "carrier": "UPS", "size": "s", "recipient": {"name": "Kim", "phone": "+15550123"}},
    )
    before = await state(op, annex, made["package"]["id"], made["door"])
    wrong = await kiosk.post(f"/banks/{t.banks['Lobby']}/dropoff", json={"code": made["code"]})
    assert wrong.status_code == 403
    assert "for locker bank 'Annex', not this one" in wrong.json()["detail"]
    assert await state(op, annex, made["package"]["id"], made["door"]) == before, "nothing changed"


async def test_a_return_needs_a_way_to_reach_the_customer(make_tenant, api, client):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    partner = await partner_key(admin, client)
    lobby = t.banks["Lobby"]
    before = [c["status"] for c in (await op.ok("GET", f"/banks/{lobby}"))["compartments"]]
    refused = await partner.post(
        "/partner/returns", json={"bank_id": lobby, "carrier": "UPS", "recipient": {"name": "Nobody"}}
    )
    assert refused.status_code == 422 and "email or phone" in refused.json()["detail"]
    too_long = await partner.post(
        "/partner/returns",
        json={
            "bank_id": lobby,
            "carrier": "UPS",
            "recipient": {"name": "A", "email": new_email()},
            "days": 365,
        },
    )
    assert too_long.status_code == 422 and "days must be" in too_long.json()["detail"]
    assert [c["status"] for c in (await op.ok("GET", f"/banks/{lobby}"))["compartments"]] == before
    bad = await api(t, "kiosk").post(f"/banks/{lobby}/dropoff", json={"code": "12"})
    assert bad.status_code == 422


async def test_an_exchange_in_one_visit(make_tenant, api, client, smtp):
    t = await make_tenant()
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    partner = await partner_key(admin, client)
    lobby = t.banks["Lobby"]
    email = new_email()
    tid = f"EXC-{uuid.uuid4().hex[:8].upper()}"
    made = await partner.ok(
        "POST",
        "/partner/exchanges",
        {
            "bank_id": lobby,
            "delivery": {"tracking_id": tid, "carrier": "DHL", "size": "m"},
            "return": {"tracking_id": f"{tid}-R"},
            "recipient": {"name": "Lin", "email": email},
        },
    )
    delivery, ret, door, code = made["delivery"], made["package"], made["door"], made["code"]
    assert delivery["status"] == "expected" and ret["status"] == "awaiting_dropoff"
    assert ret["tracking_id"] == f"{tid}-R" and ret["carrier"] == "DHL"
    comp = await compartment(op, lobby, door)
    assert comp["status"] == "reserved" and comp["size"] == "m"

    early = await kiosk.post(f"/banks/{lobby}/dropoff", json={"code": code})
    assert early.status_code == 409 and "not in the locker yet" in early.json()["detail"]
    assert (await op.ok("GET", f"/packages/{ret['id']}"))["status"] == "awaiting_dropoff"

    arrived = await op.ok("POST", "/partner/deliveries/arrive", {"tracking_id": tid})
    assert arrived["door"]["door"] == door, "the delivery goes into the exchange's compartment"
    await close_door(admin, lobby, door)
    assert (await op.ok("GET", f"/packages/{delivery['id']}"))["status"] == "ready"

    swapped = await kiosk.ok("POST", f"/banks/{lobby}/dropoff", {"code": code})
    assert swapped["kind"] == "exchange" and swapped["delivery_package_id"] == delivery["id"]
    taken = await op.ok("GET", f"/packages/{delivery['id']}")
    assert taken["status"] == "picked_up" and taken["pickup_method"] == "exchange"
    await close_door(admin, lobby, door)
    assert (await op.ok("GET", f"/packages/{ret['id']}"))["status"] == "awaiting_carrier"
    comp = await compartment(op, lobby, door)
    assert comp["status"] == "occupied"

    collected = await op.ok("POST", f"/banks/{lobby}/returns/collect", {"package_id": ret["id"]})
    assert [c["door"] for c in collected] == [door]
    assert (await op.ok("GET", f"/packages/{ret['id']}"))["status"] == "collected"
    assert (await compartment(op, lobby, door))["status"] == "available"
    again = await op.post(f"/banks/{lobby}/returns/collect", json={"package_id": ret["id"]})
    assert again.status_code == 409 and "collected" in again.json()["detail"]
