"""The spine's promise: a package goes from the operator to its recipient (E1, E2, F1, F6, H1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pigeonhole.manifests.apply import apply

from tests.flows import close_door, compartment, deposit, new_email
from tests.support.api import Api
from tests.support.smtp import body_text, pickup_code

ROOT = Path(__file__).resolve().parents[1]


async def walk(op: Api, admin: Api, kiosk: Api, smtp, bank_id: str, location: str, *, language="en"):
    email = new_email()
    package = await deposit(op, bank_id, size="m", email=email, name="Ada Lovelace", language=language)
    assert package["status"] == "depositing"
    assert package["door"]["outcome"] == "opened"
    door = package["door"]["door"]
    comp = await compartment(op, bank_id, door)
    assert comp["status"] == "reserved"
    assert comp["size"] == "m", "the smallest size that fits a medium package is medium"

    [held] = [
        r
        for r in await op.ok("GET", f"/banks/{bank_id}/reservations?status=active")
        if r["package_id"] == package["id"]
    ]
    assert (held["kind"], held["compartment_id"]) == ("delivery", comp["id"])

    await close_door(admin, bank_id, door)
    ready = await op.ok("GET", f"/packages/{package['id']}")
    assert ready["status"] == "ready"
    assert ready["expires_at"] is not None
    assert (await compartment(op, bank_id, door))["status"] == "occupied"

    [mail] = await smtp.wait_for(email)
    text = body_text(mail)
    assert location in text
    assert package["tracking_id"] in text
    code = pickup_code(mail)
    assert len(code) == 6

    refused = await kiosk.post(
        f"/banks/{bank_id}/pickup", json={"code": "000000" if code != "000000" else "000001"}
    )
    assert refused.status_code == 403
    assert "not valid" in refused.json()["detail"]

    picked = await kiosk.ok("POST", f"/banks/{bank_id}/pickup", {"code": code})
    assert picked["door"] == door and picked["outcome"] == "opened" and picked["method"] == "pin"

    done = await op.ok("GET", f"/packages/{package['id']}")
    assert done["status"] == "picked_up"
    assert done["picked_up_by"] == "Ada Lovelace"
    assert done["pickup_method"] == "pin"
    assert done["picked_up_at"] is not None
    assert (await compartment(op, bank_id, door))["status"] == "available"

    [ended] = [
        r for r in await op.ok("GET", f"/banks/{bank_id}/reservations") if r["package_id"] == package["id"]
    ]
    assert ended["status"] == "fulfilled" and ended["ended_at"] is not None
    assert ended["ends_at"] == ready["expires_at"], "a delivery is held until the package expires"

    again = await kiosk.post(f"/banks/{bank_id}/pickup", json={"code": code})
    assert again.status_code == 403, "a code dies with its pickup"

    events = await op.ok("GET", f"/packages/{package['id']}/events")
    kinds = [e["kind"] for e in events]
    assert kinds == [
        "package.received",
        "package.assigned",
        "door.opened",
        "door.closed",
        "package.deposited",
        "package.picked_up",
    ]
    pickup_event = events[-1]
    assert pickup_event["method"] == "pin"
    assert pickup_event["data"]["person"] == "Ada Lovelace"
    assert pickup_event["actor"].startswith("kiosk:")
    return package, code, mail


async def test_deposit_to_pickup(make_tenant, api, smtp):
    t = await make_tenant()
    await walk(api(t, "operator"), api(t, "admin"), api(t, "kiosk"), smtp, t.banks["Lobby"], "Head Office")


async def test_french_recipient_gets_french_mail(make_tenant, api, smtp):
    t = await make_tenant()
    _, _, mail = await walk(
        api(t, "operator"),
        api(t, "admin"),
        api(t, "kiosk"),
        smtp,
        t.banks["Lobby"],
        "Head Office",
        language="fr",
    )
    assert "Code de retrait" in body_text(mail)


async def test_code_is_stored_only_as_a_digest(make_tenant, api, smtp, backend):
    t = await make_tenant()
    package, code, _ = await walk(
        api(t, "operator"), api(t, "admin"), api(t, "kiosk"), smtp, t.banks["Lobby"], "Head Office"
    )
    # Look for the code in clear anywhere in the credential and notification tables.
    from pigeonhole.db.engine import tenant_tx
    from pigeonhole.db.tables import Credential, Notification
    from pigeonhole.domain.context import require_tenant

    info = await require_tenant(t.slug)
    async with tenant_tx(info.id, write=False) as scope:
        creds = await scope.select(Credential).where(Credential.package_id == package["id"])
        notes = await scope.select(Notification).where(Notification.package_id == package["id"])
    assert creds, "the credential exists"
    for row in creds + notes:
        for value in row.values():
            assert code not in str(value), f"code found in clear in {row}"
    assert all(n["sealed"] is None for n in notes), "sent messages keep no sealed secret"


async def test_both_demo_tenants_walk_the_flow(client, smtp):
    reports = [await apply(ROOT / "tenants" / slug) for slug in ("northwind", "postal")]
    assert {r.slug for r in reports} == {"northwind", "postal"}
    for slug, bank_name, location in (
        ("northwind", "HQ Lobby", "Seattle HQ"),
        ("postal", "Arlington Lobby", "Arlington Post Office"),
    ):
        admin = Api(client, slug, f"ph_demo_{slug}_admin")
        op = Api(client, slug, f"ph_demo_{slug}_operator")
        kiosk = Api(client, slug, f"ph_demo_{slug}_kiosk")
        banks = await op.ok("GET", "/banks")
        bank_id = next(b["id"] for b in banks if b["name"] == bank_name)
        await walk(op, admin, kiosk, smtp, bank_id, location)


@pytest.mark.parametrize("size", ["xs", "s"])
async def test_smallest_fitting_size_is_chosen(make_tenant, api, size):
    t = await make_tenant()
    op = api(t, "operator")
    package = await deposit(op, t.banks["Lobby"], size=size)
    comp = await compartment(op, t.banks["Lobby"], package["door"]["door"])
    assert comp["size"] == "s", "no xs compartment in the bank: the next size up, never a bigger one"
