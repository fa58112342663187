"""E3: a compartment reserved ahead for one package, used when that package is deposited."""

from __future__ import annotations

from datetime import timedelta

from pigeonhole.domain import clock

from tests.flows import compartment, new_email
from tests.support.api import Api


def package_body(tracking: str, bank_id: str | None = None, size: str = "s") -> dict:
    recipient = {"name": "Ada", "email": new_email()}
    body = {"tracking_id": tracking, "carrier": "UPS", "size": size, "recipient": recipient}
    if bank_id:
        body["bank_id"] = bank_id
    return body


async def test_reserved_compartment_is_used_for_its_package(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    held = await op.ok(
        "POST", f"/banks/{bank}/reservations", {"kind": "delivery", "tracking_id": "EXP-1", "size": "m"}
    )
    assert (held["kind"], held["status"], held["tracking_id"], held["designated_to"]) == (
        "delivery",
        "active",
        "EXP-1",
        "any",
    )
    comps = (await op.ok("GET", f"/banks/{bank}"))["compartments"]
    comp = next(c for c in comps if c["id"] == held["compartment_id"])
    assert (comp["status"], comp["size"], comp["package_id"]) == ("reserved", "m", None)
    # Other packages do not get it.
    other = await op.ok("POST", "/packages", package_body("OTHER", bank, size="m"))
    assert other["door"]["door"] != comp["door"]
    # The expected package arrives (smaller than reserved: still its compartment).
    package = await op.ok("POST", "/packages", package_body("EXP-1", bank, size="s"))
    assert package["door"]["door"] == comp["door"]
    assert (await compartment(op, bank, comp["door"]))["package_id"] == package["id"]
    active_rows = await op.ok("GET", f"/banks/{bank}/reservations?status=active")
    [active] = [r for r in active_rows if r["id"] == held["id"]]
    assert active["package_id"] == package["id"], "the reservation now holds the delivery"


async def test_received_package_reserved_then_deposited(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    package = await op.ok("POST", "/packages", package_body("RCV-1", size="l"))
    held = await op.ok("POST", f"/banks/{bank}/reservations", {"package_id": package["id"]})
    assert held["package_id"] == package["id"] and held["tracking_id"] == "RCV-1"
    # At another bank: refused, nothing changes.
    r = await op.post(f"/packages/{package['id']}/deposit", json={"bank_id": t.banks["Annex"]})
    assert r.status_code == 409
    assert "reserved at bank 'Lobby'" in r.json()["detail"]
    assert (await op.ok("GET", f"/packages/{package['id']}"))["status"] == "received"
    done = await op.ok("POST", f"/packages/{package['id']}/deposit", {"bank_id": bank})
    assert done["door"]["door"] == 8 and done["compartment_id"] == held["compartment_id"]
    # Reserving twice, or a package already in a locker: refused.
    r = await op.post(f"/banks/{bank}/reservations", json={"package_id": package["id"]})
    assert r.status_code == 409


async def test_only_the_designated_person_may_use_it(make_tenant, api, client):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    key = await admin.ok("POST", "/api-keys", {"name": "Bob", "role": "operator"})
    bob = Api(client, t.slug, key["key"])
    held = await op.ok(
        "POST", f"/banks/{bank}/reservations", {"tracking_id": "DES-1", "size": "s", "for_user": key["id"]}
    )
    assert held["designated_to"] == key["id"]
    before = await op.ok("GET", "/packages")
    r = await op.post("/packages", json=package_body("DES-1", bank))
    assert r.status_code == 403
    assert "designated person" in r.json()["detail"]
    assert await op.ok("GET", "/packages") == before
    package = await bob.ok("POST", "/packages", package_body("DES-1", bank))
    assert package["compartment_id"] == held["compartment_id"]


async def test_cancel_frees_the_compartment(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    held = await op.ok("POST", f"/banks/{bank}/reservations", {"tracking_id": "CAN-1", "size": "l"})
    cancelled = await op.ok("DELETE", f"/banks/{bank}/reservations/{held['id']}")
    assert cancelled["status"] == "cancelled" and cancelled["ended_at"] is not None
    assert (await compartment(op, bank, 8))["status"] == "available"
    again = await op.delete(f"/banks/{bank}/reservations/{held['id']}")
    assert again.status_code == 409
    # The package arriving later gets any compartment.
    package = await op.ok("POST", "/packages", package_body("CAN-1", bank, size="l"))
    assert package["door"]["door"] == 8
    # A delivery reservation made by a deposit is not cancelled here.
    active_rows = await op.ok("GET", f"/banks/{bank}/reservations?status=active")
    [delivery] = [r for r in active_rows if r["package_id"] == package["id"]]
    r = await op.delete(f"/banks/{bank}/reservations/{delivery['id']}")
    assert r.status_code == 409


async def test_unused_reservation_ends_at_its_end(make_tenant, api):
    from pigeonhole.domain import timers

    t = await make_tenant()
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    ends = clock.now() + timedelta(hours=2)
    held = await op.ok(
        "POST",
        f"/banks/{bank}/reservations",
        {"tracking_id": "END-1", "size": "l", "ends_at": ends.isoformat()},
    )
    await timers.tick()
    assert (await compartment(op, bank, 8))["status"] == "reserved", "nothing early"
    clock.advance(timedelta(hours=2, seconds=1))
    await timers.tick()
    [row] = [r for r in await op.ok("GET", f"/banks/{bank}/reservations") if r["id"] == held["id"]]
    assert row["status"] == "expired"
    assert (await compartment(op, bank, 8))["status"] == "available"


async def test_bad_reservations_are_refused(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    before = await op.ok("GET", f"/banks/{bank}/reservations")
    for body, status, words in (
        ({"tracking_id": "X"}, 422, "size is required"),
        ({"size": "s"}, 422, "package_id or the tracking_id"),
        ({"tracking_id": "X", "size": "s", "ends_at": "2000-01-01T00:00:00Z"}, 422, "in the future"),
        ({"tracking_id": "X", "size": "s", "kind": "storage"}, 400, "kind"),
        ({"tracking_id": "X", "size": "xl"}, 422, "can hold a package of size xl"),
    ):
        r = await op.post(f"/banks/{bank}/reservations", json=body)
        assert r.status_code == status, (body, r.text)
        assert words in r.text, (body, r.text)
    assert await op.ok("GET", f"/banks/{bank}/reservations") == before


BANK_10 = """
[[divisions.locations.banks]]
name = "Lobby"
driver = "simulator"
compartments = [ { size = "m", count = 10, heights_cm = [100] } ]
"""


async def test_concurrent_reservations_and_deposits_never_share_a_compartment(make_tenant, api):
    import asyncio
    from collections import Counter

    t = await make_tenant(banks=BANK_10)
    op = api(t, "operator")
    bank = t.banks["Lobby"]

    async def ahead(i: int):
        return await op.post(f"/banks/{bank}/reservations", json={"tracking_id": f"AH-{i}", "size": "s"})

    async def accessible(i: int):
        body = package_body(f"DP-{i}", bank)
        body["recipient"]["accessible"] = True
        return await op.post("/packages", json=body)

    responses = await asyncio.gather(*(f(i) for i in range(12) for f in (ahead, accessible)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: 14}, (statuses, [r.text for r in responses if r.status_code != 201])
    refusals = {r.json()["detail"] for r in responses if r.status_code == 409}
    assert refusals <= {
        "No lockers are currently available in selected locker bank",
        "No available compartment of size s or larger in bank 'Lobby'",
    }
    active = await op.ok("GET", f"/banks/{bank}/reservations?status=active")
    assert len(active) == 10 and len({r["compartment_id"] for r in active}) == 10
    summary = (await op.ok("GET", f"/banks/{bank}"))["summary"]
    assert summary["reserved"] == 10 and summary["available"] == 0
