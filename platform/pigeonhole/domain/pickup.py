"""Pickup at a bank (F1, F2, F3, F6), with guessing kept out.

What is presented is a per-package secret (a six-digit code, a QR token) or
an identity (a badge: the contact's Personnel ID, an access method with
``identifies_person``). Either way a pickup is a *session* for one person at
one bank: every ready package of theirs at the bank opens (F2: their other
compartments too, and with E4 every package behind a door they share), and
when the bank allows it the department packages they may collect (F3: the key
contact always, members when ``department_members_pick_up``). Who "they" are:
the package's directory contact; for a package addressed to a department only,
its key contact; for a member of the public (K2), the same email or phone.
The doors open in one command, all at once or one after the other
(``open_mode``); the answer lists every door with its outcome and each
package gets its own custody event and message.

Codes and badges are guessable, so three walls:
- one kiosk pauses code entry after ``kiosk_max_failures`` wrong codes in a row;
- a bank stops taking codes after ``bank_max_failures`` wrong codes from all its
  kiosks and apps within a window, so spreading guesses over kiosks does not help;
- a code that is presented for a known package and fails (the recipient app)
  counts against that credential, which locks after the access method's
  ``max_failures``.
An unknown badge, and a code already used or replaced, count like a wrong
code; each says which rule it broke. Every refusal is committed before it is
reported, so counters survive it.

The pickup itself mirrors the deposit: claim the packages and record the door
command; open the doors outside any transaction; record the outcomes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pigeonhole.api import InvalidSecret
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import (
    ApiKey,
    Bank,
    Compartment,
    Contact,
    Credential,
    Department,
    DepartmentMember,
    Location,
    Package,
)
from pigeonhole.domain import clock, commands, credentials, custody, lockers, packages, reservations
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.directory import recipients
from pigeonhole.domain.directory.contacts import FLAG_DEACTIVATED
from pigeonhole.domain.directory.keys import fold
from pigeonhole.domain.errors import (
    Conflict,
    DomainError,
    DoorFailed,
    Forbidden,
    Invalid,
    NotFound,
    TooManyAttempts,
)
from pigeonhole.domain.identity import throttle
from pigeonhole.edge.hub import get_hub
from pigeonhole.messaging import notify
from pigeonhole.runtime import tenant_plugins

log = logging.getLogger(__name__)

OPEN = ("opened", "already_open")
#: Packages still inside a compartment (E4: a compartment may hold several).
INSIDE = ("ready", "collecting", "depositing")


class NothingWaiting(DomainError):
    """404: a valid badge, but nothing waits for its holder at this bank (not a guess)."""

    status_code = 404


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def _local(moment, location: dict | None) -> str:
    try:
        zone = ZoneInfo(location["timezone"]) if location else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


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


async def _good_attempt(ctx: Ctx) -> None:
    """A valid code or badge: the kiosk's run of wrong codes ends."""
    if ctx.actor.key_id is not None:
        # Only when there is something to reset: a shared key's row must not become a hot spot.
        await ctx.scope.update(ApiKey, {ApiKey.code_failures: 0}).where(
            (ApiKey.id == ctx.actor.key_id) & (ApiKey.code_failures > 0)
        )


async def _dead_code_reason(ctx: Ctx, bank: dict, method: str, digest: str) -> tuple[str, bool] | None:
    """Why a code that matches no live credential once worked here; (sentence, counts as failure)."""
    row = (
        await ctx.scope.select(Credential.package_id, Credential.status, Credential.used_at)
        .where(
            (Credential.bank_id == bank["id"])
            & (Credential.method == method)
            & (Credential.digest == digest)
            & (Credential.status != "active")
            & Credential.package_id.is_not_null()
        )
        .order_by(Credential.issued_at, ascending=False)
        .first()
    )
    if row is None:
        return None
    package = (
        await ctx.scope.select(Package.status, Package.picked_up_at).where(Package.id == row["package_id"]).first()
    )
    location = await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first()
    if package is not None and package["status"] == "picked_up" and package["picked_up_at"] is not None:
        when = _local(package["picked_up_at"], location)
        return f"This code was already used to pick up the package on {when}", True
    if row["status"] == "expired" or (package is not None and package["status"] == "expired"):
        return "This code has expired. Please contact the mailroom.", False
    if row["status"] == "revoked" and row["used_at"] is not None:
        when = _local(row["used_at"], location)
        return f"This code was replaced by a new one on {when}; use the code of the latest message", True
    return None


