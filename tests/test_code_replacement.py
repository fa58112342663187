"""A forgotten code (F5): an operator's override or the recipient app sends a new one; the old dies at once."""

from __future__ import annotations

from tests.flows import new_email
from tests.support.access import PLUGINS, code_for, contact, deposit_to, events, mail_for, qr_token
from tests.support.api import Api
from tests.support.smtp import pickup_code

NEW_CODE = "/recipient/new-code"


async def test_an_operator_replaces_a_forgotten_code(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    rita = await contact(admin, "Rita Replace")
    package = await deposit_to(op, admin, bank, contact_id=rita["id"])
    old = await code_for(smtp, rita["email"], package["tracking_id"])

    answer = await op.ok("POST", f"/packages/{package['id']}/code")
    assert answer["methods"] == ["pin", "qr"] and answer["messages"] >= 1
    assert old not in str(answer), "the new code goes to the recipient only"
    mail = await mail_for(smtp, rita["email"], package["tracking_id"], "new pickup code")
    new = pickup_code(mail)
    assert qr_token(mail)

    dead = await kiosk.post(f"/banks/{bank}/pickup", json={"code": old})
    assert dead.status_code == 403
    assert dead.json()["detail"].startswith("This code was replaced by a new one on ")
    kinds = [e["kind"] for e in await events(op, package["id"])]
    assert "credential.replaced" in kinds
    picked = await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": new})
    assert picked["package_id"] == package["id"]

    # A package that left the locker gets no code; nothing changes.
    before = await op.ok("GET", f"/packages/{package['id']}/events")
    refused = await op.post(f"/packages/{package['id']}/code")
    assert refused.status_code == 409 and "only a package waiting in a locker" in refused.json()["detail"]
    assert await op.ok("GET", f"/packages/{package['id']}/events") == before


async def test_no_reachable_recipient_keeps_the_old_code(make_tenant, api, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    package = await deposit_to(op, admin, bank, recipient={"name": "No Address"})
    refused = await op.post(f"/packages/{package['id']}/code")
    assert refused.status_code == 409 and "No channel reaches No Address" in refused.json()["detail"]
    assert "credential.replaced" not in [e["kind"] for e in await events(op, package["id"])]


async def test_the_recipient_app_sends_a_new_code_to_the_address_on_file_only(make_tenant, api, client, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op, kiosk = api(t, "admin"), api(t, "operator"), api(t, "kiosk")
    public = Api(client, t.slug, None)
    bank = t.banks["Lobby"]
    email = new_email()
    package = await deposit_to(op, admin, bank, recipient={"name": "Sam Self", "email": email})
    old = await code_for(smtp, email, package["tracking_id"])

    # A wrong address or tracking number: the same answer, and nothing sent or changed.
    wrong = await public.post(NEW_CODE, json={"tracking_id": package["tracking_id"], "email": new_email()})
    unknown = await public.post(NEW_CODE, json={"tracking_id": "TRK-NOPE", "email": email})
    right = await public.post(NEW_CODE, json={"tracking_id": package["tracking_id"], "email": email.upper()})
    assert wrong.status_code == unknown.status_code == right.status_code == 202
    assert wrong.json() == unknown.json() == right.json()
    mail = await mail_for(smtp, email, package["tracking_id"], "new pickup code")
    assert len([e for e in await events(op, package["id"]) if e["kind"] == "credential.replaced"]) == 1
    assert (await kiosk.post(f"/banks/{bank}/pickup", json={"code": old})).status_code == 403
    assert (await kiosk.ok("POST", f"/banks/{bank}/pickup", {"code": pickup_code(mail)}))["package_id"] == package["id"]

    refused = await public.post(NEW_CODE, json={"tracking_id": package["tracking_id"]})
    assert refused.status_code == 422 and "email address or the phone number" in refused.json()["detail"]


async def test_new_code_requests_are_rate_limited(make_tenant, api, client, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op = api(t, "admin"), api(t, "operator")
    public = Api(client, t.slug, None)
    email = new_email()
    package = await deposit_to(op, admin, t.banks["Lobby"], recipient={"name": "Ray Rate", "email": email})
    await code_for(smtp, email, package["tracking_id"])
    body = {"tracking_id": package["tracking_id"], "email": email}
    for _ in range(5):
        assert (await public.post(NEW_CODE, json=body)).status_code == 202
    replaced = [e for e in await events(op, package["id"]) if e["kind"] == "credential.replaced"]
    assert len(replaced) == 3, "a package gets at most three new codes an hour; the answer stays the same"
    for _ in range(6):  # the eleventh request from this address within 15 minutes
        last = await public.post(NEW_CODE, json={"tracking_id": "TRK-GUESS", "email": new_email()})
    assert last.status_code == 429 and "Too many requests for a new code" in last.json()["detail"]
    assert last.headers.get("Retry-After")


async def test_a_phone_number_on_file_matches_however_it_is_written(make_tenant, api, client, smtp):
    t = await make_tenant(plugins=PLUGINS)
    admin, op = api(t, "admin"), api(t, "operator")
    public = Api(client, t.slug, None)
    email = new_email()
    package = await deposit_to(
        op, admin, t.banks["Lobby"], recipient={"name": "Pia Phone", "email": email, "phone": "+1 206 555 0100"}
    )
    await code_for(smtp, email, package["tracking_id"])
    short = await public.post(NEW_CODE, json={"tracking_id": package["tracking_id"], "phone": "0100"})
    assert short.status_code == 202
    assert not [e for e in await events(op, package["id"]) if e["kind"] == "credential.replaced"], (
        "a few digits match nothing"
    )
    await public.post(NEW_CODE, json={"tracking_id": package["tracking_id"], "phone": "(1) 206-555-0100"})
    await mail_for(smtp, email, package["tracking_id"], "new pickup code")
