"""Storage of belongings in a compartment (G1-G3), with some kept for deliveries (D6).

A storage reservation holds a compartment for a contact or for a department
(whose members share it, G3) from its creation, even when it starts later
(reserved ahead, G2). Its mode comes from the tenant's
:class:`pigeonhole.api.StoragePolicy` (contributed by a plugin through
``pigeonhole_storage_policies``; the host enforces it):

- ``fixed``: exactly ``fixed_hours``;
- ``flexible``: the person chooses, and may extend, up to ``max_hours`` from the start;
- ``open``: no end time, it lasts until someone ends it.

One access code (the policy's access method, ``purpose = "storage"``) opens
the compartment from the start to the end, at the kiosk
(:func:`open_by_code`, behind the same guessing walls as pickup codes) or
through staff and the recipient app (:func:`open_reservation`). The code
reaches people only in the ``storage.reserved`` message, sealed until sent.

Durable timers remind (``storage.ending``) and expire (``storage.expire``).
When a reservation ends its code dies and its compartment is freed, except
after an expiry when the door had been opened during the storage: something
may be inside, so the compartment stays ``expired`` until staff empty it
(:func:`clear`). See docs/decisions/0027-storage-reservations.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from piccolo.engine.postgres import PostgresEngine

from pigeonhole.api import InvalidSecret, Recipient, StoragePolicy
from pigeonhole.db.engine import get_engine
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import ApiKey, Bank, Compartment, Contact, Credential, DepartmentMember, Reservation
from pigeonhole.domain import (
    clock,
    commands,
    credentials,
    custody,
    lockers,
    packages,
    pickup,
    reservations,
    timers,
)
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.directory import contacts, departments
from pigeonhole.domain.errors import Conflict, DoorFailed, Forbidden, Invalid, NotFound
from pigeonhole.messaging import notify

MODES = ("fixed", "flexible", "open")
KIND = "storage"


# --- the policy -------------------------------------------------------------------------


def policy_of(ctx: Ctx) -> StoragePolicy | None:
    """The tenant's storage policy: the first enabled plugin that contributes one."""
    found = [p for contributed in ctx.plugins.hook.pigeonhole_storage_policies() for p in contributed or ()]
    return found[-1] if found else None


def require_policy(ctx: Ctx) -> StoragePolicy:
    policy = policy_of(ctx)
    if policy is None:
        raise Invalid("This organization offers no storage (no storage policy: enable the storage plugin)")
    return policy


def kept_for_deliveries(policy: StoragePolicy | None, size: str) -> int:
    return int((policy.keep_for_deliveries or {}).get(size, 0)) if policy else 0


def _hours(value: float) -> str:
    value = float(value)
    text = f"{value:g}"
    return f"{text} hour{'' if value == 1 else 's'}"


# --- reading ------------------------------------------------------------------------------


async def get_storage(ctx: Ctx, reservation_id: UUID) -> dict:
    row = await reservations.get(ctx, reservation_id)
    if row["kind"] != KIND:
        raise NotFound("Storage reservation", reservation_id)
    return row


async def describe(ctx: Ctx, row: dict) -> dict:
    """A reservation as the API shows it: with its door and size."""
    comp = (
        await ctx.scope.select(Compartment.door, Compartment.size, Compartment.status)
        .where(Compartment.id == row["compartment_id"])
        .first()
    )
    out = {k: v for k, v in row.items() if k != "tenant_id"}
    out["door"] = comp["door"] if comp else None
    out["size"] = comp["size"] if comp else None
    out["compartment_status"] = comp["status"] if comp else None
    return out


async def _recipients(ctx: Ctx, row: dict) -> list[tuple[UUID, Recipient]]:
    """Who the reservation is for: its contact, or every active member of its department."""
    if row["contact_id"] is not None:
        ids = [row["contact_id"]]
    elif row["department_id"] is not None:
        members = await ctx.scope.select(DepartmentMember.contact_id).where(
            DepartmentMember.department_id == row["department_id"]
        )
        ids = [m["contact_id"] for m in members]
    else:
        return []
    if not ids:
        return []
    people = await ctx.scope.select(Contact).where(
        Contact.id.is_in(ids) & (Contact.active == True)
    )  # noqa: E712
    return [
        (
            p["id"],
            Recipient(name=p["name"], email=p["email"], phone=p["phone"], language=p["language"] or "en"),
        )
        for p in sorted(people, key=lambda p: p["name"])
    ]