# --- who picks up, and what ------------------------------------------------------------


@dataclass
class Session:
    bank: dict
    method: str
    person: str
    open_mode: str
    command_id: UUID | None = None
    #: the package whose code was presented (None for a badge)
    primary_id: UUID | None = None
    credential_id: UUID | None = None
    contact_id: UUID | None = None
    #: [(compartment row, [package rows])], in the order the doors open
    groups: list[tuple[dict, list[dict]]] = field(default_factory=list)

    @property
    def doors(self) -> list[int]:
        return [comp["door"] for comp, _ in self.groups]


async def _departments_of(ctx: Ctx, contact_id: UUID, members_too: bool) -> list[UUID]:
    """C4: the departments whose packages this contact may collect."""
    ids = {r["id"] for r in await ctx.scope.select(Department.id).where(Department.key_contact_id == contact_id)}
    if members_too:
        ids |= {
            r["department_id"]
            for r in await ctx.scope.select(DepartmentMember.department_id).where(
                DepartmentMember.contact_id == contact_id
            )
        }
    return list(ids)


async def _collectable(
    ctx: Ctx, bank: dict, contact: dict | None, primary: dict | None
) -> list[dict]:
    """Every ready package at the bank the person may take in this session."""
    rules = lockers.bank_settings(bank)
    here = (
        (Package.bank_id == bank["id"]) & (Package.status == "ready") & Package.compartment_id.is_not_null()
    )
    found: dict[UUID, dict] = {}
    if primary is not None:
        found[primary["id"]] = primary
    if contact is not None:
        for row in await ctx.scope.select(Package).where(here & (Package.recipient_contact_id == contact["id"])):
            found.setdefault(row["id"], row)
        if rules.pickup_department_packages:
            departments = await _departments_of(ctx, contact["id"], rules.department_members_pick_up)
            if departments:
                rows = await ctx.scope.select(Package).where(
                    here & Package.department_id.is_in(departments) & Package.recipient_contact_id.is_null()
                )
                for row in rows:
                    found.setdefault(row["id"], row)
    elif primary is not None and primary["department_id"] is not None and primary["recipient_contact_id"] is None:
        rows = await ctx.scope.select(Package).where(
            here & (Package.department_id == primary["department_id"]) & Package.recipient_contact_id.is_null()
        )
        for row in rows:
            found.setdefault(row["id"], row)
    elif primary is not None:
        # A member of the public (K2): the same email or phone, no directory entry.
        email = (primary["recipient_email"] or "").strip().lower()
        phone = (primary["recipient_phone"] or "").strip()
        if email or phone:
            rows = await ctx.scope.select(Package).where(
                here & Package.recipient_contact_id.is_null() & Package.department_id.is_null()
            )
            for row in rows:
                if (email and (row["recipient_email"] or "").strip().lower() == email) or (
                    phone and (row["recipient_phone"] or "").strip() == phone
                ):
                    found.setdefault(row["id"], row)
    return list(found.values())


async def _person_of(ctx: Ctx, package: dict) -> dict | None:
    """The directory contact who holds this package's code: its contact, or its department's key contact."""
    contact_id = package["recipient_contact_id"]
    if contact_id is None and package["department_id"] is not None:
        department = (
            await ctx.scope.select(Department.key_contact_id).where(Department.id == package["department_id"]).first()
        )
        contact_id = department["key_contact_id"] if department else None
    if contact_id is None:
        return None
    contact = await ctx.scope.select(Contact).where(Contact.id == contact_id).first()
    return contact if contact and contact["active"] else None


