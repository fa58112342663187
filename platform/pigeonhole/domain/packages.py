"""Receiving and depositing packages (E1-E6, E9, E10, D5).

A deposit is three short transactions around the hardware: assign the
compartment and record the door command (committed, so the command exists
before the door moves); ask the agent to open the door, outside any
transaction; record what the door did. When the operator closes the door the
agent reports it and :mod:`pigeonhole.domain.doors` completes the deposit.

Where a package goes (:func:`_allocate`, docs/decisions/0026-deposit-rules.md):
a compartment reserved ahead for it (E3); else a compartment dedicated to its
recipient (D5); else one its recipient already has there (E4, per bank); else
the smallest free one that fits. A recipient with accessibility needs only
gets doors 35 to 123 cm from the floor (E10). A package no compartment can
hold waits at the counter when the bank allows it (E9).
"""

from __future__ import annotations

import secrets as _secrets
import uuid
from datetime import UTC
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from piccolo.engine.postgres import PostgresEngine

from pigeonhole.api import PackageView
from pigeonhole.db.engine import get_engine
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import Bank, Compartment, Contact, Location, Package, Reservation
from pigeonhole.domain import clock, commands, credentials, custody, lockers, reservations, timers
from pigeonhole.domain.context import Ctx, TenantInfo, tenant_context
from pigeonhole.domain.directory import custom_fields, recipients
from pigeonhole.domain.errors import Conflict, DoorFailed, Forbidden, Invalid, NotFound, Unavailable
from pigeonhole.edge.hub import get_hub
from pigeonhole.messaging import notify
from pigeonhole.runtime import tenant_plugins

STATUSES = ("received", "depositing", "ready", "collecting", "picked_up", "expired", "at_counter")
STATUSES += ("in_storage",)  # workflows (#5, G5): an expired package removed to shelf storage
# partner (#5, J2/K1/G4, domain/partner.py + returns.py): a pre-advised delivery; a return's life
STATUSES += ("expected", "awaiting_dropoff", "dropping_off", "awaiting_carrier", "collected")

#: E10: the answer, word for word, when no accessible compartment is free.
NO_ACCESSIBLE_LOCKER = "No lockers are currently available in selected locker bank"
#: E5: generated ids avoid characters read alike (0/O, 1/I/L).
_ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _check_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email:
        raise Invalid(f"'{email}' is not an email address")
    return email


async def get_package(ctx: Ctx, package_id: UUID) -> dict:
    row = await ctx.scope.select(Package).where(Package.id == package_id).first()
    if row is None:
        raise NotFound("Package", package_id)
    return row


async def list_packages(
    ctx: Ctx,
    *,
    status: str | None = None,
    tracking_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    flagged: bool | None = None,
    recipient_contact_id: UUID | None = None,
    department_id: UUID | None = None,
    bank_ids: set | None = None,
    custom: dict[str, str] | None = None,
) -> list[dict]:
    """``bank_ids``: only packages in these banks (a caller limited to some locations, #3)."""
    query = ctx.scope.select(Package).order_by(Package.received_at, ascending=False)
    if bank_ids is not None:
        if not bank_ids:
            return []
        query = query.where(Package.bank_id.is_in(list(bank_ids)))
    if flagged is not None:
        query = query.where(
            Package.mailroom_flag.is_not_null() if flagged else Package.mailroom_flag.is_null()
        )
    if recipient_contact_id is not None:
        query = query.where(Package.recipient_contact_id == recipient_contact_id)
    if department_id is not None:
        query = query.where(Package.department_id == department_id)
    for sub in await custom_fields.matching(ctx, "packages", custom or {}):
        query = query.where(Package.id.is_in(sub))
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"Unknown package status '{status}' (statuses: {', '.join(STATUSES)})")
        query = query.where(Package.status == status)
    if tracking_id is not None:
        query = query.where(Package.tracking_id == tracking_id)
    return await query.limit(min(max(limit, 1), 500)).offset(max(offset, 0))


def view(package: dict) -> PackageView:
    return PackageView(
        id=package["id"],
        tracking_id=package["tracking_id"],
        carrier=package["carrier"],
        size=package["size"],
        status=package["status"],
        recipient=notify.recipient_of(package),
        bank_id=package["bank_id"],
        received_at=package["received_at"],
    )


def _reachable(comp: dict) -> bool:
    low, high = lockers.ACCESSIBLE_HEIGHT_CM
    return low <= comp["door_height_cm"] <= high


def _owns(comp: dict, want: dict) -> bool | None:
    """True: dedicated to this recipient; False: dedicated to someone else; None: not dedicated (D5)."""
    if comp.get("dedicated_contact_id") is not None:
        return want.get("recipient_contact_id") == comp["dedicated_contact_id"]
    if comp.get("dedicated_department_id") is not None:
        return want.get("department_id") == comp["dedicated_department_id"]
    return None


