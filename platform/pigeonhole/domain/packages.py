"""Receiving and depositing packages (E1, E2).

A deposit is three short transactions around the hardware: assign the
compartment and record the door command (committed, so the command exists
before the door moves); ask the agent to open the door, outside any
transaction; record what the door did. When the operator closes the door the
agent reports it and :mod:`pigeonhole.domain.doors` completes the deposit.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from piccolo.engine.postgres import PostgresEngine

from pigeonhole.api import PackageView
from pigeonhole.db.engine import get_engine
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import Bank, Compartment, Location, Package
from pigeonhole.domain import clock, commands, credentials, custody, lockers, reservations
from pigeonhole.domain.context import Ctx, TenantInfo, tenant_context
from pigeonhole.domain.directory import custom_fields, recipients
from pigeonhole.domain.errors import Conflict, DoorFailed, Invalid, NotFound, Unavailable
from pigeonhole.edge.hub import get_hub
from pigeonhole.messaging import notify
from pigeonhole.runtime import tenant_plugins

STATUSES = ("received", "depositing", "ready", "collecting", "picked_up", "expired")


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


async def _allocate(ctx: Ctx, bank: dict, size: str, package_id: UUID, compartment_id: UUID | None) -> dict:
    """Reserve the smallest free compartment that fits, or the one the operator chose.

    The reservation is a conditional update (``status = 'available'``): under
    SQLite the write lock taken at BEGIN serialises allocations; under
    PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets concurrent deposits pass each
    other and the condition rejects a row someone else took first.
    """
    rank = lockers.size_rank(size)
    in_bank = Compartment.bank_id == bank["id"]
    if compartment_id is not None:
        comp = await lockers.get_compartment(ctx, bank["id"], compartment_id)
        if comp["status"] != "available":
            raise Conflict(f"Compartment {comp['door']} of bank '{bank['name']}' is {comp['status']}")
        if comp["size_rank"] < rank:
            raise Invalid(
                f"Compartment {comp['door']} (size {comp['size']}) is too small for a package of size {size}"
            )
        candidates = [comp]
    else:
        largest = await (
            ctx.scope.select(Compartment.size_rank)
            .where(in_bank & (Compartment.status != "out_of_service"))
            .order_by(Compartment.size_rank, ascending=False)
            .first()
        )
        if largest is None or largest["size_rank"] < rank:
            biggest = lockers.SIZES[largest["size_rank"]] if largest else "none"
            raise Invalid(
                f"No compartment in bank '{bank['name']}' can hold a package of size {size} "
                f"(largest in service: {biggest})"
            )
        query = (
            ctx.scope.select(Compartment)
            .where(in_bank & (Compartment.status == "available") & (Compartment.size_rank >= rank))
            .order_by(Compartment.size_rank)
            .order_by(Compartment.door)
            .limit(5)
        )
        if isinstance(get_engine(), PostgresEngine):
            query = query.lock_rows("UPDATE", skip_locked=True)
        candidates = await query
    for comp in candidates:
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
        if taken:
            await reservations.hold(ctx, bank["id"], comp["id"], "delivery", package_id)
            return comp
    raise Conflict(
        f"No available compartment of size {size} or larger in bank '{bank['name']}'",
        bank_id=str(bank["id"]),
        size=size,
    )


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
    package_id = uuid.uuid4()
    now = clock.now()
    await ctx.scope.insert(
        Package,
        dict(
            id=package_id,
            tracking_id=body["tracking_id"].strip(),
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
        data={"tracking_id": body["tracking_id"], "carrier": body["carrier"], "size": size},
    )
    if body.get("bank_id") is None:
        return await get_package(ctx, package_id), None, None, None
    comp, command_id, bank = await _assign(ctx, package_id, body["bank_id"], body.get("compartment_id"))
    return await get_package(ctx, package_id), comp, command_id, bank


def require_online(bank: dict) -> None:
    """Refuse before changing anything when no agent can open the bank's doors."""
    if not get_hub().is_online(bank["id"]):
        raise Unavailable(f"Locker bank '{bank['name']}' is offline: no agent is connected to open its doors")


async def _assign(ctx: Ctx, package_id: UUID, bank_id: UUID, compartment_id: UUID | None):
    bank = await lockers.get_bank(ctx, bank_id)
    require_online(bank)
    package = await get_package(ctx, package_id)
    if package["status"] != "received":
        raise Conflict(f"Package {package['tracking_id']} is {package['status']}, not waiting for a locker")
    comp = await _allocate(ctx, bank, package["size"], package_id, compartment_id)
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
        data={"door": comp["door"], "size": comp["size"], "command_id": str(command_id)},
    )
    return comp, command_id, bank


async def assign(ctx: Ctx, package_id: UUID, bank_id: UUID, compartment_id: UUID | None):
    return await _assign(ctx, package_id, bank_id, compartment_id)


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
        return {"door": comp["door"], "outcome": outcome}
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
    """The door of a reserved compartment closed: the package is in, tell its recipient."""
    package = await get_package(ctx, comp["package_id"])
    if package["status"] != "depositing":
        return
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
        },
    )
    data = message_data(ctx, package, bank, location, comp)
    data["expires_at"] = local_iso(expires, location)
    await notify.queue(ctx, "package.ready", package, data, secrets)


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