async def _message_data(ctx: Ctx, row: dict, comp: dict | None = None) -> dict[str, Any]:
    bank, location = await packages.bank_and_location(ctx, row["bank_id"])
    if comp is None:
        comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
    return {
        "tenant_name": ctx.tenant.name,
        "reservation_id": str(row["id"]),
        "bank_name": bank["name"],
        "location_name": location["name"] if location else "",
        "location_address": location["address"] if location else "",
        "timezone": location["timezone"] if location else "UTC",
        "compartment": comp["door"] if comp else None,
        "size": comp["size"] if comp else None,
        "mode": row["mode"],
        "starts_at": packages.local_iso(row["starts_at"], location),
        "ends_at": packages.local_iso(row["ends_at"], location),
    }


async def _tell(
    ctx: Ctx, event: str, row: dict, extra: dict | None = None, secrets: dict | None = None
) -> int:
    data = {**await _message_data(ctx, row), **(extra or {})}
    sent = 0
    for _, recipient in await _recipients(ctx, row):
        sent += len(await notify.queue_to(ctx, event, recipient, data, secrets=secrets))
    return sent


# --- creating -----------------------------------------------------------------------------


def _timeline(policy: StoragePolicy, mode: str, start: datetime, hours: float | None):
    """(ends_at, max_ends_at) for a mode, or the rule the request breaks."""
    if mode == "fixed":
        if hours is not None and float(hours) != float(policy.fixed_hours):
            raise Invalid(
                f"A fixed storage reservation lasts exactly {_hours(policy.fixed_hours)} "
                f"(asked for {_hours(hours)})",
                rule="fixed_hours",
                fixed_hours=policy.fixed_hours,
            )
        end = start + timedelta(hours=policy.fixed_hours)
        return end, end
    if mode == "flexible":
        if hours is None or hours <= 0:
            raise Invalid(
                "A flexible storage reservation needs its length in hours (hours > 0)", rule="hours"
            )
        if hours > policy.max_hours:
            raise Invalid(
                f"A flexible storage reservation lasts at most {_hours(policy.max_hours)} "
                f"(asked for {_hours(hours)})",
                rule="max_hours",
                max_hours=policy.max_hours,
            )
        return start + timedelta(hours=hours), start + timedelta(hours=policy.max_hours)
    if hours is not None:
        raise Invalid("An open storage reservation has no end time: do not give hours", rule="open")
    return None, None


async def _lock_bank(ctx: Ctx, bank_id: UUID) -> None:
    """Serialize storage decisions of one bank (D6 counts free compartments, then takes one)."""
    if isinstance(get_engine(), PostgresEngine):
        await ctx.scope.select(Bank.id).where(Bank.id == bank_id).lock_rows("UPDATE")


async def _take_compartment(ctx: Ctx, bank: dict, size: str, policy: StoragePolicy) -> dict:
    """A free compartment of ``size`` that storage may use, leaving the bank's delivery reserve (D6)."""
    await _lock_bank(ctx, bank["id"])
    free = await (
        ctx.scope.select(Compartment)
        .where(
            (Compartment.bank_id == bank["id"])
            & (Compartment.status == "available")
            & (Compartment.size == size)
            & Compartment.dedicated_contact_id.is_null()
            & Compartment.dedicated_department_id.is_null()
        )
        .order_by(Compartment.door)
    )
    kept = kept_for_deliveries(policy, size)
    if len(free) <= kept:
        if not free:
            detail = f"No compartment of size {size} is free in bank '{bank['name']}'"
        else:
            detail = (
                f"No compartment of size {size} is free for storage in bank '{bank['name']}': "
                f"the {len(free)} free {'one is' if len(free) == 1 else 'ones are'} kept for deliveries "
                f"({kept} of size {size} always are)"
            )
        raise Conflict(detail, rule="keep_for_deliveries", size=size, free=len(free), kept=kept)
    for comp in free:
        taken = (
            await ctx.scope.update(
                Compartment, {Compartment.status: "reserved", Compartment.updated_at: clock.now()}
            )
            .where((Compartment.id == comp["id"]) & (Compartment.status == "available"))
            .returning(Compartment.id)
        )
        if taken:
            return comp
    raise Conflict(f"No compartment of size {size} is free in bank '{bank['name']}'", size=size)