async def _claim(
    ctx: Ctx, bank_id: UUID, method: str, secret: str, package_id: UUID | None
) -> tuple[DomainError | None, Session | None]:
    """Find who is picking up and claim their packages; return (error to raise after commit, session)."""
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
    rules = lockers.bank_settings(bank)
    primary = None
    credential_id = None
    if access.identifies_person:
        if package_id is not None:
            raise Invalid("A badge opens every package of its holder: do not name a package")
        contact = await ctx.scope.select(Contact).where(Contact.personnel_key == fold(normalized)).first()
        if contact is None:
            return await _record_failure(ctx, bank, "This badge is not known at this locker bank"), None
        if not contact["active"]:
            await custody.append(
                ctx,
                "pickup.refused",
                bank_id=bank_id,
                method=method,
                data={"reason": FLAG_DEACTIVATED, "contact_id": str(contact["id"])},
            )
            return (
                Forbidden(
                    "This badge opens nothing here because its holder is no longer active. "
                    "Please contact the mailroom."
                ),
                None,
            )
        await _good_attempt(ctx)
        person = contact
    else:
        digest = credentials.digest(ctx, bank_id, method, normalized)
        query = ctx.scope.select(Credential).where(
            (Credential.bank_id == bank_id)
            & (Credential.method == method)
            & (Credential.status == "active")
            & Credential.package_id.is_not_null()
        )
        if package_id is not None:
            # Attributed attempt (the recipient app names its package): failures count against it.
            cred = await query.where(Credential.package_id == package_id).first()
            if cred is None:
                done = (
                    await ctx.scope.select(Package.status, Package.picked_up_at, Package.bank_id)
                    .where(Package.id == package_id)
                    .first()
                )
                if done and done["status"] == "picked_up" and done["bank_id"] == bank_id:
                    location = await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first()
                    when = _local(done["picked_up_at"], location)
                    return Forbidden(f"This package was already picked up on {when}"), None
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
                return error, None
        else:
            cred = await query.where(Credential.digest == digest).first()
            if cred is None:
                dead = await _dead_code_reason(ctx, bank, method, digest)
                if dead is not None and not dead[1]:
                    return Forbidden(dead[0]), None
                reason = dead[0] if dead else "This code is not valid at this locker bank"
                return await _record_failure(ctx, bank, reason), None
        now = clock.now()
        if cred["expires_at"] is not None and cred["expires_at"] <= now:
            await ctx.scope.update(Credential, {Credential.status: "expired"}).where(Credential.id == cred["id"])
            await custody.append(ctx, "credential.expired", package_id=cred["package_id"], bank_id=bank_id)
            return Forbidden("This code has expired. Please contact the mailroom."), None
        await _good_attempt(ctx)
        primary = await packages.get_package(ctx, cred["package_id"])
        if primary["recipient_contact_id"] is not None:
            refused = await recipients.inactive_refusal(ctx, primary, bank_id)
            if refused is not None:
                return refused, None
        if primary["status"] != "ready":
            return Forbidden(f"Package {primary['tracking_id']} is {primary['status']}"), None
        credential_id = cred["id"]
        person = await _person_of(ctx, primary)
    wanted = await _collectable(ctx, bank, person, primary)
    claimed: list[dict] = []
    for row in wanted:
        got = (
            await ctx.scope.update(Package, {Package.status: "collecting"})
            .where((Package.id == row["id"]) & (Package.status == "ready"))
            .returning(Package.id)
        )
        if got:
            claimed.append(row)
    if primary is not None and all(r["id"] != primary["id"] for r in claimed):
        return Forbidden(f"Package {primary['tracking_id']} is being collected"), None
    if not claimed:
        return NothingWaiting(f"No package is waiting for {person['name']} at locker bank '{bank['name']}'"), None
    comps = {
        c["id"]: c
        for c in await ctx.scope.select(Compartment).where(
            Compartment.id.is_in(list({r["compartment_id"] for r in claimed}))
        )
    }
    by_comp: dict[UUID, list[dict]] = {}
    for row in claimed:
        by_comp.setdefault(row["compartment_id"], []).append(row)
    first = primary["compartment_id"] if primary is not None else None
    order = sorted(by_comp, key=lambda cid: (cid != first, comps[cid]["door"]))
    session = Session(
        bank=bank,
        method=method,
        person=person["name"] if person is not None else primary["recipient_name"],
        open_mode=rules.open_mode,
        primary_id=primary["id"] if primary is not None else None,
        credential_id=credential_id,
        contact_id=person["id"] if person is not None else None,
        groups=[(comps[cid], by_comp[cid]) for cid in order],
    )
    session.command_id = await commands.create(ctx, bank_id, session.doors)
    return None, session