async def _dedication_refusal(ctx: Ctx, comp: dict) -> Conflict:
    from pigeonhole.db.tables import Department

    if comp["dedicated_contact_id"] is not None:
        row = await ctx.scope.select(Contact.name).where(Contact.id == comp["dedicated_contact_id"]).first()
        owner = f"contact {row['name']}" if row else "a contact"
    else:
        row = (
            await ctx.scope.select(Department.name)
            .where(Department.id == comp["dedicated_department_id"])
            .first()
        )
        owner = f"department {row['name']}" if row else "a department"
    return Conflict(f"Compartment {comp['door']} is dedicated to {owner}; it takes only their packages")


def _same_recipient(row: dict, want: dict) -> bool:
    """E4: the same directory contact; else (inline recipients) the same email or phone."""
    if want.get("recipient_contact_id") is not None:
        return row["recipient_contact_id"] == want["recipient_contact_id"]
    if want.get("department_id") is not None:
        return row["recipient_contact_id"] is None and row["department_id"] == want["department_id"]
    if row["recipient_contact_id"] is not None or row["department_id"] is not None:
        return False
    email = (want.get("recipient_email") or "").lower()
    phone = want.get("recipient_phone") or ""
    return bool(email and (row["recipient_email"] or "").lower() == email) or bool(
        phone and row["recipient_phone"] == phone
    )


async def fits_anywhere(ctx: Ctx, bank: dict, size: str) -> bool:
    """Whether some in-service compartment of the bank could ever hold a package of ``size``."""
    largest = await (
        ctx.scope.select(Compartment.size_rank)
        .where((Compartment.bank_id == bank["id"]) & (Compartment.status != "out_of_service"))
        .order_by(Compartment.size_rank, ascending=False)
        .first()
    )
    return largest is not None and largest["size_rank"] >= lockers.size_rank(size)


async def _take(ctx: Ctx, comp: dict, package_id: UUID | None) -> bool:
    """The conditional update that makes allocation safe: only a still-available row is taken."""
    taken = (
        await ctx.scope.update(
            Compartment,
            {
                Compartment.status: "reserved",
                Compartment.package_id: package_id,
                Compartment.updated_at: clock.now(),
            },
        )
        .where((Compartment.id == comp["id"]) & (Compartment.status == "available"))
        .returning(Compartment.id)
    )
    return bool(taken)


async def _join(ctx: Ctx, comp: dict) -> bool:
    """E4: claim a compartment still occupied by the same first package (a pickup meanwhile frees it)."""
    joined = (
        await ctx.scope.update(Compartment, {Compartment.updated_at: clock.now()})
        .where(
            (Compartment.id == comp["id"])
            & (Compartment.status == "occupied")
            & (Compartment.package_id == comp["package_id"])
        )
        .returning(Compartment.id)
    )
    return bool(joined)


async def _shareable(ctx: Ctx, bank: dict, want: dict, rank: int) -> list[dict]:
    """Occupied compartments of the bank holding ready packages of the same recipient."""
    where = (
        (Package.bank_id == bank["id"]) & (Package.status == "ready") & Package.compartment_id.is_not_null()
    )
    if want.get("recipient_contact_id") is not None:
        where &= Package.recipient_contact_id == want["recipient_contact_id"]
    elif want.get("department_id") is not None:
        where &= Package.department_id == want["department_id"]
    elif not (want.get("recipient_email") or want.get("recipient_phone")):
        return []
    rows = await ctx.scope.select(
        Package.compartment_id,
        Package.recipient_contact_id,
        Package.department_id,
        Package.recipient_email,
        Package.recipient_phone,
    ).where(where)
    ids = list({r["compartment_id"] for r in rows if _same_recipient(r, want)})
    if not ids:
        return []
    return await (
        ctx.scope.select(Compartment)
        .where(
            Compartment.id.is_in(ids)
            & (Compartment.status == "occupied")
            & (Compartment.size_rank >= rank)
        )
        .order_by(Compartment.size_rank)
        .order_by(Compartment.door)
    )