async def _schedule(ctx: Ctx, policy: StoragePolicy | None, row_id: UUID, ends_at: datetime | None) -> None:
    if ends_at is None:
        return
    stamp = ends_at.isoformat()
    minutes = policy.reminder_minutes if policy else 0
    if minutes > 0:
        remind_at = ends_at - timedelta(minutes=minutes)
        if remind_at > clock.now():
            await timers.schedule(
                ctx,
                action="storage.ending",
                due_at=remind_at,
                reservation_id=row_id,
                data={"ends_at": stamp, "minutes_left": minutes},
            )
    await timers.schedule(
        ctx, action="storage.expire", due_at=ends_at, reservation_id=row_id, data={"ends_at": stamp}
    )


async def create(
    ctx: Ctx,
    *,
    bank_id: UUID,
    size: str,
    mode: str,
    contact_id: UUID | None = None,
    department_id: UUID | None = None,
    starts_at: datetime | None = None,
    hours: float | None = None,
) -> dict:
    """Reserve a compartment for storage; its code goes to the person or the department's members.

    Every rule is checked before anything is written; the whole reservation
    (compartment, reservation, code, timers, messages) is one transaction.
    """
    bank = await lockers.get_bank(ctx, bank_id)
    policy = require_policy(ctx)
    if (contact_id is None) == (department_id is None):
        raise Invalid("A storage reservation is for one contact or one department: give exactly one")
    if contact_id is not None:
        contact = await contacts.get_row(ctx, contact_id)
        if not contact["active"]:
            raise Invalid(f"{contact['name']} is deactivated and cannot reserve storage")
    else:
        department = await departments.get_row(ctx, department_id)
        if not await _recipients(ctx, {"contact_id": None, "department_id": department_id}):
            raise Invalid(f"Department '{department['name']}' has no active member to share the storage with")
    if mode not in MODES:
        raise Invalid(f"Unknown storage mode '{mode}' (modes: {', '.join(MODES)})", rule="mode")
    if mode not in policy.modes:
        raise Invalid(
            f"Storage mode '{mode}' is not allowed here (allowed: {', '.join(policy.modes) or 'none'})",
            rule="modes",
        )
    lockers.size_rank(size)
    if size not in policy.sizes:
        raise Invalid(
            f"Storage does not use compartments of size {size} (sizes: {', '.join(policy.sizes) or 'none'})",
            rule="sizes",
        )
    if starts_at is not None and starts_at.tzinfo is None:
        raise Invalid("starts_at needs a time zone offset (e.g. 2030-01-01T09:00:00+01:00)", rule="starts_at")
    now = clock.now()
    start = now if starts_at is None or starts_at <= now else starts_at
    if starts_at is not None and starts_at < now - timedelta(minutes=5):
        raise Invalid("A storage reservation cannot start in the past", rule="starts_at")
    ahead = timedelta(hours=policy.max_advance_hours)
    if start - now > ahead:
        raise Invalid(
            f"Storage may be reserved at most {_hours(policy.max_advance_hours)} ahead",
            rule="max_advance_hours",
            max_advance_hours=policy.max_advance_hours,
        )
    ends_at, max_ends_at = _timeline(policy, mode, start, hours)
    credentials.method_for(ctx, policy.access_method)
    comp = await _take_compartment(ctx, bank, size, policy)
    reservation_id = await reservations.hold(
        ctx,
        bank_id,
        comp["id"],
        KIND,
        ends_at=ends_at,
        starts_at=start,
        contact_id=contact_id,
        department_id=department_id,
        mode=mode,
        max_ends_at=max_ends_at,
    )
    code = await credentials.issue_for_reservation(
        ctx, reservation_id, bank_id, policy.access_method, purpose="storage"
    )
    await _schedule(ctx, policy, reservation_id, ends_at)
    row = await reservations.get(ctx, reservation_id)
    await custody.append(
        ctx,
        "storage.reserved",
        bank_id=bank_id,
        compartment_id=comp["id"],
        data={
            "reservation_id": str(reservation_id),
            "door": comp["door"],
            "mode": mode,
            "starts_at": start.isoformat(),
            "ends_at": ends_at.isoformat() if ends_at else None,
            "contact_id": str(contact_id) if contact_id else None,
            "department_id": str(department_id) if department_id else None,
        },
    )
    await _tell(ctx, "storage.reserved", row, secrets={"code": code})
    return row


