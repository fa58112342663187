"""Reservation kinds (G4) and freeing compartments by ending reservations (G5), through the API."""

from __future__ import annotations

import textwrap
import uuid

import pytest
from pigeonhole.db.tables import Compartment
from pigeonhole.domain import reservations
from pigeonhole.domain.context import Actor, require_tenant, tenant_context
from pigeonhole.domain.errors import Invalid

from tests.flows import deposit, deposit_and_close, new_email

PLUGINS = textwrap.dedent("""
    [plugins.workplace]
    [plugins.pin]
    [plugins.email]
    from_address = "Mailroom <mailroom@example.test>"
    [plugins.simulator]
    [plugins.storage]
    """)

STAFF = Actor(name="test", role="system")


async def _hold(slug: str, bank_id: str, kind: str, *, occupied: bool = False) -> tuple[str, int]:
    """A reservation of another kind (a return, an exchange), as the partner API makes them."""
    info = await require_tenant(slug)
    async with tenant_context(info, STAFF) as ctx:
        comp = (
            await ctx.scope.select(Compartment)
            .where((Compartment.bank_id == uuid.UUID(bank_id)) & (Compartment.status == "available"))
            .order_by(Compartment.door)
            .first()
        )
        await ctx.scope.update(
            Compartment, {Compartment.status: "occupied" if occupied else "reserved"}
        ).where(Compartment.id == comp["id"])
        reservation_id = await reservations.hold(ctx, comp["bank_id"], comp["id"], kind)
    return str(reservation_id), comp["door"]


async def test_kinds_are_listed_and_filtered(make_tenant, api, smtp):
    t = await make_tenant("rk", plugins=PLUGINS)
    admin, op = api(t, "admin"), api(t, "operator")
    lobby = t.banks["Lobby"]
    assert reservations.KINDS == ("delivery", "return", "exchange", "storage")
    package = await deposit_and_close(op, admin, lobby, size="s")
    contact = await admin.ok("POST", "/directory/contacts", {"name": "Kim Kinds", "email": new_email()})
    stored = await op.ok(
        "POST",
        "/storage/reservations",
        {"bank_id": lobby, "size": "m", "mode": "open", "contact_id": contact["id"]},
    )
    returned, _ = await _hold(t.slug, lobby, "return")

    everything = await op.ok("GET", "/reservations")
    assert {r["kind"] for r in everything} == {"delivery", "storage", "return"}
    [delivery] = await op.ok("GET", "/reservations?kind=delivery")
    assert delivery["package_id"] == package["id"]
    assert [r["id"] for r in await op.ok("GET", "/reservations?kind=storage&status=active")] == [stored["id"]]
    assert [r["id"] for r in await op.ok("GET", f"/reservations?contact_id={contact['id']}")] == [
        stored["id"]
    ]
    [shown] = await op.ok("GET", f"/banks/{lobby}/reservations?kind=storage")
    assert (shown["id"], shown["mode"], shown["contact_id"]) == (stored["id"], "open", contact["id"])
    by_bank = await op.ok("GET", f"/banks/{lobby}/reservations?status=active")
    assert {r["id"] for r in by_bank} >= {stored["id"], returned, delivery["id"]}
    one = await op.ok("GET", f"/reservations/{returned}")
    assert (one["kind"], one["status"]) == ("return", "active")
    assert not await op.ok("GET", f"/reservations?bank_id={t.banks['Annex']}")

    for query, words in (
        ("kind=parcel", "Unknown reservation kind 'parcel'"),
        ("status=done", "Unknown reservation status"),
    ):
        bad = await op.get(f"/reservations?{query}")
        assert bad.status_code == 422 and words in bad.json()["detail"]
    assert (await op.get(f"/reservations/{uuid.uuid4()}")).status_code == 404
    assert (await op.get(f"/storage/reservations/{returned}")).status_code == 404, "not a storage reservation"


async def test_ending_a_reservation_frees_its_compartment_unless_something_is_inside(make_tenant, api, smtp):
    t = await make_tenant("rk", plugins=PLUGINS)
    op = api(t, "operator")
    lobby = t.banks["Lobby"]

    async def door_state(door: int) -> str:
        bank = await op.ok("GET", f"/banks/{lobby}")
        return next(c["status"] for c in bank["compartments"] if c["door"] == door)

    empty, empty_door = await _hold(t.slug, lobby, "exchange")
    ended = await op.ok("POST", f"/reservations/{empty}/end", {})
    assert (ended["status"], ended["compartment_status"]) == ("cancelled", "available")
    assert await door_state(empty_door) == "available"
    again = await op.post(f"/reservations/{empty}/end", json={})
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]

    # A return dropped off: the compartment waits for staff to empty it.
    full, full_door = await _hold(t.slug, lobby, "return", occupied=True)
    ended = await op.ok("POST", f"/reservations/{full}/end", {})
    assert (ended["status"], ended["compartment_status"]) == ("fulfilled", "expired")
    assert await door_state(full_door) == "expired"


async def test_a_delivery_with_its_package_inside_is_not_ended_here(make_tenant, api, smtp):
    t = await make_tenant("rk", plugins=PLUGINS)
    admin, op = api(t, "admin"), api(t, "operator")
    lobby = t.banks["Lobby"]
    for package in (await deposit_and_close(op, admin, lobby, size="s"), await deposit(op, lobby, size="s")):
        [held] = [
            r for r in await op.ok("GET", "/reservations?kind=delivery") if r["package_id"] == package["id"]
        ]
        before = await op.ok("GET", f"/banks/{lobby}")
        refused = await op.post(f"/reservations/{held['id']}/end", json={})
        assert refused.status_code == 409 and "pickup or removal" in refused.json()["detail"]
        assert await op.ok("GET", f"/banks/{lobby}") == before
        assert (await op.ok("GET", f"/reservations/{held['id']}"))["status"] == "active"


async def test_ending_needs_banks_write_and_a_kiosk_sees_only_its_bank(make_tenant, api, smtp):
    t = await make_tenant("rk", plugins=PLUGINS)
    kiosk = api(t, "kiosk")
    annex, _ = await _hold(t.slug, t.banks["Annex"], "return")
    lobby, _ = await _hold(t.slug, t.banks["Lobby"], "return")
    assert (await kiosk.get(f"/reservations/{annex}")).status_code == 404
    assert [r["id"] for r in await kiosk.ok("GET", "/reservations")] == [lobby]
    refused = await kiosk.post(f"/reservations/{lobby}/end", json={})
    assert refused.status_code == 403 and "banks:write" in refused.json()["detail"]


async def test_an_unknown_kind_is_refused(make_tenant):
    t = await make_tenant("rk", plugins=PLUGINS)
    info = await require_tenant(t.slug)
    with pytest.raises(Invalid, match="Unknown reservation kind 'parcel'"):
        async with tenant_context(info, STAFF) as ctx:
            await reservations.hold(ctx, uuid.UUID(t.banks["Lobby"]), uuid.uuid4(), "parcel")
