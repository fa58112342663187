"""The partner API (J2, K1): pre-advised deliveries and redeliveries, with an API key of a partner."""

from __future__ import annotations

import uuid

from tests.flows import close_door, compartment, deposit_and_close, new_email
from tests.support.api import Api
from tests.support.smtp import pickup_code


async def partner_key(admin: Api, client) -> Api:
    """What a tenant hands a shipping partner: a key that may pre-advise and follow packages."""
    made = await admin.ok(
        "POST",
        "/api-keys",
        {
            "name": f"partner-{uuid.uuid4().hex[:6]}",
            "role": "admin",
            "permissions": ["partner:write", "packages:read"],
        },
    )
    return Api(client, admin.slug, made["key"])


def tracking() -> str:
    return f"PRE-{uuid.uuid4().hex[:10].upper()}"


async def test_preadvised_delivery_holds_a_compartment_and_becomes_the_package(
    make_tenant, api, client, smtp
):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    partner = await partner_key(admin, client)
    bank = t.banks["Lobby"]
    email = new_email()
    tid = tracking()
    expected = await partner.ok(
        "POST",
        "/partner/deliveries",
        {
            "tracking_id": tid,
            "carrier": "DHL",
            "size": "l",
            "recipient": {"name": "Grace Hopper", "email": email},
            "bank_id": bank,
            "hold_compartment": True,
        },
    )
    assert expected["status"] == "expected" and expected["bank_id"] == bank
    assert expected["reservation_id"] is not None
    [held] = [
        r
        for r in await op.ok("GET", f"/banks/{bank}/reservations?status=active")
        if r["id"] == expected["reservation_id"]
    ]
    door = await compartment(op, bank, 8)
    assert held["compartment_id"] == door["id"] and door["status"] == "reserved", "the only large compartment"
    assert (await partner.ok("GET", f"/packages?status=expected&tracking_id={tid}"))[0]["id"] == expected[
        "id"
    ]

    again = await partner.post(
        "/partner/deliveries",
        json={"tracking_id": tid, "carrier": "DHL", "recipient": {"name": "Grace Hopper", "email": email}},
    )
    assert again.status_code == 409 and "already pre-advised" in again.json()["detail"]

    # The carrier arrives with it: the same package, into the held compartment.
    arrived = await op.ok("POST", "/partner/deliveries/arrive", {"tracking_id": tid})
    assert arrived["id"] == expected["id"] and arrived["status"] == "depositing"
    assert arrived["door"]["door"] == 8 and arrived["door"]["outcome"] == "opened"
    await close_door(admin, bank, 8)
    ready = await partner.ok("GET", f"/packages/{expected['id']}")
    assert ready["status"] == "ready"
    mails = await smtp.wait_for(email, count=2)
    assert any(pickup_code_or_none(m) for m in mails), "the package.ready mail carries a pickup code"
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{expected['id']}/events")]
    assert kinds[:2] == ["package.preadvised", "package.received"]
    assert "package.deposited" in kinds
    gone = await op.post("/partner/deliveries/arrive", json={"tracking_id": tid})
    assert gone.status_code == 404 and tid in gone.json()["detail"]


def pickup_code_or_none(mail):
    try:
        return pickup_code(mail)
    except Exception:
        return None


async def test_preadvise_for_the_public_needs_an_email_or_a_phone(make_tenant, api, client):
    t = await make_tenant()
    partner = await partner_key(api(t, "admin"), client)
    tid = tracking()
    refused = await partner.post(
        "/partner/deliveries",
        json={
            "tracking_id": tid,
            "carrier": "UPS",
            "recipient": {"name": "Nobody"},
            "bank_id": t.banks["Lobby"],
        },
    )
    assert refused.status_code == 422
    assert "email or phone" in refused.json()["detail"] and "(K2)" in refused.json()["detail"]
    assert await partner.ok("GET", f"/packages?tracking_id={tid}") == [], "nothing was recorded"
    by_phone = await partner.ok(
        "POST",
        "/partner/deliveries",
        {"tracking_id": tid, "carrier": "UPS", "recipient": {"name": "Someone", "phone": "+15550100"}},
    )
    assert by_phone["status"] == "expected" and by_phone["recipient_phone"] == "+15550100"


async def test_partner_routes_need_partner_write(make_tenant, api):
    t = await make_tenant()
    refused = await api(t, "operator").post(
        "/partner/deliveries",
        json={"tracking_id": tracking(), "carrier": "UPS", "recipient": {"name": "A", "email": new_email()}},
    )
    assert refused.status_code == 403 and "partner:write" in refused.json()["detail"]


