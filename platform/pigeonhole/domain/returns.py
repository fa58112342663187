"""Returns and exchanges through the lockers (K1, G4).

A **return** (partner API) holds a compartment at a bank with a reservation of
kind ``return`` and creates the return as a package of direction ``return`` in
status ``awaiting_dropoff``; the customer gets a drop-off code
(``return.created``, by email or phone only, K2). At the kiosk the code opens
the door (``POST /banks/{b}/dropoff``; the same guessing walls as pickup); the
package is ``dropping_off`` until the door closes, then ``awaiting_carrier``
(``return.deposited``). A carrier or operator collects it
(``POST /banks/{b}/returns/collect``): the door opens, the package is
``collected``, the compartment free.

An **exchange** holds one compartment (reservation kind ``exchange``) for a
delivery (pre-advised, ``expected``) and a return. The carrier deposits the
delivery into it (``POST /partner/deliveries/arrive``); the customer's
exchange code, at the drop-off, opens the door once: they take the delivery
(``picked_up``, method ``exchange``) and leave the return in the same visit.

The door closing is seen in :func:`door_closed`, called by
:func:`pigeonhole.domain.custody.append` for a ``door.closed`` event, in the
transaction that records it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from piccolo.engine.postgres import PostgresEngine

from pigeonhole.api import InvalidSecret
from pigeonhole.db.engine import get_engine
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import Bank, Compartment, Credential, Package
from pigeonhole.domain import (
    clock,
    commands,
    credentials,
    custody,
    lockers,
    packages,
    partner,
    pickup,
    reservations,
)
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.errors import Conflict, DoorFailed, Forbidden, Invalid, NotFound
from pigeonhole.messaging import notify

DROP_PURPOSES = ("dropoff", "exchange")
DEFAULT_DAYS = 7
MAX_DAYS = 60


# --- creating a return or an exchange ----------------------------------------------------------


async def _hold_compartment(ctx: Ctx, bank: dict, size: str, package_id: UUID | None) -> dict:
    """The smallest free compartment that fits, taken by a conditional update (never twice)."""
    rank = lockers.size_rank(size)
    query = (
        ctx.scope.select(Compartment)
        .where(
            (Compartment.bank_id == bank["id"])
            & (Compartment.status == "available")
            & (Compartment.size_rank >= rank)
        )
        .order_by(Compartment.size_rank)
        .order_by(Compartment.door)
        .limit(5)
    )
    if isinstance(get_engine(), PostgresEngine):
        query = query.lock_rows("UPDATE", skip_locked=True)
    for comp in await query:
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
            return comp
    raise Conflict(
        f"No available compartment of size {size} or larger in bank '{bank['name']}' for a drop-off",
        bank_id=str(bank["id"]),
        size=size,
    )


def _ends_at(body: dict[str, Any]):
    days = body.get("days", DEFAULT_DAYS)
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise Invalid(f"days must be a whole number from 1 to {MAX_DAYS} (got {days!r})")
    return clock.now() + timedelta(days=days)


async def _tell_created(ctx: Ctx, package: dict, bank: dict, comp: dict, code: str, ends_at, exchange: bool):
    _, location = await packages.bank_and_location(ctx, bank["id"])
    data = packages.message_data(ctx, package, bank, location, comp)
    data["ends_at"] = packages.local_iso(ends_at, location)
    data["exchange"] = exchange
    await notify.queue_to(
        ctx,
        "return.created",
        partner.recipient_of(package),
        data,
        secrets={"code": code},
        package_id=package["id"],
    )


async def create_return(ctx: Ctx, body: dict[str, Any]) -> dict:
    """Hold a compartment for a customer's return and send them a drop-off code."""
    if body.get("bank_id") is None:
        raise Invalid("A return needs the bank_id of the locker bank where it is dropped off")
    size = body.get("size") or "m"
    lockers.size_rank(size)
    carrier = (body.get("carrier") or "").strip()
    if not carrier:
        raise Invalid("carrier is required for a return (who collects it)")
    who = await partner.addressee(ctx, body, "A return")
    ends_at = _ends_at(body)
    bank = await lockers.get_bank(ctx, body["bank_id"])
    tracking_id = (body.get("tracking_id") or "").strip() or await packages.new_tracking_id(ctx)
    package = await partner.new_package(
        ctx,
        tracking_id=tracking_id,
        carrier=carrier,
        size=size,
        status="awaiting_dropoff",
        who=who,
        bank_id=bank["id"],
        direction="return",
    )
    comp = await _hold_compartment(ctx, bank, size, package["id"])
    await ctx.scope.update(Package, {Package.compartment_id: comp["id"], Package.expires_at: ends_at}).where(
        Package.id == package["id"]
    )
    reservation_id = await reservations.hold(ctx, bank["id"], comp["id"], "return", package["id"], ends_at)
    code = await credentials.issue_for_reservation(
        ctx, reservation_id, bank["id"], "pin", purpose="dropoff", not_after=ends_at
    )
    await custody.append(
        ctx,
        "return.created",
        package_id=package["id"],
        bank_id=bank["id"],
        compartment_id=comp["id"],
        data={"reservation_id": str(reservation_id), "door": comp["door"], "ends_at": ends_at.isoformat()},
    )
    await _tell_created(ctx, package, bank, comp, code, ends_at, exchange=False)
    package = await packages.get_package(ctx, package["id"])
    return {"package": package, "reservation_id": reservation_id, "code": code, "door": comp["door"]}