async def orphan_session(ctx: Ctx, bank: dict, doors: list[int], command_id: UUID) -> Session | None:
    """The pickup a dead server left half done, rebuilt from what it committed (reconciliation).

    Its first step claimed packages (``collecting``) behind ``doors``; which code
    was typed is not recorded, so the first package's active credential stands
    for it (marked used if the door opened, like a live pickup).
    """
    comps = await ctx.scope.select(Compartment).where(
        (Compartment.bank_id == bank["id"]) & Compartment.door.is_in(list(doors))
    )
    groups = []
    for comp in sorted(comps, key=lambda c: doors.index(c["door"])):
        rows = await (
            ctx.scope.select(Package)
            .where((Package.compartment_id == comp["id"]) & (Package.status == "collecting"))
            .order_by(Package.ready_at)
        )
        if rows:
            groups.append((comp, rows))
    if not groups:
        return None
    primary = groups[0][1][0]
    credential = await (
        ctx.scope.select(Credential)
        .where((Credential.package_id == primary["id"]) & (Credential.status == "active"))
        .first()
    )
    return Session(
        bank=bank,
        method=credential["method"] if credential else "pin",
        person=primary["recipient_name"],
        open_mode=lockers.bank_settings(bank).open_mode,
        command_id=command_id,
        primary_id=primary["id"],
        credential_id=credential["id"] if credential else None,
        contact_id=primary["recipient_contact_id"],
        groups=groups,
    )


# --- the door path ------------------------------------------------------------------------


async def _unlock(tenant: TenantInfo, actor: Actor, bank: dict, doors: list[int], command_id: UUID, sequential: bool):
    """Ask the agent to open the doors, outside any transaction (packages.unlock, with the open mode)."""
    hub = get_hub()
    commands.sending(command_id)
    plugins = tenant_plugins.cached(tenant.id, tenant.plugins_version)
    bank_doors = None
    if plugins is None or hub.needs_bank(bank["id"]):
        async with tenant_context(tenant, actor, write=False) as ctx:
            plugins = ctx.plugins
            if hub.needs_bank(bank["id"]):
                bank_doors = [c["door"] for c in await lockers.compartments(ctx, bank["id"])]
    return await hub.unlock(plugins, bank, bank_doors, doors, command_id, sequential=sequential)


def _outcome(result, door: int) -> str:
    outcomes = result.outcomes
    return str(outcomes.get(door) or outcomes.get(str(door)) or "no_answer")


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
        error, session = await _claim(ctx, bank_id, method, secret, package_id)
    if error is not None:
        raise error
    result = await _unlock(
        tenant,
        actor,
        session.bank,
        session.doors,
        session.command_id,
        sequential=session.open_mode == "one_at_a_time",
    )
    # The doors have moved: this record must land, so a lost write lock or a dropped
    # connection is retried rather than leaving packages half picked up.
    now = await retrying(lambda: _finish(tenant, actor, session, result))
    doors = []
    for comp, rows in session.groups:
        doors.append(
            {
                "door": comp["door"],
                "outcome": _outcome(result, comp["door"]),
                "packages": [
                    {
                        "package_id": r["id"],
                        "tracking_id": r["tracking_id"],
                        "department": r["recipient_contact_id"] is None and r["department_id"] is not None,
                    }
                    for r in rows
                ],
            }
        )
    opened = [d for d in doors if d["outcome"] in OPEN]
    if not opened:
        first = doors[0]
        which = ", ".join(str(d["door"]) for d in doors)
        raise DoorFailed(
            f"Door{'s' if len(doors) > 1 else ''} {which} did not open ({first['outcome']}). "
            "Your code still works; please contact the mailroom.",
            outcome=first["outcome"],
            door=first["door"],
        )
    main = doors[0]
    if session.primary_id is not None:
        main = next(d for d in doors if any(p["package_id"] == session.primary_id for p in d["packages"]))
    lead = next((p for p in main["packages"] if p["package_id"] == session.primary_id), main["packages"][0])
    return {
        "package_id": lead["package_id"],
        "tracking_id": lead["tracking_id"],
        "door": main["door"],
        "outcome": main["outcome"],
        "picked_up_at": now,
        "method": session.method,
        "person": session.person,
        "open_mode": session.open_mode,
        "doors": doors,
    }