async def test_redelivery_of_a_package_waiting_at_the_counter(make_tenant, api, client, smtp):
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    partner = await partner_key(admin, client)
    email = new_email()
    # E9: an oversized package waits at the counter of the Lobby's location.
    counter = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": tracking(),
            "carrier": "UPS",
            "size": "s",
            "oversized": True,
            "recipient": {"name": "Ada", "email": email},
            "bank_id": t.banks["Lobby"],
        },
    )
    assert counter["status"] == "at_counter"
    back = await partner.ok(
        "POST", f"/partner/packages/{counter['id']}/redelivery", {"bank_id": t.banks["Annex"]}
    )
    assert back["status"] == "received" and back["bank_id"] == t.banks["Annex"]
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{counter['id']}/events")]
    assert kinds[-1] == "package.redelivery_requested"

    # The carrier deposits it: an ordinary deposit, then a pickup code.
    deposited = await op.ok("POST", f"/packages/{counter['id']}/deposit", {"bank_id": t.banks["Annex"]})
    await close_door(admin, t.banks["Annex"], deposited["door"]["door"])
    assert (await op.ok("GET", f"/packages/{counter['id']}"))["status"] == "ready"
    again = await partner.post(
        f"/partner/packages/{counter['id']}/redelivery", json={"bank_id": t.banks["Lobby"]}
    )
    assert (
        again.status_code == 409
        and "only a package that expired or waits at the counter" in again.json()["detail"]
    )


async def test_redelivery_of_a_package_already_picked_up_is_refused(make_tenant, api, client, smtp):
    t = await make_tenant()
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    partner = await partner_key(admin, client)
    email = new_email()
    package = await deposit_and_close(op, admin, t.banks["Lobby"], email=email)
    [mail] = await smtp.wait_for(email)
    await kiosk.ok("POST", f"/banks/{t.banks['Lobby']}/pickup", {"code": pickup_code(mail)})
    before = await op.ok("GET", f"/packages/{package['id']}")
    events_before = await op.ok("GET", f"/packages/{package['id']}/events")
    refused = await partner.post(
        f"/partner/packages/{package['id']}/redelivery", json={"bank_id": t.banks["Lobby"]}
    )
    assert refused.status_code == 409
    assert (
        "already picked up" in refused.json()["detail"] and package["tracking_id"] in refused.json()["detail"]
    )
    assert await op.ok("GET", f"/packages/{package['id']}") == before, "nothing changed"
    assert await op.ok("GET", f"/packages/{package['id']}/events") == events_before


async def test_other_tenants_package_is_not_found(make_tenant, api, client):
    a, b = await make_tenant("a"), await make_tenant("b")
    counter = await api(a, "operator").ok(
        "POST",
        "/packages",
        {
            "tracking_id": tracking(),
            "carrier": "UPS",
            "size": "m",
            "oversized": True,
            "recipient": {"name": "Ada", "email": new_email()},
            "bank_id": a.banks["Lobby"],
        },
    )
    partner_b = await partner_key(api(b, "admin"), client)
    response = await partner_b.post(
        f"/partner/packages/{counter['id']}/redelivery", json={"bank_id": b.banks["Lobby"]}
    )
    assert response.status_code == 404


async def test_the_desk_receiving_a_preadvised_tracking_id_completes_it_not_a_second_package(
    make_tenant, api, client, smtp
):
    """The mailroom scans the label at the desk (POST /packages): the pre-advised delivery arrives."""
    t = await make_tenant()
    admin, op = api(t, "admin"), api(t, "operator")
    partner = await partner_key(admin, client)
    bank = t.banks["Lobby"]
    email = new_email()
    tid = tracking()
    expected = await partner.ok(
        "POST",
        "/partner/deliveries",
        {"tracking_id": tid, "carrier": "DHL", "size": "s", "recipient": {"name": "Ida B.", "email": email}},
    )
    scanned = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": tid, "carrier": "DHL", "size": "s", "recipient": {"name": "Ida B."}, "bank_id": bank},
    )
    assert scanned["id"] == expected["id"], "the pre-advised package, not a new one"
    assert scanned["status"] == "depositing" and scanned["recipient_email"] == email
    assert [p["id"] for p in await op.ok("GET", f"/packages?tracking_id={tid}")] == [expected["id"]]
    await close_door(admin, bank, scanned["door"]["door"])
    assert (await op.ok("GET", f"/packages/{expected['id']}"))["status"] == "ready"