async def create_exchange(ctx: Ctx, body: dict[str, Any]) -> dict:
    """A delivery and a return sharing one compartment and one visit (G4)."""
    if body.get("bank_id") is None:
        raise Invalid("An exchange needs the bank_id of the locker bank")
    delivery = body.get("delivery") or {}
    back = body.get("return") or {}
    for key in ("tracking_id", "carrier"):
        if not (delivery.get(key) or "").strip():
            raise Invalid(f"delivery.{key} is required for an exchange")
    size = delivery.get("size") or "m"
    return_size = back.get("size") or size
    rank = max(lockers.size_rank(size), lockers.size_rank(return_size))
    who = await partner.addressee(ctx, body, "An exchange")
    ends_at = _ends_at(body)
    bank = await lockers.get_bank(ctx, body["bank_id"])
    tracking_id = delivery["tracking_id"].strip()
    if await ctx.scope.exists(Package).where(
        (Package.tracking_id == tracking_id) & (Package.status == partner.EXPECTED)
    ):
        raise Conflict(f"Delivery {tracking_id} is already pre-advised")
    outbound = await partner.new_package(
        ctx,
        tracking_id=tracking_id,
        carrier=delivery["carrier"].strip(),
        size=size,
        status=partner.EXPECTED,
        who=who,
        bank_id=bank["id"],
    )
    inbound = await partner.new_package(
        ctx,
        tracking_id=(back.get("tracking_id") or "").strip() or await packages.new_tracking_id(ctx),
        carrier=(back.get("carrier") or delivery["carrier"]).strip(),
        size=return_size,
        status="awaiting_dropoff",
        who=who,
        bank_id=bank["id"],
        direction="return",
    )
    comp = await _hold_compartment(ctx, bank, lockers.SIZES[rank], None)
    await ctx.scope.update(Package, {Package.compartment_id: comp["id"], Package.expires_at: ends_at}).where(
        Package.id == inbound["id"]
    )
    reservation_id = await reservations.hold(ctx, bank["id"], comp["id"], "exchange", outbound["id"], ends_at)
    code = await credentials.issue_for_reservation(
        ctx, reservation_id, bank["id"], "pin", purpose="exchange", not_after=ends_at
    )
    common = {"reservation_id": str(reservation_id), "door": comp["door"], "ends_at": ends_at.isoformat()}
    await custody.append(
        ctx,
        "package.preadvised",
        package_id=outbound["id"],
        bank_id=bank["id"],
        compartment_id=comp["id"],
        data={
            **common,
            "tracking_id": tracking_id,
            "exchange": True,
            "return_package_id": str(inbound["id"]),
        },
    )
    await custody.append(
        ctx,
        "return.created",
        package_id=inbound["id"],
        bank_id=bank["id"],
        compartment_id=comp["id"],
        data={**common, "exchange": True, "delivery_package_id": str(outbound["id"])},
    )
    await _tell_created(ctx, inbound, bank, comp, code, ends_at, exchange=True)
    return {
        "delivery": await packages.get_package(ctx, outbound["id"]),
        "package": await packages.get_package(ctx, inbound["id"]),
        "reservation_id": reservation_id,
        "code": code,
        "door": comp["door"],
    }


# --- the drop-off at the kiosk ----------------------------------------------------------------