async def _finish(tenant: TenantInfo, actor: Actor, session: Session, result):
    bank = session.bank
    method = session.method
    async with tenant_context(tenant, actor) as ctx:
        await commands.record(ctx, result)
        now = clock.now()
        location = await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first()
        person = session.person
        for comp, rows in session.groups:
            outcome = _outcome(result, comp["door"])
            ids = [r["id"] for r in rows]
            if outcome not in OPEN:
                await ctx.scope.update(Package, {Package.status: "ready"}).where(
                    Package.id.is_in(ids) & (Package.status == "collecting")
                )
                for row in rows:
                    await packages.door_event(
                        ctx, "door.unlock_failed", row["id"], bank["id"], comp, "pickup", outcome, session.command_id
                    )
                continue
            await ctx.scope.update(
                Package,
                {
                    Package.status: "picked_up",
                    Package.picked_up_at: now,
                    Package.picked_up_by: person,
                    Package.pickup_method: method,
                },
            ).where(Package.id.is_in(ids) & (Package.status == "collecting"))
            # E4: a compartment may hold more packages; it is free once none is left inside.
            left = (
                await ctx.scope.select(Package.id)
                .where((Package.compartment_id == comp["id"]) & Package.status.is_in(list(INSIDE)))
                .order_by(Package.ready_at)
                .first()
            )
            if left is None:
                await ctx.scope.update(
                    Compartment,
                    {Compartment.status: "available", Compartment.package_id: None, Compartment.updated_at: now},
                ).where(Compartment.id == comp["id"])
                await reservations.end(ctx, comp["id"], "fulfilled")
            else:
                await ctx.scope.update(
                    Compartment, {Compartment.package_id: left["id"], Compartment.updated_at: now}
                ).where((Compartment.id == comp["id"]) & Compartment.package_id.is_in(ids))
            for row in rows:
                if row["id"] == session.primary_id and session.credential_id is not None:
                    await ctx.scope.update(Credential, {Credential.status: "used", Credential.used_at: now}).where(
                        Credential.id == session.credential_id
                    )
                await credentials.revoke_for_package(ctx, row["id"])
                extra = {"person": person, "open_mode": session.open_mode}
                if session.primary_id is not None and row["id"] != session.primary_id:
                    extra["with_package"] = str(session.primary_id)
                if row["recipient_contact_id"] is None and row["department_id"] is not None:
                    extra["department_id"] = str(row["department_id"])
                if session.contact_id is not None:
                    extra["contact_id"] = str(session.contact_id)
                await packages.door_event(
                    ctx,
                    "package.picked_up",
                    row["id"],
                    bank["id"],
                    comp,
                    "pickup",
                    outcome,
                    session.command_id,
                    method=method,
                    **extra,
                )
                fresh = {
                    **row,
                    "status": "picked_up",
                    "picked_up_at": now,
                    "picked_up_by": person,
                    "pickup_method": method,
                }
                data = packages.message_data(ctx, fresh, bank, location, comp)
                data["picked_up_at"] = packages.local_iso(now, location)
                await notify.queue(ctx, "package.picked_up", fresh, data)
        return now


# --- F5: a forgotten code ---------------------------------------------------------------

#: Self-service requests per address (IP) and tenant: this one is told to wait.
NEW_CODE_PER_IP = throttle.Rule(
    kind="new-code-ip",
    limit=10,
    window=timedelta(minutes=15),
    message="Too many requests for a new code from this address; try again later.",
)
#: New codes mailed per package per hour; more requests are answered the same and send nothing.
NEW_CODE_PER_PACKAGE = throttle.Rule(
    kind="new-code-package", limit=3, window=timedelta(hours=1), message="Too many new codes"
)
#: The one answer to "I forgot my code", whatever was asked.
NEW_CODE_ANSWER = (
    "If a package waiting in a locker matches this tracking number and address, "
    "we have sent a new pickup code to the address on file. The previous code no longer works."
)