async def _allocate(
    ctx: Ctx,
    bank: dict,
    want: dict,
    compartment_id: UUID | None,
    *,
    fresh: bool = False,
    hold: dict | None = None,
) -> tuple[dict, bool]:
    """Reserve a compartment for ``want`` (size, recipient, accessible, package id); returns (row, shared).

    Order: the recipient's dedicated compartments (D5: shared, or a free one),
    then one the recipient already has (E4, unless the bank forbids it or the
    operator asks for a fresh one), then the smallest free undedicated one that
    fits, or the one the operator chose. ``shared``: the package joins a
    compartment already occupied by the recipient's packages.

    Taking a free row is a conditional update (``status = 'available'``): under
    SQLite the write lock taken at BEGIN serialises allocations; under
    PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets concurrent deposits pass each
    other and the condition rejects a row someone else took first. The partial
    unique index on active reservations backs it.
    """
    size = want["size"]
    package_id = want.get("package_id")
    accessible = bool(want.get("accessible"))
    rank = lockers.size_rank(size)
    in_bank = Compartment.bank_id == bank["id"]
    settings = lockers.bank_settings(bank)

    async def reserve(comp: dict) -> bool:
        if not await _take(ctx, comp, package_id):
            return False
        await reservations.hold(ctx, bank["id"], comp["id"], "delivery", package_id, **(hold or {}))
        return True

    if compartment_id is not None:
        comp = await lockers.get_compartment(ctx, bank["id"], compartment_id)
        if _owns(comp, want) is False:
            raise await _dedication_refusal(ctx, comp)
        if accessible and not _reachable(comp):
            low, high = lockers.ACCESSIBLE_HEIGHT_CM
            raise Conflict(
                f"Compartment {comp['door']}'s door is {comp['door_height_cm']} cm from the floor; this "
                f"recipient needs a door between {low} and {high} cm"
            )
        if comp["status"] != "available":
            raise Conflict(f"Compartment {comp['door']} of bank '{bank['name']}' is {comp['status']}")
        if comp["size_rank"] < rank:
            raise Invalid(
                f"Compartment {comp['door']} (size {comp['size']}) is too small for a package of size {size}"
            )
        if await reserve(comp):
            return comp, False
        raise Conflict(f"Compartment {comp['door']} of bank '{bank['name']}' was taken meanwhile")

    if not await fits_anywhere(ctx, bank, size):
        largest = await (
            ctx.scope.select(Compartment.size_rank)
            .where(in_bank & (Compartment.status != "out_of_service"))
            .order_by(Compartment.size_rank, ascending=False)
            .first()
        )
        biggest = lockers.SIZES[largest["size_rank"]] if largest else "none"
        raise Invalid(
            f"No compartment in bank '{bank['name']}' can hold a package of size {size} "
            f"(largest in service: {biggest})"
        )

    def usable(comp: dict) -> bool:
        return not accessible or _reachable(comp)

    # The recipient's own compartments (D5) first, then the ones they already have (E4).
    sharing = [] if fresh or package_id is None else await _shareable(ctx, bank, want, rank)
    for comp in sharing:
        if usable(comp) and _owns(comp, want) and await _join(ctx, comp):
            return comp, True
    owned_free = await (
        ctx.scope.select(Compartment)
        .where(
            in_bank
            & (Compartment.status == "available")
            & (Compartment.size_rank >= rank)
            & (
                (Compartment.dedicated_contact_id == want["recipient_contact_id"])
                if want.get("recipient_contact_id") is not None
                else (Compartment.dedicated_department_id == want.get("department_id"))
                if want.get("department_id") is not None
                else Compartment.id.is_null()
            )
        )
        .order_by(Compartment.size_rank)
        .order_by(Compartment.door)
    )
    for comp in owned_free:
        if usable(comp) and _owns(comp, want) and await reserve(comp):
            return comp, False
    if settings.add_to_existing:
        for comp in sharing:
            if usable(comp) and _owns(comp, want) is None and await _join(ctx, comp):
                return comp, True

    conditions = (
        in_bank
        & (Compartment.status == "available")
        & (Compartment.size_rank >= rank)
        & Compartment.dedicated_contact_id.is_null()
        & Compartment.dedicated_department_id.is_null()
    )
    if accessible:
        low, high = lockers.ACCESSIBLE_HEIGHT_CM
        conditions &= (Compartment.door_height_cm >= low) & (Compartment.door_height_cm <= high)
    query = (
        ctx.scope.select(Compartment)
        .where(conditions)
        .order_by(Compartment.size_rank)
        .order_by(Compartment.door)
    )
    if isinstance(get_engine(), PostgresEngine):
        # One row: FOR UPDATE locks every row returned, and a transaction holding
        # five would make concurrent deposits skip compartments it never takes.
        query = query.limit(1).lock_rows("UPDATE", skip_locked=True)
    else:
        query = query.limit(5)
    for comp in await query:
        if await reserve(comp):
            return comp, False
    if accessible:
        raise Conflict(NO_ACCESSIBLE_LOCKER, bank_id=str(bank["id"]), size=size)
    raise Conflict(
        f"No available compartment of size {size} or larger in bank '{bank['name']}'",
        bank_id=str(bank["id"]),
        size=size,
    )


async def new_tracking_id(ctx: Ctx) -> str:
    """E5: an id for a package whose barcode cannot be read: ``PH-`` and ten unambiguous characters."""
    for _ in range(20):
        candidate = "PH-" + "".join(_secrets.choice(_ID_ALPHABET) for _ in range(10))
        if not await ctx.scope.exists(Package).where(Package.tracking_id == candidate):
            return candidate
    raise Conflict("Could not generate a unique package id; try again")