async def _wrong_code_reason(ctx: Ctx, bank: dict, normalized: str, digest: str) -> str:
    """Why a drop-off code opens nothing here: used already, for another bank, or unknown."""
    purpose = Credential.purpose.is_in(list(DROP_PURPOSES))
    used = await ctx.scope.exists(Credential).where(
        (Credential.bank_id == bank["id"])
        & (Credential.method == "pin")
        & (Credential.digest == digest)
        & purpose
        & (Credential.status == "used")
    )
    if used:
        return "This drop-off code was already used: it opens a compartment only once"
    others = await ctx.scope.select(Credential.bank_id).where(
        purpose
        & (Credential.status == "active")
        & (Credential.bank_id != bank["id"])
        & (Credential.method == "pin")
    )
    for bank_id in {r["bank_id"] for r in others}:
        theirs = credentials.digest(ctx, bank_id, "pin", normalized)
        if await ctx.scope.exists(Credential).where(
            (Credential.bank_id == bank_id)
            & (Credential.digest == theirs)
            & (Credential.status == "active")
            & purpose
        ):
            other = await ctx.scope.select(Bank.name).where(Bank.id == bank_id).first()
            return f"This drop-off code is for locker bank '{other['name']}', not this one"
    return "This drop-off code is not valid at this locker bank"


async def _claim_dropoff(ctx: Ctx, bank_id: UUID, code: str):
    """Find the drop-off code's reservation and claim it; (error to raise after commit, session)."""
    bank = await lockers.get_bank(ctx, bank_id)
    if ctx.actor.bank_id is not None and ctx.actor.bank_id != bank_id:
        raise NotFound("Locker bank", bank_id)
    await pickup._check_locks(ctx, bank)
    packages.require_online(bank)
    access = credentials.method_for(ctx, "pin")
    try:
        normalized = access.normalize(code)
    except InvalidSecret as exc:
        raise Invalid(str(exc)) from None
    digest = credentials.digest(ctx, bank_id, "pin", normalized)
    cred = (
        await ctx.scope.select(Credential)
        .where(
            (Credential.bank_id == bank_id)
            & (Credential.method == "pin")
            & (Credential.status == "active")
            & (Credential.digest == digest)
            & Credential.purpose.is_in(list(DROP_PURPOSES))
        )
        .first()
    )
    if cred is None:
        reason = await _wrong_code_reason(ctx, bank, normalized, digest)
        return await pickup._record_failure(ctx, bank, reason), None
    now = clock.now()
    if cred["expires_at"] is not None and cred["expires_at"] <= now:
        await ctx.scope.update(Credential, {Credential.status: "expired"}).where(Credential.id == cred["id"])
        return Forbidden("This drop-off code has expired. Please ask the sender for a new return."), None
    await pickup._good_attempt(ctx)
    reservation = await reservations.get(ctx, cred["reservation_id"])
    if reservation["status"] != "active":
        return Conflict(
            f"This return's reservation is {reservation['status']}: the compartment is no longer held"
        ), None
    comp = await ctx.scope.select(Compartment).where(Compartment.id == reservation["compartment_id"]).first()
    inbound = (
        await ctx.scope.select(Package)
        .where(
            (Package.compartment_id == comp["id"])
            & (Package.direction == "return")
            & (Package.status == "awaiting_dropoff")
        )
        .first()
    )
    if inbound is None:
        return Conflict("This return is no longer waiting for a drop-off"), None
    delivery = None
    if reservation["kind"] == "exchange":
        delivery = await packages.get_package(ctx, reservation["package_id"])
        if delivery["status"] != "ready" or delivery["compartment_id"] != comp["id"]:
            return (
                Conflict(
                    f"The delivery of this exchange ({delivery['tracking_id']}) is not in the locker yet: "
                    "your code will open the compartment once it is"
                ),
                None,
            )
        await ctx.scope.update(Package, {Package.status: "collecting"}).where(Package.id == delivery["id"])
    await ctx.scope.update(Package, {Package.status: "dropping_off"}).where(Package.id == inbound["id"])
    await ctx.scope.update(
        Compartment, {Compartment.package_id: inbound["id"], Compartment.updated_at: now}
    ).where(Compartment.id == comp["id"])
    command_id = await commands.create(ctx, bank_id, [comp["door"]])
    return None, {
        "bank": bank,
        "comp": comp,
        "inbound": inbound,
        "delivery": delivery,
        "credential_id": cred["id"],
        "reservation": reservation,
        "command_id": command_id,
    }