async def replace_codes(ctx: Ctx, package: dict, *, how: str) -> tuple[list[str], object, int]:
    """F5: new credentials for a waiting package, its old ones dead at once; the recipient is told.

    Returns (methods issued, expiry, messages queued). Raises before any change
    when the package is not waiting in a locker, or (``how='operator'``) when no
    channel can reach its recipient: the old code then keeps working.
    """
    if package["status"] != "ready" or package["bank_id"] is None:
        raise Conflict(
            f"Package {package['tracking_id']} is {package['status']}: only a package waiting in a "
            "locker gets a new code"
        )
    bank, location = await packages.bank_and_location(ctx, package["bank_id"])
    comp = await ctx.scope.select(Compartment).where(Compartment.id == package["compartment_id"]).first()
    await credentials.revoke_for_package(ctx, package["id"])
    workflow = ctx.plugins.workflow()
    methods = workflow.pickup_methods(packages.view(package)) if workflow else ["pin"]
    secrets: dict[str, str] = {}
    issued = []
    for name in methods:
        secret, _ = await credentials.issue(ctx, package["id"], bank["id"], name, package["expires_at"])
        if secret is None:
            continue
        secrets["code" if name == "pin" else name] = secret
        issued.append(name)
    await custody.append(
        ctx,
        "credential.replaced",
        package_id=package["id"],
        bank_id=bank["id"],
        compartment_id=package["compartment_id"],
        data={"how": how, "methods": issued},
    )
    data = packages.message_data(ctx, package, bank, location, comp)
    data["expires_at"] = packages.local_iso(package["expires_at"], location)
    # Not filtered by the workflow's notify_events: a new code nobody receives is no code.
    queued = await notify.queue_to(
        ctx, "package.code_replaced", notify.recipient_of(package), data, secrets=secrets, package_id=package["id"]
    )
    if not queued and how == "operator":
        raise Conflict(
            f"No channel reaches {package['recipient_name']} (no email or phone on file that a channel "
            "can use): the new code could not be sent, so the old one still works"
        )
    return issued, package["expires_at"], len(queued)


async def operator_new_code(tenant: TenantInfo, actor: Actor, package_id: UUID, check=None) -> dict:
    """An operator's override: new code(s) for a package, sent to its recipient (F5)."""
    async with tenant_context(tenant, actor) as ctx:
        if check is not None:
            await check(ctx, package_id)
        package = await packages.get_package(ctx, package_id)
        methods, expires, queued = await replace_codes(ctx, package, how="operator")
    return {
        "package_id": package["id"],
        "tracking_id": package["tracking_id"],
        "methods": methods,
        "expires_at": expires,
        "messages": queued,
    }


def _digits(phone: str | None) -> str:
    return "".join(c for c in (phone or "") if c.isdigit())


def _matches(package: dict, email: str | None, phone: str | None) -> bool:
    if email and (package["recipient_email"] or "").strip().lower() == email.strip().lower():
        return True
    wanted = _digits(phone)
    return bool(wanted) and len(wanted) >= 6 and _digits(package["recipient_phone"]) == wanted


async def self_service_new_code(
    tenant: TenantInfo, tracking_id: str, *, email: str | None, phone: str | None, ip: str
) -> str:
    """From the recipient app: a new code, sent only to the address on file; one answer for every ask."""
    async with tenant_context(tenant, write=False) as ctx:
        await throttle.check(ctx.scope, NEW_CODE_PER_IP, ip)
    if not (email or "").strip() and not _digits(phone):
        raise Invalid("Give the email address or the phone number the package was sent to")
    actor = Actor(name="recipient-app", role="recipient")
    async with tenant_context(tenant, actor) as ctx:
        await throttle.fail(ctx.scope, NEW_CODE_PER_IP, ip)
        rows = await ctx.scope.select(Package).where(
            (Package.tracking_id == tracking_id.strip()) & (Package.status == "ready")
        )
        for package in rows:
            if not _matches(package, email, phone):
                continue
            subject = str(package["id"])
            try:
                await throttle.check(ctx.scope, NEW_CODE_PER_PACKAGE, subject)
            except DomainError:
                log.warning("new code not sent, too many this hour: package=%s", package["id"])
                continue
            await throttle.fail(ctx.scope, NEW_CODE_PER_PACKAGE, subject)
            await replace_codes(ctx, package, how="self_service")
    return NEW_CODE_ANSWER


# The guessing walls, for other secrets presented at a kiosk (carrier codes, domain/carriers.py).
check_locks = _check_locks
record_failure = _record_failure
good_attempt = _good_attempt
local_time = _local