async def extend(ctx: Ctx, reservation_id: UUID, hours: float) -> dict:
    """Extend a flexible reservation; never past ``max_hours`` from its start."""
    row = await get_storage(ctx, reservation_id)
    if row["status"] != "active":
        raise Conflict(f"This storage reservation is {row['status']}; it cannot be extended")
    if row["mode"] != "flexible":
        raise Invalid(
            f"Only a flexible storage reservation can be extended (this one is {row['mode']})", rule="mode"
        )
    if hours is None or hours <= 0:
        raise Invalid("An extension needs a number of hours > 0", rule="hours")
    new_end = row["ends_at"] + timedelta(hours=hours)
    if new_end > row["max_ends_at"]:
        policy = policy_of(ctx)
        limit = (row["max_ends_at"] - row["starts_at"]).total_seconds() / 3600
        left = max(0.0, (row["max_ends_at"] - row["ends_at"]).total_seconds() / 3600)
        raise Invalid(
            f"A flexible storage reservation lasts at most {_hours(limit)} from its start; "
            f"it can be extended by {_hours(round(left, 2))} at most",
            rule="max_hours",
            max_hours=policy.max_hours if policy else limit,
            max_ends_at=row["max_ends_at"].isoformat(),
        )
    now = clock.now()
    changed = (
        await ctx.scope.update(Reservation, {Reservation.ends_at: new_end, Reservation.updated_at: now})
        .where((Reservation.id == reservation_id) & (Reservation.status == "active"))
        .returning(Reservation.id)
    )
    if not changed:
        raise Conflict("This storage reservation changed meanwhile; try again")
    await timers.cancel(ctx, reservation_id=reservation_id)
    await _schedule(ctx, policy_of(ctx), reservation_id, new_end)
    await custody.append(
        ctx,
        "storage.extended",
        bank_id=row["bank_id"],
        compartment_id=row["compartment_id"],
        data={
            "reservation_id": str(reservation_id),
            "hours": hours,
            "ends_at": new_end.isoformat(),
            "was": row["ends_at"].isoformat(),
        },
    )
    return await reservations.get(ctx, reservation_id)


# --- the door path ------------------------------------------------------------------------


def _usable_now(row: dict, location: dict | None) -> None:
    now = clock.now()
    if row["status"] != "active":
        raise Conflict(f"This storage reservation is {row['status']}")
    if row["starts_at"] > now:
        raise Forbidden(
            f"This storage reservation starts at {packages.local_iso(row['starts_at'], location)}; "
            "its compartment opens from then on"
        )
    if row["ends_at"] is not None and row["ends_at"] <= now:
        raise Forbidden("This storage reservation has ended")


async def _member_of(ctx: Ctx, row: dict, contact_id: UUID) -> None:
    if row["contact_id"] is not None:
        if contact_id != row["contact_id"]:
            raise Forbidden("This storage reservation belongs to someone else")
        return
    shares = await ctx.scope.exists(DepartmentMember).where(
        (DepartmentMember.department_id == row["department_id"]) & (DepartmentMember.contact_id == contact_id)
    )
    if not shares:
        raise Forbidden("Only members of its department may open this storage reservation")