async def dropoff(tenant: TenantInfo, actor: Actor, bank_id: UUID, code: str) -> dict:
    async with tenant_context(tenant, actor) as ctx:
        error, session = await _claim_dropoff(ctx, bank_id, code)
    if error is not None:
        raise error
    bank, comp = session["bank"], session["comp"]
    result = await packages.unlock(tenant, actor, bank, [comp["door"]], session["command_id"])
    outcome = result.outcomes.get(comp["door"], "no_answer")
    opened = outcome in commands.OPEN
    await retrying(lambda: _finish_dropoff(tenant, actor, session, result, opened))
    if not opened:
        raise DoorFailed(
            f"Door {comp['door']} did not open ({outcome}). Your code still works; please contact the staff.",
            outcome=outcome,
            door=comp["door"],
        )
    delivery = session["delivery"]
    return {
        "package_id": session["inbound"]["id"],
        "tracking_id": session["inbound"]["tracking_id"],
        "door": comp["door"],
        "outcome": outcome,
        "kind": session["reservation"]["kind"],
        "delivery_package_id": delivery["id"] if delivery else None,
    }


async def _finish_dropoff(tenant, actor, session: dict, result, opened: bool) -> None:
    bank, comp, inbound, delivery = session["bank"], session["comp"], session["inbound"], session["delivery"]
    command_id = session["command_id"]
    outcome = result.outcomes.get(comp["door"], "no_answer")
    async with tenant_context(tenant, actor) as ctx:
        await commands.record(ctx, result)
        now = clock.now()
        if not opened:
            await ctx.scope.update(Package, {Package.status: "awaiting_dropoff"}).where(
                Package.id == inbound["id"]
            )
            back = delivery["id"] if delivery else None
            if delivery is not None:
                await ctx.scope.update(Package, {Package.status: "ready"}).where(Package.id == delivery["id"])
            await ctx.scope.update(Compartment, {Compartment.package_id: back or inbound["id"]}).where(
                Compartment.id == comp["id"]
            )
            await packages.door_event(
                ctx, "door.unlock_failed", inbound["id"], bank["id"], comp, "dropoff", outcome, command_id
            )
            return
        await ctx.scope.update(Credential, {Credential.status: "used", Credential.used_at: now}).where(
            Credential.id == session["credential_id"]
        )
        await packages.door_event(
            ctx, "door.opened", inbound["id"], bank["id"], comp, "dropoff", outcome, command_id, method="pin"
        )
        if delivery is None:
            return
        person = delivery["recipient_name"]
        await ctx.scope.update(
            Package,
            {
                Package.status: "picked_up",
                Package.picked_up_at: now,
                Package.picked_up_by: person,
                Package.pickup_method: "exchange",
            },
        ).where(Package.id == delivery["id"])
        await credentials.revoke_for_package(ctx, delivery["id"])
        try:
            from pigeonhole.domain import timers

            await timers.cancel(ctx, package_id=delivery["id"])
        except ImportError:  # pragma: no cover - timers are the workflows' (#5)
            pass
        await packages.door_event(
            ctx,
            "package.picked_up",
            delivery["id"],
            bank["id"],
            comp,
            "pickup",
            outcome,
            command_id,
            method="exchange",
            person=person,
        )
        fresh = {**delivery, "status": "picked_up", "picked_up_at": now, "picked_up_by": person}
        _, location = await packages.bank_and_location(ctx, bank["id"])
        data = packages.message_data(ctx, fresh, bank, location, comp)
        data["picked_up_at"] = packages.local_iso(now, location)
        await notify.queue(ctx, "package.picked_up", fresh, data)


async def door_closed(ctx: Ctx, package_id: UUID, compartment_id: UUID | None) -> None:
    """A door closed on a package being dropped off: the return waits for the carrier."""
    row = await ctx.scope.select(Package).where(Package.id == package_id).first()
    if row is None or row["direction"] != "return" or row["status"] != "dropping_off":
        return
    now = clock.now()
    await ctx.scope.update(
        Package, {Package.status: "awaiting_carrier", Package.deposited_at: now, Package.ready_at: now}
    ).where(Package.id == package_id)
    await ctx.scope.update(Compartment, {Compartment.status: "occupied", Compartment.updated_at: now}).where(
        Compartment.id == row["compartment_id"]
    )
    bank, location = await packages.bank_and_location(ctx, row["bank_id"])
    comp = await ctx.scope.select(Compartment).where(Compartment.id == row["compartment_id"]).first()
    await custody.append(
        ctx,
        "return.deposited",
        package_id=package_id,
        bank_id=row["bank_id"],
        compartment_id=row["compartment_id"],
        data={"door": comp["door"] if comp else None},
    )
    data = packages.message_data(ctx, row, bank, location, comp)
    await notify.queue_to(ctx, "return.deposited", partner.recipient_of(row), data, package_id=package_id)


