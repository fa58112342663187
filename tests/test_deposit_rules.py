"""Deposit rules of #5: add to an existing compartment (E4), no barcode (E5), reopen (E6),
oversized packages at the counter (E9)."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta

from pigeonhole.domain import clock

from tests.flows import close_door, compartment, deposit, deposit_and_close, new_email
from tests.support.smtp import body_text, pickup_code

# The workplace workflow tells recipients of the events it lists: add the counter message.
PLUGINS = textwrap.dedent(
    """
    [plugins.workplace]
    hold_hours = 72
    notify_events = ["package.ready", "package.picked_up", "package.at_counter"]
    [plugins.pin]
    [plugins.email]
    from_address = "Mailroom <mailroom@example.test>"
    [plugins.simulator]
    """
)


async def snapshot(op, bank_id: str) -> tuple:
    bank = await op.ok("GET", f"/banks/{bank_id}")
    return (
        [(c["door"], c["status"], c["package_id"]) for c in bank["compartments"]],
        sorted(p["id"] for p in await op.ok("GET", "/packages")),
        len(await op.ok("GET", f"/banks/{bank_id}/reservations")),
    )


# --- E4 --------------------------------------------------------------------------------------


async def test_second_package_joins_the_recipients_compartment(make_tenant, api, smtp):
    t = await make_tenant()
    op, admin, kiosk = api(t, "operator"), api(t, "admin"), api(t, "kiosk")
    bank = t.banks["Lobby"]
    email = new_email()
    first = await deposit_and_close(op, admin, bank, size="s", email=email)
    second = await deposit(op, bank, size="xs", email=email)
    door = first["door"]["door"]
    assert second["door"] == {"door": door, "outcome": "opened", "added_to_existing": True}
    comp = await compartment(op, bank, door)
    assert comp["package_id"] == first["id"], "the compartment keeps its first package"
    assert comp["status"] == "occupied"
    assert (await op.ok("GET", f"/packages/{second['id']}"))["compartment_id"] == comp["id"]

    await close_door(admin, bank, door)
    ready = await op.ok("GET", f"/packages/{second['id']}")
    assert ready["status"] == "ready"
    mails = await smtp.wait_for(email, count=2)
    assert len(mails) == 2
    codes = {pickup_code(m) for m in mails}
    assert len(codes) == 2, "each package has its own code"
    assert all(f"Door: {door}" in body_text(m) for m in mails), "both messages name the same door"
    events = await op.ok("GET", f"/packages/{second['id']}/events")
    deposited = [e for e in events if e["kind"] == "package.deposited"]
    assert deposited[0]["data"]["added_to_existing"] is True
    # One active reservation holds the compartment for both.
    active = await op.ok("GET", f"/banks/{bank}/reservations?status=active")
    assert [r["compartment_id"] for r in active].count(comp["id"]) == 1
    assert kiosk  # pickup of a shared compartment is the access helper's (F2)


async def test_no_joining_when_it_does_not_fit_or_is_someone_else(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    email = new_email()
    first = await deposit_and_close(op, admin, bank, size="s", email=email)
    bigger = await deposit(op, bank, size="m", email=email)
    assert bigger["door"]["door"] != first["door"]["door"] and "added_to_existing" not in bigger["door"]
    other = await deposit(op, bank, size="s", email=new_email())
    assert other["door"]["door"] != first["door"]["door"]
    fresh = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "TRK-FRESH",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Ada", "email": email},
            "bank_id": bank,
            "fresh_compartment": True,
        },
    )
    assert fresh["door"]["door"] != first["door"]["door"], "the operator asked for a fresh compartment"


async def test_bank_setting_forbids_joining(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    changed = await admin.ok("PATCH", f"/banks/{bank}", {"settings": {"add_to_existing": False}})
    assert changed["settings"]["add_to_existing"] is False
    email = new_email()
    first = await deposit_and_close(op, admin, bank, size="s", email=email)
    second = await deposit(op, bank, size="s", email=email)
    assert second["door"]["door"] != first["door"]["door"]
    assert "added_to_existing" not in second["door"]


async def test_directory_contact_joins_by_contact(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    contact = await admin.ok("POST", "/directory/contacts", {"name": "Grace Hopper", "email": new_email()})
    body = {"carrier": "UPS", "size": "s", "recipient_contact_id": contact["id"], "bank_id": bank}
    first = await op.ok("POST", "/packages", {**body, "tracking_id": "C-1"})
    await close_door(admin, bank, first["door"]["door"])
    second = await op.ok("POST", "/packages", {**body, "tracking_id": "C-2"})
    assert second["door"]["door"] == first["door"]["door"] and second["door"]["added_to_existing"]


# --- E5 --------------------------------------------------------------------------------------


async def test_no_barcode_gets_a_generated_id(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    recipient = {"name": "Ada", "email": new_email()}
    one = await op.ok("POST", "/packages", {"carrier": "UPS", "size": "s", "recipient": recipient})
    two = await op.ok(
        "POST", "/packages", {"carrier": "UPS", "size": "s", "recipient": recipient, "no_barcode": True}
    )
    for package in (one, two):
        assert re.fullmatch(r"PH-[A-HJKMNP-Z2-9]{10}", package["tracking_id"]), package["tracking_id"]
        [received] = await op.ok("GET", f"/packages/{package['id']}/events")
        assert received["data"]["no_barcode"] is True
        assert received["data"]["generated_tracking_id"] == package["tracking_id"]
    assert one["tracking_id"] != two["tracking_id"]
    found = await op.ok("GET", f"/packages?tracking_id={one['tracking_id']}")
    assert [p["id"] for p in found] == [one["id"]]


async def test_no_barcode_and_a_tracking_id_is_refused(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    before = await op.ok("GET", "/packages")
    r = await op.post(
        "/packages",
        json={
            "tracking_id": "TRK-1",
            "no_barcode": True,
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Ada"},
        },
    )
    assert r.status_code == 422
    assert "either tracking_id or no_barcode" in r.json()["detail"]
    assert await op.ok("GET", "/packages") == before


# --- E6 --------------------------------------------------------------------------------------


async def test_reopen_within_the_window(make_tenant, api, smtp):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    email = new_email()
    package = await deposit_and_close(op, admin, bank, size="m", email=email)
    comp = await compartment(op, bank, package["door"]["door"])
    clock.advance(timedelta(seconds=60))
    opened = await op.ok("POST", f"/banks/{bank}/compartments/{comp['id']}/reopen")
    assert opened["door"] == comp["door"] and opened["outcome"] == "opened"
    assert opened["package_id"] == package["id"]
    await close_door(admin, bank, comp["door"])
    after = await op.ok("GET", f"/packages/{package['id']}")
    assert after["status"] == "ready"
    kinds = [e["kind"] for e in await op.ok("GET", f"/packages/{package['id']}/events")]
    assert "door.reopened" in kinds
    notes = await op.ok("GET", f"/packages/{package['id']}/notifications")
    assert [n["event"] for n in notes].count("package.ready") == 1, "no second ready message"
    commands = await op.ok("GET", f"/banks/{bank}/commands")
    assert any(c["kind"] == "reopen" and c["doors"] == [comp["door"]] for c in commands)


async def test_reopen_after_the_window_is_refused(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    package = await deposit_and_close(op, admin, bank, size="m")
    comp = await compartment(op, bank, package["door"]["door"])
    clock.advance(timedelta(seconds=121))
    before = await op.ok("GET", f"/packages/{package['id']}/events")
    r = await op.post(f"/banks/{bank}/compartments/{comp['id']}/reopen")
    assert r.status_code == 409
    assert "reopen window of 120 seconds" in r.json()["detail"]
    assert await op.ok("GET", f"/packages/{package['id']}/events") == before
    # An empty compartment has nothing to reopen.
    empty = await compartment(op, bank, 8)
    r = await op.post(f"/banks/{bank}/compartments/{empty['id']}/reopen")
    assert r.status_code == 409 and "only a deposit can be reopened" in r.json()["detail"]


async def test_reopen_window_is_a_bank_setting(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    await admin.ok("PATCH", f"/banks/{bank}", {"settings": {"reopen_window_seconds": 600}})
    package = await deposit_and_close(op, admin, bank, size="m")
    comp = await compartment(op, bank, package["door"]["door"])
    clock.advance(timedelta(seconds=500))
    assert (await op.ok("POST", f"/banks/{bank}/compartments/{comp['id']}/reopen"))["outcome"] == "opened"


# --- E9 --------------------------------------------------------------------------------------


async def test_oversized_package_waits_at_the_counter(make_tenant, api):
    t = await make_tenant(plugins=PLUGINS)
    op = api(t, "operator")
    bank = t.banks["Lobby"]
    before = (await op.ok("GET", f"/banks/{bank}"))["summary"]
    flagged = await op.ok(
        "POST",
        "/packages",
        {
            "tracking_id": "BIG-1",
            "carrier": "UPS",
            "size": "m",
            "oversized": True,
            "recipient": {"name": "Ada", "email": new_email()},
            "bank_id": bank,
        },
    )
    too_big = await deposit(op, bank, size="xl")  # the Lobby's largest compartment is l
    for package in (flagged, too_big):
        assert package["status"] == "at_counter"
        assert package["door"] is None and package["compartment_id"] is None
        assert package["bank_id"] == bank
        events = await op.ok("GET", f"/packages/{package['id']}/events")
        assert events[-1]["kind"] == "package.at_counter"
        assert events[-1]["data"]["place"] == "the counter at Head Office"
        notes = await op.ok("GET", f"/packages/{package['id']}/notifications")
        assert [n["event"] for n in notes] == ["package.at_counter"]
    assert (await op.ok("GET", f"/banks/{bank}"))["summary"] == before, "no compartment was used"
    listed = await op.ok("GET", "/packages?status=at_counter")
    assert {p["id"] for p in listed} == {flagged["id"], too_big["id"]}


async def test_no_counter_when_the_bank_forbids_it(make_tenant, api):
    t = await make_tenant()
    op, admin = api(t, "operator"), api(t, "admin")
    bank = t.banks["Lobby"]
    await admin.ok("PATCH", f"/banks/{bank}", {"settings": {"oversized_to_counter": False}})
    before = await snapshot(op, bank)
    r = await op.post(
        "/packages",
        json={
            "tracking_id": "BIG",
            "carrier": "UPS",
            "size": "xl",
            "recipient": {"name": "Ada"},
            "bank_id": bank,
        },
    )
    assert r.status_code == 422 and "can hold a package of size xl" in r.json()["detail"]
    r = await op.post(
        "/packages",
        json={
            "tracking_id": "BIG",
            "carrier": "UPS",
            "size": "s",
            "oversized": True,
            "recipient": {"name": "Ada"},
            "bank_id": bank,
        },
    )
    assert r.status_code == 422 and "oversized_to_counter" in r.json()["detail"]
    assert await snapshot(op, bank) == before


async def test_received_package_deposited_later_goes_to_the_counter(make_tenant, api):
    t = await make_tenant()
    op = api(t, "operator")
    package = await op.ok(
        "POST",
        "/packages",
        {"tracking_id": "XL-1", "carrier": "UPS", "size": "xl", "recipient": {"name": "Ada"}},
    )
    moved = await op.ok("POST", f"/packages/{package['id']}/deposit", {"bank_id": t.banks["Annex"]})
    assert moved["status"] == "at_counter" and moved["bank_id"] == t.banks["Annex"]
