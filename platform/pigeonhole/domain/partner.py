"""The partner API (J2, K1): shipping and retail software tells the platform what is coming.

- **Pre-advise** a delivery: a package in status ``expected``, known by its
  tracking id before it arrives, optionally with a compartment held for it at
  its bank (E3, :func:`pigeonhole.domain.packages.reserve_ahead`), the
  recipient told (``delivery.preadvised``) when one is held.
- **Arrive**: the carrier scans the pre-advised tracking id; the expected
  package becomes the real one (``received``), and with a bank it is assigned a
  compartment (the held one) whose door opens, as any deposit.
- **Redelivery** (K1): a package that expired and waits at the counter (or in
  shelf storage) goes back to ``received``, destined for a bank; the carrier
  deposits it again (``POST /packages/{id}/deposit``).

Returns and exchanges are in :mod:`pigeonhole.domain.returns`. Every change is
one transaction with its custody events; event subscribers (partner webhooks)
hear of each through :mod:`pigeonhole.messaging.subscribers`.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from pigeonhole.api import Recipient
from pigeonhole.db.tables import Compartment, Package, Reservation
from pigeonhole.domain import clock, commands, credentials, custody, lockers, packages
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.directory import recipients
from pigeonhole.domain.errors import Conflict, Invalid, NotFound
from pigeonhole.messaging import notify

EXPECTED = "expected"
#: A package may be sent back into a locker from these statuses (K1 redelivery).
REDELIVERABLE = ("expired", "at_counter", "in_storage")


def check_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email:
        raise Invalid(f"'{email}' is not an email address")
    return email


async def addressee(ctx: Ctx, body: dict[str, Any], what: str) -> dict[str, Any]:
    """The package's recipient columns; a member of the public needs an email or a phone (K2)."""
    addressed = await recipients.resolve(ctx, body)
    recipient = addressed.get("recipient") or body.get("recipient") or {}
    name = (recipient.get("name") or "").strip()
    if not name:
        raise Invalid("recipient.name is required")
    email = check_email(recipient.get("email"))
    phone = (recipient.get("phone") or "").strip() or None
    language = recipient.get("language") or "en"
    if language not in ("en", "fr"):
        raise Invalid(f"recipient.language must be 'en' or 'fr' (got '{language}')")
    if addressed.get("recipient_contact_id") is None and addressed.get("department_id") is None:
        if email is None and phone is None:
            raise Invalid(
                f"{what} for a member of the public needs the recipient's email or phone: "
                "it is the only way to reach them (K2)"
            )
    return {
        "recipient_name": name,
        "recipient_email": email,
        "recipient_phone": phone,
        "recipient_language": language,
        "recipient_contact_id": addressed.get("recipient_contact_id"),
        "department_id": addressed.get("department_id"),
        "mailroom_flag": addressed.get("mailroom_flag"),
    }


def recipient_of(row: dict) -> Recipient:
    return notify.recipient_of(row)


async def new_package(
    ctx: Ctx,
    *,
    tracking_id: str,
    carrier: str,
    size: str,
    status: str,
    who: dict[str, Any],
    bank_id: UUID | None,
    direction: str = "delivery",
) -> dict:
    package_id = uuid.uuid4()
    await ctx.scope.insert(
        Package,
        dict(
            id=package_id,
            tracking_id=tracking_id,
            carrier=carrier,
            size=size,
            status=status,
            direction=direction,
            bank_id=bank_id,
            received_by=ctx.actor.label,
            received_at=clock.now(),
            **who,
        ),
    )
    return await packages.get_package(ctx, package_id)


def _text(body: dict, key: str, what: str) -> str:
    value = (body.get(key) or "").strip()
    if not value:
        raise Invalid(f"{key} is required for {what}")
    return value


# --- pre-advise ------------------------------------------------------------------------------


