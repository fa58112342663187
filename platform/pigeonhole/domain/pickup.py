"""Pickup by code at a bank (F1, F6), with guessing kept out.

Codes are six digits, so guessing is the threat. Three walls:
- one kiosk pauses code entry after ``kiosk_max_failures`` wrong codes in a row;
- a bank stops taking codes after ``bank_max_failures`` wrong codes from all its
  kiosks and apps within a window, so spreading guesses over kiosks does not help;
- a code that is presented for a known package and fails (the recipient app)
  counts against that credential, which locks after the access method's
  ``max_failures``.
Every refusal is committed before it is reported, so counters survive it.

The pickup itself mirrors the deposit: claim the package and record the door
command; open the door outside any transaction; record the outcome.
"""

from __future__ import annotations

import math
from datetime import timedelta
from uuid import UUID

from pigeonhole.api import InvalidSecret
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import ApiKey, Bank, Compartment, Credential, Location, Package
from pigeonhole.domain import clock, commands, credentials, custody, lockers, packages, reservations
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.directory import recipients
from pigeonhole.domain.errors import DomainError, DoorFailed, Forbidden, Invalid, NotFound, TooManyAttempts
from pigeonhole.messaging import notify


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


async def _check_locks(ctx: Ctx, bank: dict) -> None:
    now = clock.now()
    if bank["codes_locked_until"] and bank["codes_locked_until"] > now:
        wait = (bank["codes_locked_until"] - now).total_seconds()
        raise TooManyAttempts(
            f"This locker bank is not accepting codes for {_minutes(wait)} after too many wrong codes. "
            "Please try again later or contact the mailroom.",
            retry_after=math.ceil(wait),
        )
    if ctx.actor.key_id is not None:
        key = await ctx.scope.select(ApiKey.codes_locked_until).where(ApiKey.id == ctx.actor.key_id).first()
        if key and key["codes_locked_until"] and key["codes_locked_until"] > now:
            wait = (key["codes_locked_until"] - now).total_seconds()
            raise TooManyAttempts(
                f"Too many wrong codes at this kiosk. Code entry is paused for {_minutes(wait)}.",
                retry_after=math.ceil(wait),
            )


async def _record_failure(ctx: Ctx, bank: dict, reason: str) -> DomainError:
    """Count a wrong code everywhere it counts; return the error to report after commit."""
    rules = lockers.bank_settings(bank)
    now = clock.now()
    since = bank["code_failures_since"]
    window = timedelta(seconds=rules.bank_failure_window_seconds)
    failures = 1 if since is None or now - since > window else bank["code_failures"] + 1
    bank_values = {Bank.code_failures: failures}
    if since is None or now - since > window:
        bank_values[Bank.code_failures_since] = now
    bank_locked = failures >= rules.bank_max_failures
    if bank_locked:
        bank_values[Bank.codes_locked_until] = now + timedelta(seconds=rules.bank_lockout_seconds)
        bank_values[Bank.code_failures] = 0
        bank_values[Bank.code_failures_since] = None
    await ctx.scope.update(Bank, bank_values).where(Bank.id == bank["id"])
    left = None
    kiosk_locked = False
    if ctx.actor.key_id is not None:
        key = await ctx.scope.select(ApiKey.code_failures).where(ApiKey.id == ctx.actor.key_id).first()
        count = (key["code_failures"] if key else 0) + 1
        values = {ApiKey.code_failures: count}
        if count >= rules.kiosk_max_failures:
            values[ApiKey.codes_locked_until] = now + timedelta(seconds=rules.kiosk_lockout_seconds)
            values[ApiKey.code_failures] = 0
            kiosk_locked = True
        else:
            left = rules.kiosk_max_failures - count
        await ctx.scope.update(ApiKey, values).where(ApiKey.id == ctx.actor.key_id)
    await custody.append(
        ctx,
        "pickup.code_refused",
        bank_id=bank["id"],
        data={"reason": reason, "kiosk_locked": kiosk_locked, "bank_locked": bank_locked},
    )
    if bank_locked:
        return TooManyAttempts(
            "Too many wrong codes at this locker bank. It is not accepting codes for "
            f"{_minutes(rules.bank_lockout_seconds)}. Please contact the mailroom.",
            retry_after=rules.bank_lockout_seconds,
        )
    if kiosk_locked:
        return TooManyAttempts(
            f"Too many wrong codes at this kiosk. Code entry is paused for {_minutes(rules.kiosk_lockout_seconds)}.",
            retry_after=rules.kiosk_lockout_seconds,
        )
    message = f"{reason}."
    if left is not None:
        message += f" {left} attempt{'s' if left > 1 else ''} left before code entry pauses."
    return Forbidden(message, attempts_left=left)