async def _door(
    tenant: TenantInfo,
    actor: Actor,
    bank: dict,
    comp: dict,
    command_id: UUID,
    failed_event: str,
    data: dict,
):
    """Open the door outside any transaction; on failure record it and raise DoorFailed."""
    result = await packages.unlock(tenant, actor, bank, [comp["door"]], command_id)
    outcome = result.outcomes.get(comp["door"], "no_answer")
    opened = outcome in commands.OPEN
    if not opened:

        async def failed() -> None:
            async with tenant_context(tenant, actor) as ctx:
                await commands.record(ctx, result)
                await custody.append(
                    ctx,
                    "door.unlock_failed",
                    bank_id=bank["id"],
                    compartment_id=comp["id"],
                    data={"door": comp["door"], "purpose": failed_event, "outcome": outcome,
                          "command_id": str(command_id), **data},
                )  # fmt: skip

        await retrying(failed)
        raise DoorFailed(
            f"Door {comp['door']} did not open ({outcome}). Nothing changed; please contact the mailroom.",
            outcome=outcome,
            door=comp["door"],
        )
    return result, outcome


async def _opened(
    ctx: Ctx, row: dict, comp: dict, result, outcome: str, command_id: UUID, **data
) -> datetime:
    await commands.record(ctx, result)
    now = clock.now()
    await ctx.scope.update(Reservation, {Reservation.opened_at: now, Reservation.updated_at: now}).where(
        Reservation.id == row["id"]
    )
    # Once opened, something may be inside: the compartment counts as occupied.
    await ctx.scope.update(Compartment, {Compartment.status: "occupied", Compartment.updated_at: now}).where(
        (Compartment.id == comp["id"]) & (Compartment.status == "reserved")
    )
    await custody.append(
        ctx,
        "storage.opened",
        bank_id=row["bank_id"],
        compartment_id=comp["id"],
        method=data.pop("method", None),
        data={
            "reservation_id": str(row["id"]),
            "door": comp["door"],
            "outcome": outcome,
            "command_id": str(command_id),
            **data,
        },
    )
    return now


async def open_reservation(
    tenant: TenantInfo, actor: Actor, reservation_id: UUID, *, contact_id: UUID | None = None, check=None
) -> dict:
    """Staff or the recipient app open the compartment during the reservation (G2).

    ``contact_id``: the person opening it (the recipient app passes its
    signed-in contact): it must be the reservation's contact or a member of
    its department (G3). Recorded in the chain of custody.
    """
    async with tenant_context(tenant, actor) as ctx:
        row = await get_storage(ctx, reservation_id)
        if check is not None:
            await check(ctx, row["bank_id"])
        bank, location = await packages.bank_and_location(ctx, row["bank_id"])
        if actor.bank_id is not None and actor.bank_id != bank["id"]:
            raise NotFound("Storage reservation", reservation_id)
        _usable_now(row, location)
        person = None
        if contact_id is not None:
            await _member_of(ctx, row, contact_id)
            person = (await contacts.get_row(ctx, contact_id))["name"]
        packages.require_online(bank)
        comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
        command_id = await commands.create(ctx, bank["id"], [comp["door"]])
    result, outcome = await _door(
        tenant, actor, bank, comp, command_id, "storage", {"reservation_id": str(row["id"])}
    )

    async def finish() -> datetime:
        async with tenant_context(tenant, actor) as ctx:
            return await _opened(
                ctx, row, comp, result, outcome, command_id, method="staff", person=person,
                contact_id=str(contact_id) if contact_id else None,
            )  # fmt: skip

    at = await retrying(finish)
    return {"reservation_id": row["id"], "door": comp["door"], "outcome": outcome, "opened_at": at}


