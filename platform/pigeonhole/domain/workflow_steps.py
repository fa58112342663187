"""A deposited package's timeline: reminders, escalation, expiry (H3, H4) and removal (G5).

When a package becomes ready, :func:`schedule_package` asks the tenant's
workflow for its timeline (``Workflow.timeline``) and writes one durable timer
per step (:mod:`.timers`), with everything the step needs (event, who to tell,
the expiry destination, the message data) copied into the timer: the schedule,
and the expiry date the recipient was told, do not move when an administrator
later changes the workflow's configuration.

A step fires only while its package is still ``ready``; a package picked up,
or expired by an earlier step, skips it. The ``expire`` step kills the
package's codes, marks the package ``expired`` with its destination
(``counter`` or ``shelf``) and its compartment ``expired`` (the parcel is
still inside), ends its reservation and tells the recipient. Staff then remove
expired packages (:func:`remove`): the doors open through the usual door path,
each package becomes ``at_counter`` or ``in_storage`` and its compartment is
free again. See docs/decisions/0024-durable-timers.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

import msgspec

from pigeonhole.api import EXPIRY_DESTINATIONS, NOTIFY_TARGETS, PackageView, Recipient, TimelineStep, Workflow
from pigeonhole.db.retry import retrying
from pigeonhole.db.tables import AppUser, Compartment, Contact, Department, Package, Role, Timer
from pigeonhole.domain import clock, commands, credentials, custody, lockers, packages, reservations, timers
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_context
from pigeonhole.domain.errors import Conflict, DoorFailed, Invalid, NotFound
from pigeonhole.domain.identity import permissions, roles, scopes
from pigeonhole.messaging import notify

ACTION = "package.step"
#: Where a removed package is, per its expiry destination.
REMOVED_STATUS = {"counter": "at_counter", "shelf": "in_storage"}
WORKFLOW = Actor(name="workflow", role="system")
#: Who "staff" is in a timeline step (see :func:`staff`).
STAFF_PERMISSIONS = frozenset({"packages:write", "doors:open"})


# --- receiving: may the site take this package? -----------------------------------------


def check_accepts(ctx: Ctx, body: dict, name: str, email: str | None, phone: str | None, size: str) -> None:
    """The workflow's refusal (``Workflow.accepts``) as a 400, before anything is written."""
    workflow = ctx.plugins.workflow()
    if workflow is None:
        return
    view = PackageView(
        id=uuid.uuid4(),
        tracking_id=(body.get("tracking_id") or "").strip(),
        carrier=(body.get("carrier") or "").strip(),
        size=size,
        status="received",
        recipient=Recipient(name=name, email=email, phone=(phone or "").strip() or None),
        bank_id=body.get("bank_id"),
        received_at=clock.now(),
    )
    reason = workflow.accepts(view)
    if reason:
        raise Invalid(reason)


# --- scheduling at deposit ----------------------------------------------------------------