async def preadvise(ctx: Ctx, body: dict[str, Any]) -> dict:
    """A delivery announced before it arrives: a package in status ``expected``."""
    tracking_id = _text(body, "tracking_id", "a pre-advised delivery")
    carrier = _text(body, "carrier", "a pre-advised delivery")
    size = body.get("size") or "m"
    lockers.size_rank(size)
    bank_id = body.get("bank_id")
    hold = bool(body.get("hold_compartment"))
    if hold and bank_id is None:
        raise Invalid("hold_compartment needs the bank_id where the delivery will be deposited")
    who = await addressee(ctx, body, "A pre-advised delivery")
    if await ctx.scope.exists(Package).where(
        (Package.tracking_id == tracking_id) & (Package.status == EXPECTED)
    ):
        raise Conflict(f"Delivery {tracking_id} is already pre-advised")
    bank = await lockers.get_bank(ctx, bank_id) if bank_id is not None else None
    package = await new_package(
        ctx, tracking_id=tracking_id, carrier=carrier, size=size, status=EXPECTED, who=who, bank_id=bank_id
    )
    reservation = None
    if hold:
        reservation = await packages.reserve_ahead(
            ctx, bank_id, {"tracking_id": tracking_id, "size": size, "ends_at": body.get("hold_until")}
        )
    await custody.append(
        ctx,
        "package.preadvised",
        package_id=package["id"],
        bank_id=bank_id,
        compartment_id=reservation["compartment_id"] if reservation else None,
        data={
            "tracking_id": tracking_id,
            "carrier": carrier,
            "size": size,
            **({"reservation_id": str(reservation["id"])} if reservation else {}),
        },
    )
    if reservation is not None:
        bank, location = await packages.bank_and_location(ctx, bank_id)
        comp = (
            await ctx.scope.select(Compartment).where(Compartment.id == reservation["compartment_id"]).first()
        )
        data = packages.message_data(ctx, package, bank, location, comp)
        await notify.queue_to(
            ctx, "delivery.preadvised", recipient_of(package), data, package_id=package["id"]
        )
    return {**package, "_reservation": reservation}


async def find_expected(ctx: Ctx, tracking_id: str) -> dict | None:
    """The pre-advised delivery with this tracking id, if one is still expected."""
    return await (
        ctx.scope.select(Package)
        .where((Package.tracking_id == tracking_id.strip()) & (Package.status == EXPECTED))
        .first()
    )


async def expected_by_tracking(ctx: Ctx, tracking_id: str) -> dict:
    row = await find_expected(ctx, tracking_id)
    if row is None:
        raise NotFound("Pre-advised delivery", tracking_id)
    return row


# --- arrival of a pre-advised delivery ---------------------------------------------------------


async def arrive(ctx: Ctx, body: dict[str, Any]):
    """The carrier has the pre-advised package: it becomes ``received``; with a bank, it is assigned.

    Returns (package, compartment, command_id, bank) like ``packages.receive``;
    an exchange's delivery goes into the exchange's compartment.
    """
    package = await expected_by_tracking(ctx, _text(body, "tracking_id", "an arrival"))
    bank_id = body.get("bank_id") or package["bank_id"]
    now = clock.now()
    await ctx.scope.update(
        Package, {Package.status: "received", Package.received_by: ctx.actor.label, Package.received_at: now}
    ).where(Package.id == package["id"])
    await custody.append(
        ctx,
        "package.received",
        package_id=package["id"],
        data={
            "tracking_id": package["tracking_id"],
            "carrier": package["carrier"],
            "size": package["size"],
            "preadvised": True,
        },
    )
    if bank_id is None:
        return await packages.get_package(ctx, package["id"]), None, None, None
    exchange = (
        await ctx.scope.select(Reservation)
        .where(
            (Reservation.status == "active")
            & (Reservation.kind == "exchange")
            & (Reservation.package_id == package["id"])
        )
        .first()
    )
    if exchange is not None:
        comp, command_id, bank = await _assign_exchange(ctx, package, exchange, bank_id)
    else:
        comp, command_id, bank = await packages.assign(
            ctx, package["id"], bank_id, body.get("compartment_id")
        )
    return await packages.get_package(ctx, package["id"]), comp, command_id, bank