# --- the carrier collects ---------------------------------------------------------------------


async def _claim_collect(ctx: Ctx, bank_id: UUID, package_id: UUID | None):
    bank = await lockers.get_bank(ctx, bank_id)
    if ctx.actor.bank_id is not None and ctx.actor.bank_id != bank_id:
        raise NotFound("Locker bank", bank_id)
    query = ctx.scope.select(Package).where(
        (Package.bank_id == bank_id)
        & (Package.direction == "return")
        & (Package.status == "awaiting_carrier")
    )
    if package_id is not None:
        package = await ctx.scope.select(Package).where(Package.id == package_id).first()
        if package is None or package["bank_id"] != bank_id:
            raise NotFound("Package", package_id)
        if package["direction"] != "return":
            raise Conflict(
                f"Package {package['tracking_id']} is a delivery, not a return: it is picked up, not collected"
            )
        if package["status"] != "awaiting_carrier":
            raise Conflict(
                f"Return {package['tracking_id']} is {package['status']}, not waiting for the carrier"
            )
        query = query.where(Package.id == package_id)
    waiting = await query.order_by(Package.deposited_at)
    if not waiting:
        raise Conflict(f"No return is waiting for a carrier at bank '{bank['name']}'")
    packages.require_online(bank)
    claimed = []
    for package in waiting:
        got = (
            await ctx.scope.update(Package, {Package.status: "collecting"})
            .where((Package.id == package["id"]) & (Package.status == "awaiting_carrier"))
            .returning(Package.id)
        )
        if got:
            comp = (
                await ctx.scope.select(Compartment).where(Compartment.id == package["compartment_id"]).first()
            )
            claimed.append((package, comp))
    if not claimed:
        raise Conflict("Those returns were collected meanwhile")
    command_id = await commands.create(ctx, bank_id, [comp["door"] for _, comp in claimed])
    return bank, claimed, command_id


async def collect(
    tenant: TenantInfo, actor: Actor, bank_id: UUID, package_id: UUID | None = None
) -> list[dict]:
    """Open the doors of the bank's returns waiting for a carrier (or of one); they are collected."""
    async with tenant_context(tenant, actor) as ctx:
        bank, claimed, command_id = await _claim_collect(ctx, bank_id, package_id)
    doors = [comp["door"] for _, comp in claimed]
    result = await packages.unlock(tenant, actor, bank, doors, command_id)

    async def finish() -> list[dict]:
        out = []
        async with tenant_context(tenant, actor) as ctx:
            await commands.record(ctx, result)
            now = clock.now()
            for package, comp in claimed:
                outcome = result.outcomes.get(comp["door"], "no_answer")
                if outcome not in commands.OPEN:
                    await ctx.scope.update(Package, {Package.status: "awaiting_carrier"}).where(
                        Package.id == package["id"]
                    )
                    await packages.door_event(
                        ctx,
                        "door.unlock_failed",
                        package["id"],
                        bank_id,
                        comp,
                        "collect",
                        outcome,
                        command_id,
                    )
                else:
                    await ctx.scope.update(
                        Package,
                        {
                            Package.status: "collected",
                            Package.picked_up_at: now,
                            Package.picked_up_by: actor.label,
                            Package.pickup_method: "carrier",
                        },
                    ).where(Package.id == package["id"])
                    await ctx.scope.update(
                        Compartment,
                        {
                            Compartment.status: "available",
                            Compartment.package_id: None,
                            Compartment.updated_at: now,
                        },
                    ).where(Compartment.id == comp["id"])
                    await reservations.end(ctx, comp["id"], "fulfilled")
                    await packages.door_event(
                        ctx, "return.collected", package["id"], bank_id, comp, "collect", outcome, command_id
                    )
                out.append(
                    {
                        "package_id": package["id"],
                        "tracking_id": package["tracking_id"],
                        "door": comp["door"],
                        "outcome": outcome,
                    }
                )
        return out

    done = await retrying(finish)
    if not any(d["outcome"] in commands.OPEN for d in done):
        raise DoorFailed(
            f"No door opened ({', '.join(str(d['door']) + ': ' + d['outcome'] for d in done)}); the returns wait",
            doors=doors,
        )
    return done