async def receive(ctx: Ctx, body: dict[str, Any]) -> tuple[dict, dict | None, UUID | None, dict | None]:
    """Create the package, and when a bank is given reserve its compartment.

    Runs inside ``ctx``'s transaction: a refusal rolls back the package too.
    Returns (package, compartment, command_id, bank).
    """
    size = body["size"]
    lockers.size_rank(size)
    # A directory contact or department stands in for the inline recipient (#6).
    addressed = await recipients.resolve(ctx, body)
    recipient = addressed.get("recipient") or body.get("recipient") or {}
    name = (recipient.get("name") or "").strip()
    if not name:
        raise Invalid("recipient.name is required")
    email = _check_email(recipient.get("email"))
    language = recipient.get("language") or "en"
    if language not in ("en", "fr"):
        raise Invalid(f"recipient.language must be 'en' or 'fr' (got '{language}')")
    custom = await custom_fields.validate(ctx, "packages", body.get("custom"))
    # workflows (#5): the site's workflow may refuse a package (K2: no email nor phone to reach)
    from pigeonhole.domain import workflow_steps

    workflow_steps.check_accepts(ctx, body, name, email, recipient.get("phone"), size)
    # E5: no readable barcode: the platform names the package.
    tracking_id = (body.get("tracking_id") or "").strip()
    no_barcode = bool(body.get("no_barcode"))
    if no_barcode and tracking_id:
        raise Invalid("Give either tracking_id or no_barcode: true, not both")
    if not tracking_id:
        tracking_id, no_barcode = await new_tracking_id(ctx), True
    body["tracking_id"] = tracking_id
    # E10: the inline recipient says so, or the directory contact has accessibility needs.
    accessible = bool(recipient.get("accessible"))
    if addressed.get("recipient_contact_id") is not None:
        contact = (
            await ctx.scope.select(Contact.accessibility)
            .where(Contact.id == addressed["recipient_contact_id"])
            .first()
        )
        accessible = accessible or bool(contact and (contact["accessibility"] or "").strip())
    package_id = uuid.uuid4()
    now = clock.now()
    await ctx.scope.insert(
        Package,
        dict(
            id=package_id,
            accessible=accessible,
            tracking_id=tracking_id,
            carrier=body["carrier"].strip(),
            size=size,
            status="received",
            recipient_name=name,
            recipient_email=email,
            recipient_phone=recipient.get("phone"),
            recipient_language=language,
            received_by=ctx.actor.label,
            received_at=now,
            recipient_contact_id=addressed.get("recipient_contact_id"),
            department_id=addressed.get("department_id"),
            mailroom_flag=addressed.get("mailroom_flag"),
        ),
    )
    await custom_fields.save(ctx, "packages", package_id, custom)
    await custody.append(
        ctx,
        "package.received",
        package_id=package_id,
        data={
            "tracking_id": tracking_id,
            "carrier": body["carrier"],
            "size": size,
            **({"no_barcode": True, "generated_tracking_id": tracking_id} if no_barcode else {}),
            **({"accessible": True} if accessible else {}),
        },
    )
    if body.get("bank_id") is None:
        if body.get("oversized"):
            raise Invalid("An oversized package waits at a bank's counter: give bank_id")
        return await get_package(ctx, package_id), None, None, None
    comp, command_id, bank = await _assign(
        ctx,
        package_id,
        body["bank_id"],
        body.get("compartment_id"),
        oversized=bool(body.get("oversized")),
        fresh=bool(body.get("fresh_compartment")),
    )
    return await get_package(ctx, package_id), comp, command_id, bank


def require_online(bank: dict) -> None:
    """Refuse before changing anything when no agent can open the bank's doors."""
    if not get_hub().is_online(bank["id"]):
        raise Unavailable(f"Locker bank '{bank['name']}' is offline: no agent is connected to open its doors")


async def _ahead_for(ctx: Ctx, package: dict) -> dict | None:
    """E3: the active reservation made ahead for this package (by id, or by its tracking id)."""
    rows = await ctx.scope.select(Reservation).where(
        (Reservation.status == "active")
        & (Reservation.kind == "delivery")
        & Reservation.designated_to.is_not_null()
        & (
            (Reservation.package_id == package["id"])
            | ((Reservation.tracking_id == package["tracking_id"]) & Reservation.package_id.is_null())
        )
    )
    for row in rows:
        comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
        if comp is not None and comp["package_id"] is None:
            return {**row, "_compartment": comp}
    return None


def _designated(actor, designated_to: str | None) -> bool:
    if designated_to in (None, "any"):
        return True
    return designated_to in {str(actor.user_id), str(actor.key_id)}