async def _assign_exchange(ctx: Ctx, package: dict, exchange: dict, bank_id: UUID):
    bank = await lockers.get_bank(ctx, bank_id)
    if exchange["bank_id"] != bank_id:
        other = await lockers.get_bank(ctx, exchange["bank_id"])
        raise Conflict(
            f"Package {package['tracking_id']} is an exchange at bank '{other['name']}': deposit it there"
        )
    packages.require_online(bank)
    comp = await ctx.scope.select(Compartment).where(Compartment.id == exchange["compartment_id"]).first()
    taken = (
        await ctx.scope.update(
            Compartment, {Compartment.package_id: package["id"], Compartment.updated_at: clock.now()}
        )
        .where(
            (Compartment.id == comp["id"])
            & (Compartment.status == "reserved")
            & Compartment.package_id.is_null()
        )
        .returning(Compartment.id)
    )
    if not taken:
        raise Conflict(f"Compartment {comp['door']} held for this exchange changed meanwhile; try again")
    await ctx.scope.update(
        Package, {Package.status: "depositing", Package.bank_id: bank_id, Package.compartment_id: comp["id"]}
    ).where(Package.id == package["id"])
    command_id = await commands.create(ctx, bank_id, [comp["door"]])
    await custody.append(
        ctx,
        "package.assigned",
        package_id=package["id"],
        bank_id=bank_id,
        compartment_id=comp["id"],
        data={
            "door": comp["door"],
            "size": comp["size"],
            "command_id": str(command_id),
            "reservation_id": str(exchange["id"]),
            "exchange": True,
        },
    )
    return comp, command_id, bank


# --- redelivery (K1) ---------------------------------------------------------------------------


async def redeliver(ctx: Ctx, package_id: UUID, body: dict[str, Any]) -> dict:
    """A package that expired and was taken out goes back into a locker: ``received`` for a bank."""
    package = await packages.get_package(ctx, package_id)
    if body.get("bank_id") is not None:
        await lockers.get_bank(ctx, body["bank_id"])  # another tenant's bank: 404 before anything else
    tid = package["tracking_id"]
    if package["status"] == "picked_up":
        raise Conflict(f"Package {tid} was already picked up: there is nothing to redeliver")
    if package["direction"] != "delivery":
        raise Conflict(f"Package {tid} is a return: only a delivery is redelivered")
    if package["status"] not in REDELIVERABLE:
        raise Conflict(
            f"Package {tid} is {package['status']}: only a package that expired or waits at the counter "
            "can be redelivered"
        )
    if package["compartment_id"] is not None:
        inside = (
            await ctx.scope.select(Compartment)
            .where((Compartment.id == package["compartment_id"]) & (Compartment.package_id == package_id))
            .first()
        )
        if inside is not None:
            raise Conflict(
                f"Package {tid} is still in compartment {inside['door']}: remove it from the locker "
                "before asking for a redelivery"
            )
    bank_id = body.get("bank_id") or package["bank_id"]
    if bank_id is None:
        raise Invalid("A redelivery needs the bank_id of the locker bank to deliver to")
    bank = await lockers.get_bank(ctx, bank_id)
    await credentials.revoke_for_package(ctx, package_id)
    await ctx.scope.update(
        Package,
        {
            Package.status: "received",
            Package.bank_id: bank_id,
            Package.compartment_id: None,
            Package.deposited_at: None,
            Package.ready_at: None,
            Package.expires_at: None,
            Package.destination: None,
        },
    ).where(Package.id == package_id)
    reservation = None
    if body.get("hold_compartment"):
        reservation = await packages.reserve_ahead(ctx, bank_id, {"package_id": package_id})
    await custody.append(
        ctx,
        "package.redelivery_requested",
        package_id=package_id,
        bank_id=bank_id,
        compartment_id=reservation["compartment_id"] if reservation else None,
        data={
            "from_status": package["status"],
            "bank_name": bank["name"],
            **({"reservation_id": str(reservation["id"])} if reservation else {}),
        },
    )
    return {**await packages.get_package(ctx, package_id), "_reservation": reservation}