def check_timeline(steps: list[TimelineStep], destination: str) -> None:
    """Refuse a timeline the host cannot run (a plugin bug: fail the deposit's config early)."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise Invalid(f"Workflow timeline step names must be unique (got {names})")
    for step in steps:
        if step.after < timedelta(0):
            raise Invalid(f"Workflow timeline step '{step.name}' is before the deposit")
        unknown = set(step.notify) - set(NOTIFY_TARGETS)
        if unknown:
            raise Invalid(
                f"Workflow timeline step '{step.name}' notifies {sorted(unknown)}; "
                f"targets are {', '.join(NOTIFY_TARGETS)}"
            )
    if destination not in EXPIRY_DESTINATIONS:
        raise Invalid(
            f"Expiry destination must be one of {', '.join(EXPIRY_DESTINATIONS)} (got '{destination}')"
        )


async def schedule_package(ctx: Ctx, package: dict, workflow: Workflow | None) -> list[UUID]:
    """Materialize the package's timeline as timers, in the deposit's transaction."""
    if workflow is None:
        return []
    package = await packages.get_package(ctx, package["id"])  # as it is now: ready, with its times
    view = packages.view(package)
    steps = list(workflow.timeline(view))
    destination = workflow.expiry_destination(view)
    check_timeline(steps, destination)
    start = package["ready_at"] or clock.now()
    ids = []
    for seq, step in enumerate(steps):
        ids.append(
            await timers.schedule(
                ctx,
                action=ACTION,
                due_at=start + step.after,
                package_id=package["id"],
                step=step.name,
                seq=seq,
                data={
                    "event": step.event,
                    "notify": list(step.notify),
                    "expire": step.expire,
                    "destination": destination if step.expire else None,
                    "data": step.data,
                },
            )
        )
    return ids


# --- firing a step ---------------------------------------------------------------------------


@timers.action(ACTION)
async def fire(ctx: Ctx, timer: dict) -> bool:
    package = await ctx.scope.select(Package).where(Package.id == timer["package_id"]).first()
    if package is None or package["status"] != "ready":
        return False  # picked up, expired already, or never there: nothing to say
    spec = timer["data"]
    bank, location = await packages.bank_and_location(ctx, package["bank_id"])
    comp = await ctx.scope.select(Compartment).where(Compartment.id == package["compartment_id"]).first()
    data = packages.message_data(ctx, package, bank, location, comp)
    data["expires_at"] = packages.local_iso(package["expires_at"], location)
    if package["ready_at"] is not None:
        waited = clock.now() - package["ready_at"]
        data["hours_waiting"] = int(waited.total_seconds() // 3600)
    data.update(spec.get("data") or {})
    data["step"] = timer["step"]
    if spec.get("expire"):
        destination = spec.get("destination") or "counter"
        await _expire(ctx, package, comp, destination, timer["step"])
        data["destination"] = destination
        package = {**package, "status": "expired", "destination": destination}
    else:
        await custody.append(
            ctx,
            "package.step",
            package_id=package["id"],
            bank_id=package["bank_id"],
            compartment_id=package["compartment_id"],
            actor=WORKFLOW.label,
            data={"step": timer["step"], "event": spec.get("event"), "notify": spec.get("notify")},
        )
    if spec.get("event"):
        await tell(ctx, spec["event"], package, bank, data, spec.get("notify") or ["recipient"])
    return True


async def _expire(ctx: Ctx, package: dict, comp: dict | None, destination: str, step: str) -> None:
    now = clock.now()
    await credentials.revoke_for_package(ctx, package["id"], status="expired")
    await ctx.scope.update(Package, {Package.status: "expired", Package.destination: destination}).where(
        Package.id == package["id"]
    )
    # E4: a compartment shared with packages still waiting stays theirs (occupied, its
    # reservation running); removal takes the expired one out of it later.
    if comp is not None and not await _others_in(ctx, comp["id"], package["id"]):
        await ctx.scope.update(
            Compartment, {Compartment.status: "expired", Compartment.updated_at: now}
        ).where(Compartment.id == comp["id"])
        await reservations.end(ctx, comp["id"], "expired")
    await custody.append(
        ctx,
        "package.expired",
        package_id=package["id"],
        bank_id=package["bank_id"],
        compartment_id=package["compartment_id"],
        actor=WORKFLOW.label,
        data={"step": step, "destination": destination, "door": comp["door"] if comp else None},
    )


# --- who hears about it -------------------------------------------------------------------


async def staff(ctx: Ctx, bank: dict | None) -> list[Recipient]:
    """The mailroom: active users holding packages:write and doors:open whose scope reaches the bank.

    Both permissions: the people who handle parcels and may open doors to take
    one out (mailroom administrators, locker operators, enterprise
    administrators), not carriers, who deliver but do not run the mailroom.
    """
    role_perms = {r["id"]: roles.role_permissions(r) for r in await ctx.scope.select(Role)}
    rows = await ctx.scope.select(AppUser).where(
        (AppUser.status == "active") & (AppUser.deleted_at.is_null())
    )
    found = []
    for user in rows:
        extra = frozenset(msgspec.json.decode(user["permissions"] or "[]")) & permissions.ALL
        if not STAFF_PERMISSIONS <= (role_perms.get(user["role_id"], frozenset()) | extra):
            continue
        if bank is not None:
            reach = await scopes.location_ids(ctx.scope, scopes.parse(user["scope"]))
            if reach is not None and bank["location_id"] not in reach:
                continue
        found.append(Recipient(name=user["name"], email=user["email"]))
    return found


async def key_contact(ctx: Ctx, package: dict) -> Recipient | None:
    if package.get("department_id") is None:
        return None
    dept = await ctx.scope.select(Department).where(Department.id == package["department_id"]).first()
    if dept is None or dept["key_contact_id"] is None:
        return None
    contact = await ctx.scope.select(Contact).where(Contact.id == dept["key_contact_id"]).first()
    if contact is None or not contact["active"] or not (contact["email"] or contact["phone"]):
        return None
    return Recipient(
        name=contact["name"],
        email=contact["email"],
        phone=contact["phone"],
        language=contact["language"] or "en",
    )


async def tell(
    ctx: Ctx, event: str, package: dict, bank: dict | None, data: dict, targets: list[str]
) -> None:
    """Queue ``event`` to each target (see ``TimelineStep.notify``); nobody twice."""
    sent: set[str] = set()
    others: list[Recipient] = []
    for target in targets:
        if target == "recipient":
            await notify.queue(ctx, event, package, {**data, "audience": "recipient"})
            sent.add((package["recipient_email"] or package["recipient_phone"] or "").lower())
            continue
        people: list[Recipient] = []
        if target == "key_contact":
            contact = await key_contact(ctx, package)
            people = [contact] if contact is not None else await staff(ctx, bank)
        elif target == "staff":
            people = await staff(ctx, bank)
        others.extend(people)
    for person in others:
        key = (person.email or person.phone or "").lower()
        if not key or key in sent:
            continue
        sent.add(key)
        await notify.queue_to(ctx, event, person, {**data, "audience": "staff"}, package_id=package["id"])


# --- removal of expired packages (G5) --------------------------------------------------------


#: Packages that still belong in their compartment (anything else there is waiting for removal).
IN_LOCKER = ("depositing", "ready", "collecting")


async def _others_in(ctx: Ctx, compartment_id: UUID, package_id: UUID) -> list[dict]:
    """Packages other than ``package_id`` still in the compartment (E4: a shared compartment)."""
    return await ctx.scope.select(Package).where(
        (Package.compartment_id == compartment_id)
        & (Package.id != package_id)
        & Package.status.is_in(list(IN_LOCKER))
    )


async def _expired_in(ctx: Ctx, bank_id: UUID, package_id: UUID | None) -> list[tuple[dict, dict]]:
    """Expired packages still in a compartment of the bank, with their compartment, by door."""
    query = ctx.scope.select(Package).where(
        (Package.bank_id == bank_id) & (Package.status == "expired") & Package.compartment_id.is_not_null()
    )
    if package_id is not None:
        query = query.where(Package.id == package_id)
    found = []
    for package in await query:
        comp = await ctx.scope.select(Compartment).where(Compartment.id == package["compartment_id"]).first()
        if comp is not None:
            found.append((package, comp))
    return sorted(found, key=lambda pc: (pc[1]["door"], pc[0]["tracking_id"]))


async def remove(
    tenant: TenantInfo,
    actor: Actor,
    bank_id: UUID | None = None,
    *,
    package_id: UUID | None = None,
    check: Callable[[Ctx, UUID], Awaitable[None]] | None = None,
) -> dict:
    """Open the doors of expired packages (all of a bank, or one package) and record them removed.

    Each package goes where its workflow said at expiry: ``at_counter`` or
    ``in_storage``; its compartment becomes available. A door that does not
    open leaves its package expired (listed under ``failed``).
    """
    async with tenant_context(tenant, actor) as ctx:
        if package_id is not None:
            if check is not None:
                await check(ctx, package_id)
            package = await packages.get_package(ctx, package_id)
            if package["status"] != "expired" or package["bank_id"] is None:
                raise Conflict(
                    f"Package {package['tracking_id']} is {package['status']}: only an expired package "
                    "waiting in its locker can be removed"
                )
            bank_id = package["bank_id"]
        elif check is not None:
            await check(ctx, bank_id)
        if actor.bank_id is not None and actor.bank_id != bank_id:
            raise NotFound("Locker bank", bank_id)
        bank = await lockers.get_bank(ctx, bank_id)
        found = await _expired_in(ctx, bank_id, package_id)
        if not found:
            if package_id is not None:
                raise Conflict("This package is no longer in its locker")
            return {"bank_id": bank_id, "removed": [], "failed": [], "command_id": None}
        packages.require_online(bank)
        doors = sorted({comp["door"] for _, comp in found})
        command_id = await commands.create(ctx, bank_id, doors, kind="removal")
        for package, comp in found:
            await custody.append(
                ctx,
                "door.removal_requested",
                package_id=package["id"],
                bank_id=bank_id,
                compartment_id=comp["id"],
                data={"door": comp["door"], "command_id": str(command_id)},
            )
    result = await packages.unlock(tenant, actor, bank, doors, command_id)

    async def finish() -> dict:
        removed, failed = [], []
        async with tenant_context(tenant, actor) as ctx:
            await commands.record(ctx, result)
            _, location = await packages.bank_and_location(ctx, bank_id)
            for package, comp in found:
                outcome = result.outcomes.get(comp["door"], "no_answer")
                if outcome not in commands.OPEN:
                    await packages.door_event(
                        ctx,
                        "door.unlock_failed",
                        package["id"],
                        bank_id,
                        comp,
                        "removal",
                        outcome,
                        command_id,
                    )
                    failed.append({"package_id": package["id"], "door": comp["door"], "outcome": outcome})
                    continue
                await packages.door_event(
                    ctx, "door.opened", package["id"], bank_id, comp, "removal", outcome, command_id
                )
                entry = await _removed(ctx, package, comp, bank, location)
                if entry is not None:
                    removed.append({**entry, "outcome": outcome})
        return {"bank_id": bank_id, "command_id": command_id, "removed": removed, "failed": failed}

    report = await retrying(finish)
    if package_id is not None and report["failed"]:
        f = report["failed"][0]
        raise DoorFailed(
            f"Door {f['door']} of bank '{bank['name']}' did not open ({f['outcome']}); the package stays "
            "expired in its locker",
            outcome=f["outcome"],
            door=f["door"],
            command_id=str(command_id),
        )
    return report


async def _expiry_words(ctx: Ctx, package_id: UUID) -> dict:
    """What the package's expire step added to its message (the counter's name and hours)."""
    for row in await ctx.scope.select(Timer.data).where(
        (Timer.package_id == package_id) & (Timer.action == ACTION) & (Timer.status == "fired")
    ):
        spec = msgspec.json.decode(row["data"])
        if spec.get("expire"):
            return dict(spec.get("data") or {})
    return {}


async def _removed(ctx: Ctx, package: dict, comp: dict, bank: dict, location: dict | None) -> dict | None:
    destination = package["destination"] or "counter"
    status = REMOVED_STATUS.get(destination, "at_counter")
    now = clock.now()
    moved = (
        await ctx.scope.update(Package, {Package.status: status, Package.compartment_id: None})
        .where((Package.id == package["id"]) & (Package.status == "expired"))
        .returning(Package.id)
    )
    if not moved:
        return None  # someone else removed it meanwhile
    others = await _others_in(ctx, comp["id"], package["id"])
    if not others:
        await ctx.scope.update(
            Compartment,
            {Compartment.status: "available", Compartment.package_id: None, Compartment.updated_at: now},
        ).where(Compartment.id == comp["id"])
    elif comp["package_id"] == package["id"]:
        # E4: the compartment stays with the packages still waiting in it.
        await ctx.scope.update(
            Compartment, {Compartment.package_id: others[0]["id"], Compartment.updated_at: now}
        ).where(Compartment.id == comp["id"])
    await custody.append(
        ctx,
        "package.removed",
        package_id=package["id"],
        bank_id=bank["id"],
        compartment_id=comp["id"],
        data={"door": comp["door"], "destination": destination, "status": status},
    )
    data = packages.message_data(ctx, package, bank, location, comp)
    data.update(await _expiry_words(ctx, package["id"]))  # counter_name, counter_hours of the expiry
    data["destination"] = destination
    await notify.queue(ctx, "package.removed", package, data)
    return {
        "package_id": package["id"],
        "tracking_id": package["tracking_id"],
        "door": comp["door"],
        "destination": destination,
        "status": status,
    }