async def _claim(ctx: Ctx, bank_id: UUID, method: str, secret: str, package_id: UUID | None):
    """Find the code's package and claim it for pickup; return (error, package, comp, command)."""
    bank = await lockers.get_bank(ctx, bank_id)
    if ctx.actor.bank_id is not None and ctx.actor.bank_id != bank_id:
        raise NotFound("Locker bank", bank_id)
    await _check_locks(ctx, bank)
    packages.require_online(bank)
    access = credentials.method_for(ctx, method)
    try:
        normalized = access.normalize(secret)
    except InvalidSecret as exc:
        raise Invalid(str(exc)) from None
    digest = credentials.digest(ctx, bank_id, method, normalized)
    query = ctx.scope.select(Credential).where(
        (Credential.bank_id == bank_id) & (Credential.method == method) & (Credential.status == "active")
    )
    if package_id is not None:
        # Attributed attempt (the recipient app names its package): failures count against it.
        cred = await query.where(Credential.package_id == package_id).first()
        if cred is None:
            raise NotFound("Package", package_id)
        if cred["digest"] != digest:
            failures = cred["failures"] + 1
            locked = failures >= access.max_failures
            await ctx.scope.update(
                Credential,
                {Credential.failures: failures, Credential.status: "locked" if locked else "active"},
            ).where(Credential.id == cred["id"])
            error = await _record_failure(ctx, bank, "This code is not valid for this package")
            if locked:
                await custody.append(ctx, "credential.locked", package_id=package_id, bank_id=bank_id)
                error = Forbidden(
                    "This code is locked after too many wrong attempts. Ask the mailroom for a new code."
                )
            return error, None, None, None
    else:
        cred = await query.where(Credential.digest == digest).first()
        if cred is None:
            return (
                await _record_failure(ctx, bank, "This code is not valid at this locker bank"),
                None,
                None,
                None,
            )
    now = clock.now()
    if cred["expires_at"] is not None and cred["expires_at"] <= now:
        await ctx.scope.update(Credential, {Credential.status: "expired"}).where(Credential.id == cred["id"])
        await custody.append(ctx, "credential.expired", package_id=cred["package_id"], bank_id=bank_id)
        return Forbidden("This code has expired. Please contact the mailroom."), None, None, None
    if ctx.actor.key_id is not None:
        # Only when there is something to reset: a shared key's row must not become a hot spot.
        await ctx.scope.update(ApiKey, {ApiKey.code_failures: 0}).where(
            (ApiKey.id == ctx.actor.key_id) & (ApiKey.code_failures > 0)
        )
    package = await packages.get_package(ctx, cred["package_id"])
    if package["recipient_contact_id"] is not None:
        refused = await recipients.inactive_refusal(ctx, package, bank_id)
        if refused is not None:
            return refused, None, None, None
    claimed = (
        await ctx.scope.update(Package, {Package.status: "collecting"})
        .where((Package.id == package["id"]) & (Package.status == "ready"))
        .returning(Package.id)
    )
    if not claimed:
        return Forbidden(f"Package {package['tracking_id']} is {package['status']}"), None, None, None
    comp = await ctx.scope.select(Compartment).where(Compartment.id == package["compartment_id"]).first()
    command_id = await commands.create(ctx, bank_id, [comp["door"]])
    return None, {**package, "_credential_id": cred["id"], "_method": method, "_bank": bank}, comp, command_id


async def pickup(
    tenant: TenantInfo,
    actor: Actor,
    bank_id: UUID,
    secret: str,
    *,
    method: str = "pin",
    package_id: UUID | None = None,
) -> dict:
    async with tenant_context(tenant, actor) as ctx:
        error, package, comp, command_id = await _claim(ctx, bank_id, method, secret, package_id)
    if error is not None:
        raise error
    bank = package["_bank"]
    result = await packages.unlock(tenant, actor, bank, [comp["door"]], command_id)
    outcome = result.outcomes.get(comp["door"], "no_answer")
    opened = outcome in ("opened", "already_open")
    # The door has moved: this record must land, so a lost write lock or a dropped
    # connection is retried rather than leaving the package half picked up.
    now = await retrying(lambda: _finish(tenant, actor, bank, package, comp, command_id, result, opened))
    if not opened:
        raise DoorFailed(
            f"Door {comp['door']} did not open ({outcome}). Your code still works; please contact the mailroom.",
            outcome=outcome,
            door=comp["door"],
        )
    return {
        "package_id": package["id"],
        "tracking_id": package["tracking_id"],
        "door": comp["door"],
        "outcome": outcome,
        "picked_up_at": now,
        "method": method,
    }


async def _finish(tenant, actor, bank, package, comp, command_id, result, opened: bool):
    outcome = result.outcomes.get(comp["door"], "no_answer")
    method = package["_method"]
    async with tenant_context(tenant, actor) as ctx:
        await commands.record(ctx, result)
        now = clock.now()
        if not opened:
            await ctx.scope.update(Package, {Package.status: "ready"}).where(Package.id == package["id"])
            await packages.door_event(
                ctx, "door.unlock_failed", package["id"], bank["id"], comp, "pickup", outcome, command_id
            )
            return now
        person = package["recipient_name"]
        await ctx.scope.update(
            Package,
            {
                Package.status: "picked_up",
                Package.picked_up_at: now,
                Package.picked_up_by: person,
                Package.pickup_method: method,
            },
        ).where(Package.id == package["id"])
        await ctx.scope.update(
            Compartment,
            {Compartment.status: "available", Compartment.package_id: None, Compartment.updated_at: now},
        ).where(Compartment.id == comp["id"])
        await ctx.scope.update(Credential, {Credential.status: "used", Credential.used_at: now}).where(
            Credential.id == package["_credential_id"]
        )
        await credentials.revoke_for_package(ctx, package["id"])
        await reservations.end(ctx, comp["id"], "fulfilled")
        await packages.door_event(
            ctx,
            "package.picked_up",
            package["id"],
            bank["id"],
            comp,
            "pickup",
            outcome,
            command_id,
            method=method,
            person=person,
        )
        fresh = {
            **package,
            "status": "picked_up",
            "picked_up_at": now,
            "picked_up_by": person,
            "pickup_method": method,
        }
        location = await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first()
        data = packages.message_data(ctx, fresh, bank, location, comp)
        data["picked_up_at"] = packages.local_iso(now, location)
        await notify.queue(ctx, "package.picked_up", fresh, data)
        return now