async def _claim_code(ctx: Ctx, bank_id: UUID, secret: str, method: str | None):
    """Find the code's storage reservation: (error to raise after commit, row, comp, bank, command)."""
    bank = await lockers.get_bank(ctx, bank_id)
    if ctx.actor.bank_id is not None and ctx.actor.bank_id != bank_id:
        raise NotFound("Locker bank", bank_id)
    await pickup._check_locks(ctx, bank)
    packages.require_online(bank)
    policy = policy_of(ctx)
    name = method or (policy.access_method if policy else "pin")
    access = credentials.method_for(ctx, name)
    try:
        normalized = access.normalize(secret)
    except InvalidSecret as exc:
        raise Invalid(str(exc)) from None
    cred = (
        await ctx.scope.select(Credential)
        .where(
            (Credential.bank_id == bank_id)
            & (Credential.method == name)
            & (Credential.status == "active")
            & (Credential.purpose == "storage")
            & (Credential.digest == credentials.digest(ctx, bank_id, name, normalized))
        )
        .first()
    )
    if cred is None:
        error = await pickup._record_failure(ctx, bank, "This code is not valid at this locker bank")
        return error, None, None, bank, None
    if ctx.actor.key_id is not None:
        await ctx.scope.update(ApiKey, {ApiKey.code_failures: 0}).where(
            (ApiKey.id == ctx.actor.key_id) & (ApiKey.code_failures > 0)
        )
    row = await reservations.get(ctx, cred["reservation_id"])
    _, location = await packages.bank_and_location(ctx, bank_id)
    try:
        _usable_now(row, location)
    except (Forbidden, Conflict) as refusal:
        return refusal, None, None, bank, None
    comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
    command_id = await commands.create(ctx, bank_id, [comp["door"]])
    return None, {**row, "_method": name}, comp, bank, command_id


async def open_by_code(
    tenant: TenantInfo, actor: Actor, bank_id: UUID, code: str, method: str | None = None
) -> dict:
    """At the kiosk: the storage code opens its compartment, behind pickup's guessing walls."""
    async with tenant_context(tenant, actor) as ctx:
        error, row, comp, bank, command_id = await _claim_code(ctx, bank_id, code, method)
    if error is not None:
        raise error
    result, outcome = await _door(
        tenant, actor, bank, comp, command_id, "storage", {"reservation_id": str(row["id"])}
    )

    async def finish() -> datetime:
        async with tenant_context(tenant, actor) as ctx:
            return await _opened(ctx, row, comp, result, outcome, command_id, method=row["_method"])

    at = await retrying(finish)
    return {
        "reservation_id": row["id"],
        "door": comp["door"],
        "outcome": outcome,
        "opened_at": at,
        "ends_at": row["ends_at"],
    }


# --- ending -------------------------------------------------------------------------------


async def _close_out(
    ctx: Ctx, row: dict, status: str, *, inside: bool, why: str, credential_status: str
) -> str:
    state = await reservations.finish(ctx, row, status, inside=inside, reason=why)
    await credentials.revoke_for_reservation(ctx, row["id"], credential_status)
    await timers.cancel(ctx, reservation_id=row["id"])
    await custody.append(
        ctx,
        "storage.ended" if why != "expired" else "storage.expired",
        bank_id=row["bank_id"],
        compartment_id=row["compartment_id"],
        data={"reservation_id": str(row["id"]), "why": why, "compartment_status": state},
    )
    await _tell(ctx, "storage.ended", {**row, "status": status}, {"why": why})
    return state


async def end(tenant: TenantInfo, actor: Actor, reservation_id: UUID, *, check=None) -> dict:
    """End a storage reservation: the door opens a last time, the code dies, the compartment is freed.

    Before its start, or when its door was never opened, nothing is inside:
    it ends without opening the door.
    """
    async with tenant_context(tenant, actor) as ctx:
        row = await get_storage(ctx, reservation_id)
        if check is not None:
            await check(ctx, row["bank_id"])
        if actor.bank_id is not None and actor.bank_id != row["bank_id"]:
            raise NotFound("Storage reservation", reservation_id)
        if row["status"] != "active":
            raise Conflict(f"This storage reservation is already {row['status']}")
        if row["opened_at"] is None:
            status = "cancelled" if row["starts_at"] > clock.now() else "fulfilled"
            state = await _close_out(ctx, row, status, inside=False, why="ended", credential_status="revoked")
            return {"reservation_id": row["id"], "status": status, "compartment_status": state, "door": None}
        bank = await lockers.get_bank(ctx, row["bank_id"])
        packages.require_online(bank)
        comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
        command_id = await commands.create(ctx, bank["id"], [comp["door"]])
    result, outcome = await _door(
        tenant, actor, bank, comp, command_id, "storage.end", {"reservation_id": str(row["id"])}
    )

    async def finish() -> str:
        async with tenant_context(tenant, actor) as ctx:
            await commands.record(ctx, result)
            fresh = await reservations.get(ctx, reservation_id)
            if fresh["status"] != "active":  # expired while the door opened: just free it
                return (
                    await ctx.scope.select(Compartment.status).where(Compartment.id == comp["id"]).first()
                )["status"]
            await custody.append(
                ctx,
                "storage.last_open",
                bank_id=row["bank_id"],
                compartment_id=comp["id"],
                data={"reservation_id": str(row["id"]), "door": comp["door"], "outcome": outcome,
                      "command_id": str(command_id)},
            )  # fmt: skip
            return await _close_out(
                ctx, fresh, "fulfilled", inside=False, why="ended", credential_status="used"
            )

    state = await retrying(finish)
    return {
        "reservation_id": row["id"],
        "status": "fulfilled",
        "compartment_status": state,
        "door": comp["door"],
    }