async def _use_ahead(ctx: Ctx, ahead: dict, package: dict, bank: dict, compartment_id: UUID | None) -> dict:
    """E3: deposit into the compartment reserved ahead, at its bank, by its designated person."""
    comp = ahead["_compartment"]
    if ahead["bank_id"] != bank["id"]:
        other = await lockers.get_bank(ctx, ahead["bank_id"])
        raise Conflict(
            f"Package {package['tracking_id']} has compartment {comp['door']} reserved at bank "
            f"'{other['name']}'; deposit it there, or cancel that reservation first"
        )
    if not _designated(ctx.actor, ahead["designated_to"]):
        raise Forbidden(
            f"Compartment {comp['door']} is reserved for package {package['tracking_id']} and only its "
            "designated person may deposit it"
        )
    if compartment_id is not None and compartment_id != comp["id"]:
        raise Conflict(
            f"Package {package['tracking_id']} has compartment {comp['door']} reserved; deposit it there "
            "or cancel the reservation first"
        )
    if comp["size_rank"] < lockers.size_rank(package["size"]):
        raise Conflict(
            f"Compartment {comp['door']} reserved for package {package['tracking_id']} (size {comp['size']}) "
            f"is too small for size {package['size']}; cancel the reservation first"
        )
    used = (
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
    if not used:
        raise Conflict(f"Compartment {comp['door']} changed meanwhile; try again")
    await ctx.scope.update(Reservation, {Reservation.package_id: package["id"]}).where(
        Reservation.id == ahead["id"]
    )
    return comp


async def _assign(
    ctx: Ctx,
    package_id: UUID,
    bank_id: UUID,
    compartment_id: UUID | None,
    *,
    oversized: bool = False,
    fresh: bool = False,
):
    bank = await lockers.get_bank(ctx, bank_id)
    package = await get_package(ctx, package_id)
    if package["status"] != "received":
        raise Conflict(f"Package {package['tracking_id']} is {package['status']}, not waiting for a locker")
    ahead = await _ahead_for(ctx, package)
    shared = False
    if ahead is not None:
        require_online(bank)
        comp = await _use_ahead(ctx, ahead, package, bank, compartment_id)
    else:
        if oversized or (compartment_id is None and not await fits_anywhere(ctx, bank, package["size"])):
            if lockers.bank_settings(bank).oversized_to_counter:
                await to_counter(ctx, package, bank, "oversized" if oversized else "no compartment fits")
                return None, None, bank
            if oversized:
                raise Invalid(
                    f"Bank '{bank['name']}' does not take oversized packages to the counter "
                    "(setting oversized_to_counter)"
                )
        require_online(bank)
        want = {**package, "package_id": package_id, "accessible": await needs_access(ctx, package)}
        comp, shared = await _allocate(ctx, bank, want, compartment_id, fresh=fresh)
    await ctx.scope.update(
        Package,
        {Package.status: "depositing", Package.bank_id: bank_id, Package.compartment_id: comp["id"]},
    ).where(Package.id == package_id)
    command_id = await commands.create(ctx, bank_id, [comp["door"]])
    await custody.append(
        ctx,
        "package.assigned",
        package_id=package_id,
        bank_id=bank_id,
        compartment_id=comp["id"],
        data={
            "door": comp["door"],
            "size": comp["size"],
            "command_id": str(command_id),
            **({"added_to_existing": True} if shared else {}),
            **({"reservation_id": str(ahead["id"])} if ahead else {}),
        },
    )
    return {**comp, "_shared": shared}, command_id, bank


async def needs_access(ctx: Ctx, package: dict) -> bool:
    """E10: the package was received for someone with accessibility needs, or its contact has them now."""
    if package.get("accessible"):
        return True
    if package.get("recipient_contact_id") is None:
        return False
    row = (
        await ctx.scope.select(Contact.accessibility)
        .where(Contact.id == package["recipient_contact_id"])
        .first()
    )
    return bool(row and (row["accessibility"] or "").strip())


async def to_counter(ctx: Ctx, package: dict, bank: dict, reason: str) -> None:
    """E9: the package waits at the counter of the bank's location; its recipient is told so."""
    location = await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first()
    await ctx.scope.update(
        Package,
        {Package.status: "at_counter", Package.bank_id: bank["id"], Package.compartment_id: None},
    ).where(Package.id == package["id"])
    place = f"the counter at {location['name']}" if location else "the counter"
    await custody.append(
        ctx,
        "package.at_counter",
        package_id=package["id"],
        bank_id=bank["id"],
        data={"reason": reason, "place": place},
    )
    data = message_data(ctx, package, bank, location, None)
    data.update(reason=reason, place=place, destination="counter")
    await notify.queue(ctx, "package.at_counter", package, data)


async def assign(
    ctx: Ctx,
    package_id: UUID,
    bank_id: UUID,
    compartment_id: UUID | None,
    *,
    oversized: bool = False,
    fresh: bool = False,
):
    """Put a received package into a bank; ``(None, None, bank)`` when it went to the counter (E9)."""
    return await _assign(ctx, package_id, bank_id, compartment_id, oversized=oversized, fresh=fresh)


async def door_event(
    ctx: Ctx,
    kind: str,
    package_id: UUID,
    bank_id: UUID,
    comp: dict,
    purpose: str,
    outcome: str,
    command_id: UUID,
    **extra,
) -> None:
    """A door step in the package's custody chain, naming the command that moved it."""
    await custody.append(
        ctx,
        kind,
        package_id=package_id,
        bank_id=bank_id,
        compartment_id=comp["id"],
        method=extra.pop("method", None),
        data={
            "door": comp["door"],
            "purpose": purpose,
            "outcome": outcome,
            "command_id": str(command_id),
            **extra,
        },
    )


async def open_for_deposit(
    tenant: TenantInfo, actor, package_id: UUID, bank: dict, comp: dict, command_id: UUID
) -> dict:
    """Open the assigned door and record what it did; on failure free the package."""
    result = await unlock(tenant, actor, bank, [comp["door"]], command_id)
    outcome = result.outcomes.get(comp["door"], "no_answer")
    # Once the door has moved the record must land: retried, not dropped.
    if await retrying(
        lambda: _record_deposit_door(tenant, actor, package_id, bank, comp, command_id, result)
    ):
        return {"door": comp["door"], "outcome": outcome, "added_to_existing": bool(comp.get("_shared"))}
    raise DoorFailed(
        f"Door {comp['door']} of bank '{bank['name']}' did not open ({outcome}); it is now out of "
        "service and the package is waiting for another compartment",
        outcome=outcome,
        door=comp["door"],
    )


async def _record_deposit_door(tenant, actor, package_id, bank, comp, command_id, result) -> bool:
    outcome = result.outcomes.get(comp["door"], "no_answer")
    async with tenant_context(tenant, actor) as ctx:
        await commands.record(ctx, result)
        if outcome in ("opened", "already_open"):
            await door_event(ctx, "door.opened", package_id, bank["id"], comp, "deposit", outcome, command_id)
            return True
        if comp.get("_shared"):
            # E4: the compartment holds the recipient's other packages; they stay, this one waits.
            await ctx.scope.update(
                Package, {Package.status: "received", Package.bank_id: None, Package.compartment_id: None}
            ).where(Package.id == package_id)
            await door_event(
                ctx, "door.unlock_failed", package_id, bank["id"], comp, "deposit", outcome, command_id
            )
            return False
        await ctx.scope.update(
            Compartment,
            {
                Compartment.status: "out_of_service",
                Compartment.package_id: None,
                Compartment.status_note: f"door did not open: {outcome}",
                Compartment.updated_at: clock.now(),
            },
        ).where(Compartment.id == comp["id"])
        await ctx.scope.update(
            Package, {Package.status: "received", Package.bank_id: None, Package.compartment_id: None}
        ).where(Package.id == package_id)
        await reservations.end(ctx, comp["id"], "cancelled")
        await door_event(
            ctx, "door.unlock_failed", package_id, bank["id"], comp, "deposit", outcome, command_id
        )
    return False


async def unlock(tenant: TenantInfo, actor, bank: dict, doors: list[int], command_id: UUID):
    """Ask the agent to open doors, outside any transaction (hardware takes time).

    The agent already holds the bank's driver (attached at start and on every
    change), so the usual path reads nothing from the database.
    """
    hub = get_hub()
    commands.sending(command_id)  # its own final step records it: reconciliation keeps off
    plugins = tenant_plugins.cached(tenant.id, tenant.plugins_version)
    bank_doors = None
    if plugins is None or hub.needs_bank(bank["id"]):
        async with tenant_context(tenant, actor, write=False) as ctx:
            plugins = ctx.plugins
            if hub.needs_bank(bank["id"]):
                bank_doors = [c["door"] for c in await lockers.compartments(ctx, bank["id"])]
    return await hub.unlock(plugins, bank, bank_doors, doors, command_id)


async def complete_deposit(ctx: Ctx, comp: dict) -> None:
    """The door of a compartment closed: every package being deposited there is in (E4: several)."""
    waiting = await ctx.scope.select(Package).where(
        (Package.compartment_id == comp["id"]) & (Package.status == "depositing")
    )
    for package in waiting:
        await _complete_one(ctx, comp, package)


async def _complete_one(ctx: Ctx, comp: dict, package: dict) -> None:
    """One package is in: it is ready, tell its recipient."""
    added = comp["package_id"] is not None and comp["package_id"] != package["id"]
    bank = await lockers.get_bank(ctx, comp["bank_id"])
    location = await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first()
    workflow = ctx.plugins.workflow()
    now = clock.now()
    pv = view(package)
    hold = workflow.hold_period(pv) if workflow else None
    expires = now + hold if hold else None
    await ctx.scope.update(Compartment, {Compartment.status: "occupied", Compartment.updated_at: now}).where(
        Compartment.id == comp["id"]
    )
    await ctx.scope.update(
        Package,
        {
            Package.status: "ready",
            Package.deposited_at: now,
            Package.ready_at: now,
            Package.expires_at: expires,
        },
    ).where(Package.id == package["id"])
    await reservations.set_end(ctx, comp["id"], expires)
    methods = workflow.pickup_methods(pv) if workflow else ["pin"]
    secrets: dict[str, str] = {}
    for method in methods:
        secret, _ = await credentials.issue(ctx, package["id"], bank["id"], method, expires)
        if secret is not None:  # a badge identifies the person: nothing to send
            secrets["code" if method == "pin" else method] = secret
    await custody.append(
        ctx,
        "package.deposited",
        package_id=package["id"],
        bank_id=bank["id"],
        compartment_id=comp["id"],
        data={
            "door": comp["door"],
            "expires_at": expires.isoformat() if expires else None,
            "credentials": methods,
            **({"added_to_existing": True} if added else {}),
        },
    )
    data = message_data(ctx, package, bank, location, comp)
    data["expires_at"] = local_iso(expires, location)
    data["added_to_existing"] = added
    await notify.queue(ctx, "package.ready", package, data, secrets)
    # workflows (#5): the package's timeline (reminders, escalation, expiry) as durable timers
    from pigeonhole.domain import workflow_steps

    await workflow_steps.schedule_package(ctx, package, workflow)


def local_iso(moment, location: dict | None) -> str | None:
    """An ISO time in the location's zone: messages show the time where the bank stands."""
    if moment is None:
        return None
    try:
        zone = ZoneInfo(location["timezone"]) if location else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return moment.astimezone(zone).isoformat()


def message_data(ctx: Ctx, package: dict, bank: dict, location: dict | None, comp: dict | None) -> dict:
    return {
        "tenant_name": ctx.tenant.name,
        "package_id": str(package["id"]),
        "tracking_id": package["tracking_id"],
        "carrier": package["carrier"],
        "bank_name": bank["name"],
        "location_name": location["name"] if location else "",
        "location_address": location["address"] if location else "",
        "timezone": location["timezone"] if location else "UTC",
        "compartment": comp["door"] if comp else None,
    }


async def bank_and_location(ctx: Ctx, bank_id: UUID) -> tuple[dict, dict | None]:
    bank = await ctx.scope.select(Bank).where(Bank.id == bank_id).first()
    location = await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first()
    return bank, location


# --- E3: a compartment reserved ahead for one package ----------------------------------------


async def reserve_ahead(ctx: Ctx, bank_id: UUID, body: dict[str, Any]) -> dict:
    """Hold a compartment for a package expected at this bank (E3); returns the reservation.

    ``package_id`` (a package received, not yet in a locker) or ``tracking_id``
    (not received yet: ``size`` is then required). The compartment is
    ``reserved`` with no package until that package is deposited at this bank
    by the designated person (``for_user``: a user's or API key's id; omitted:
    any operator). It is held until cancelled, or until ``ends_at``.
    """
    bank = await lockers.get_bank(ctx, bank_id)
    package = None
    if body.get("package_id") is not None and body.get("tracking_id"):
        raise Invalid("Give either package_id or tracking_id, not both")
    if body.get("package_id") is not None:
        package = await get_package(ctx, body["package_id"])
        if package["status"] != "received":
            raise Conflict(
                f"Package {package['tracking_id']} is {package['status']}; only a package waiting for "
                "a locker can have one reserved"
            )
        tracking_id = package["tracking_id"]
    else:
        tracking_id = (body.get("tracking_id") or "").strip()
        if not tracking_id:
            raise Invalid("A reservation ahead needs the package_id or the tracking_id of the package")
        package = (
            await ctx.scope.select(Package)
            .where((Package.tracking_id == tracking_id) & (Package.status == "received"))
            .first()
        )
    size = body.get("size") or (package["size"] if package else None)
    if size is None:
        raise Invalid("size is required for a package not received yet")
    lockers.size_rank(size)
    ends_at = body.get("ends_at")
    if ends_at is not None and ends_at <= clock.now():
        raise Invalid("ends_at must be in the future")
    dup = ctx.scope.select(Reservation.id).where(
        (Reservation.status == "active")
        & (Reservation.kind == "delivery")
        & Reservation.designated_to.is_not_null()
        & (
            (Reservation.tracking_id == tracking_id)
            | ((Reservation.package_id == package["id"]) if package else Reservation.id.is_null())
        )
    )
    if await dup.first():
        raise Conflict(f"Package {tracking_id} already has a compartment reserved ahead")
    for_user = body.get("for_user")
    designated = str(for_user) if for_user is not None else "any"
    want = {
        "size": size,
        "package_id": None,
        "accessible": await needs_access(ctx, package) if package else bool(body.get("accessible")),
        "recipient_contact_id": package["recipient_contact_id"] if package else None,
        "department_id": package["department_id"] if package else None,
    }
    comp, _ = await _allocate(
        ctx,
        bank,
        want,
        body.get("compartment_id"),
        fresh=True,
        hold={"ends_at": ends_at, "tracking_id": tracking_id, "designated_to": designated},
    )
    row = (
        await ctx.scope.select(Reservation)
        .where((Reservation.compartment_id == comp["id"]) & (Reservation.status == "active"))
        .first()
    )
    if package is not None:
        await ctx.scope.update(Reservation, {Reservation.package_id: package["id"]}).where(
            Reservation.id == row["id"]
        )
    await custody.append(
        ctx,
        "reservation.created",
        package_id=package["id"] if package else None,
        bank_id=bank_id,
        compartment_id=comp["id"],
        data={
            "reservation_id": str(row["id"]),
            "kind": "delivery",
            "tracking_id": tracking_id,
            "door": comp["door"],
            "designated_to": designated,
            "ends_at": ends_at.isoformat() if ends_at else None,
        },
    )
    if ends_at is not None:
        await timers.schedule(ctx, action=AHEAD_ENDS, due_at=ends_at, reservation_id=row["id"])
    return await reservations.get(ctx, row["id"])


async def cancel_ahead(ctx: Ctx, bank_id: UUID, reservation_id: UUID, status: str = "cancelled") -> dict:
    """Cancel a reservation made ahead that no package has used yet; its compartment is free again."""
    row = await ctx.scope.select(Reservation).where(Reservation.id == reservation_id).first()
    if row is None or row["bank_id"] != bank_id:
        raise NotFound("Reservation", reservation_id)
    if row["kind"] != "delivery" or row["designated_to"] is None:
        raise Conflict(
            f"Reservation '{reservation_id}' is a {row['kind']} reservation, not a delivery reserved ahead; "
            "it is not cancelled here"
        )
    if row["status"] != "active":
        raise Conflict(f"This reservation is already {row['status']}")
    comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
    if comp["package_id"] is not None:
        raise Conflict(
            f"Compartment {comp['door']} already holds the package this reservation was for; "
            "the reservation ends with its pickup"
        )
    now = clock.now()
    ended = (
        await ctx.scope.update(Reservation, {Reservation.status: status, Reservation.ended_at: now})
        .where((Reservation.id == reservation_id) & (Reservation.status == "active"))
        .returning(Reservation.id)
    )
    freed = (
        await ctx.scope.update(Compartment, {Compartment.status: "available", Compartment.updated_at: now})
        .where(
            (Compartment.id == comp["id"])
            & (Compartment.status == "reserved")
            & Compartment.package_id.is_null()
        )
        .returning(Compartment.id)
    )
    if not ended or not freed:
        raise Conflict("This reservation changed meanwhile; try again")
    await custody.append(
        ctx,
        "reservation.ended",
        bank_id=bank_id,
        compartment_id=comp["id"],
        package_id=row["package_id"],
        data={
            "reservation_id": str(reservation_id),
            "kind": "delivery",
            "status": status,
            "reason": status,
            "tracking_id": row["tracking_id"],
            "compartment_status": "available",
        },
    )
    await timers.cancel(ctx, reservation_id=reservation_id)
    return await reservations.get(ctx, reservation_id)


AHEAD_ENDS = "deposit.ahead_ends"


@timers.action(AHEAD_ENDS)
async def _ahead_ends(ctx: Ctx, timer: dict) -> bool:
    """A reservation ahead reached its ends_at unused: it expires and frees its compartment."""
    row = await ctx.scope.select(Reservation).where(Reservation.id == timer["reservation_id"]).first()
    if row is None or row["status"] != "active":
        return False
    comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
    if comp is None or comp["package_id"] is not None:
        return False
    await cancel_ahead(ctx, row["bank_id"], row["id"], status="expired")
    return True


# --- E6: reopen a compartment just after the deposit -------------------------------------


async def reopen(tenant: TenantInfo, actor, bank_id: UUID, compartment_id: UUID, check=None) -> dict:
    """An operator reopens a compartment within the bank's window after a deposit's door closed (E6).

    The door opens through the usual door path (a command, the agent). The
    package stays ready and its recipient is not told again: the code they
    have still opens the compartment.
    """
    async with tenant_context(tenant, actor) as ctx:
        if check is not None:
            await check(ctx, bank_id)
        bank = await lockers.get_bank(ctx, bank_id)
        comp = await lockers.get_compartment(ctx, bank_id, compartment_id)
        window = lockers.bank_settings(bank).reopen_window_seconds
        last = (
            await ctx.scope.select(Package)
            .where((Package.compartment_id == compartment_id) & (Package.status == "ready"))
            .order_by(Package.deposited_at, ascending=False)
            .first()
        )
        if comp["status"] != "occupied" or last is None or last["deposited_at"] is None:
            raise Conflict(
                f"Compartment {comp['door']} holds no package just deposited; only a deposit can be reopened"
            )
        elapsed = (clock.now() - last["deposited_at"]).total_seconds()
        if elapsed > window:
            raise Conflict(
                f"Compartment {comp['door']} can be reopened only within the reopen window of {window} "
                f"seconds after its deposit closed (closed {int(elapsed)} seconds ago)",
                window_seconds=window,
            )
        require_online(bank)
        command_id = await commands.create(ctx, bank_id, [comp["door"]], kind="reopen")
    result = await unlock(tenant, actor, bank, [comp["door"]], command_id)
    outcome = result.outcomes.get(comp["door"], "no_answer")
    opened = outcome in commands.OPEN

    async def finish() -> None:
        async with tenant_context(tenant, actor) as ctx:
            await commands.record(ctx, result)
            await door_event(
                ctx,
                "door.reopened" if opened else "door.unlock_failed",
                last["id"],
                bank_id,
                comp,
                "reopen",
                outcome,
                command_id,
                seconds_after_deposit=int(elapsed),
            )

    await retrying(finish)
    if not opened:
        raise DoorFailed(
            f"Door {comp['door']} of bank '{bank['name']}' did not open ({outcome})",
            outcome=outcome,
            door=comp["door"],
        )
    return {"door": comp["door"], "outcome": outcome, "package_id": last["id"], "command_id": command_id}