async def clear(tenant: TenantInfo, actor: Actor, reservation_id: UUID, *, check=None) -> dict:
    """Staff empty an expired storage compartment: its door opens and it is available again."""
    async with tenant_context(tenant, actor) as ctx:
        row = await get_storage(ctx, reservation_id)
        if check is not None:
            await check(ctx, row["bank_id"])
        comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
        if row["status"] == "active":
            raise Conflict("This storage reservation is still active: end it first")
        if comp["status"] != "expired" or comp["package_id"] is not None:
            raise Conflict(f"Compartment {comp['door']} is {comp['status']}, not waiting to be emptied")
        latest = (
            await ctx.scope.select(Reservation.id)
            .where(Reservation.compartment_id == comp["id"])
            .order_by(Reservation.created_at, ascending=False)
            .first()
        )
        if latest["id"] != row["id"]:
            raise Conflict(f"Compartment {comp['door']} has been used since this reservation")
        bank = await lockers.get_bank(ctx, row["bank_id"])
        packages.require_online(bank)
        command_id = await commands.create(ctx, bank["id"], [comp["door"]], kind="remote_open")
    result, outcome = await _door(
        tenant, actor, bank, comp, command_id, "storage.clear", {"reservation_id": str(row["id"])}
    )

    async def finish() -> None:
        async with tenant_context(tenant, actor) as ctx:
            await commands.record(ctx, result)
            await ctx.scope.update(
                Compartment, {Compartment.status: "available", Compartment.updated_at: clock.now()}
            ).where((Compartment.id == comp["id"]) & (Compartment.status == "expired"))
            await custody.append(
                ctx,
                "storage.cleared",
                bank_id=row["bank_id"],
                compartment_id=comp["id"],
                data={"reservation_id": str(row["id"]), "door": comp["door"], "outcome": outcome,
                      "command_id": str(command_id)},
            )  # fmt: skip

    await retrying(finish)
    return {
        "reservation_id": row["id"],
        "door": comp["door"],
        "outcome": outcome,
        "compartment_status": "available",
    }


# --- timers ---------------------------------------------------------------------------------


def _same_end(row: dict, timer: dict) -> bool:
    return row["ends_at"] is not None and row["ends_at"].isoformat() == timer["data"].get("ends_at")


@timers.action("storage.ending")
async def _ending(ctx: Ctx, timer: dict):
    row = await reservations.get(ctx, timer["reservation_id"])
    if row["status"] != "active" or not _same_end(row, timer):
        return False
    minutes = timer["data"].get("minutes_left")
    await _tell(ctx, "storage.ending", row, {"minutes_left": minutes})
    await custody.append(
        ctx,
        "storage.ending",
        bank_id=row["bank_id"],
        compartment_id=row["compartment_id"],
        data={"reservation_id": str(row["id"]), "minutes_left": minutes},
    )
    return True


@timers.action("storage.expire")
async def _expire(ctx: Ctx, timer: dict):
    row = await reservations.get(ctx, timer["reservation_id"])
    if row["status"] != "active" or not _same_end(row, timer):
        return False
    await _close_out(
        ctx, row, "expired", inside=row["opened_at"] is not None, why="expired", credential_status="expired"
    )
    return True
