"""Reservations: a compartment held for something, from a start to an end.

Every hold on a compartment is a reservation (G4): a ``delivery`` waiting for
its package to be deposited and picked up; a ``return`` or an ``exchange``
(a drop-off, partner API J2); ``storage`` of belongings (G1-G3,
:mod:`pigeonhole.domain.storage`). A partial unique index allows one active
reservation per compartment, so even a bug in allocation cannot give one
compartment twice. An active reservation may start later (reserved ahead,
G2): the compartment is held from its creation.

Ending a reservation frees its compartment (G5) unless something may still be
inside it: see :func:`finish` and docs/decisions/0027-storage-reservations.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from pigeonhole.db.tables import Compartment, Reservation
from pigeonhole.domain import clock, custody
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import Conflict, Invalid, NotFound

KINDS = ("delivery", "return", "exchange", "storage")
STATUSES = ("active", "fulfilled", "cancelled", "expired")


async def hold(
    ctx: Ctx,
    bank_id: UUID,
    compartment_id: UUID,
    kind: str,
    package_id: UUID | None = None,
    ends_at: datetime | None = None,
    *,
    tracking_id: str | None = None,  # E3 (deposit): reserved ahead for a package not received yet
    designated_to: str | None = None,  # E3: "any" operator, or one user's / API key's id
    starts_at: datetime | None = None,  # G2 (storage): reserved ahead, held from now
    contact_id: UUID | None = None,  # G1-G4: who it is for, a person...
    department_id: UUID | None = None,  # ...or a department whose members share it (G3)
    mode: str | None = None,  # storage: fixed | flexible | open
    max_ends_at: datetime | None = None,  # flexible storage: the latest an extension may reach
) -> UUID:
    if kind not in KINDS:
        raise Invalid(f"Unknown reservation kind '{kind}' (kinds: {', '.join(KINDS)})")
    reservation_id = uuid.uuid4()
    now = clock.now()
    await ctx.scope.insert(
        Reservation,
        dict(
            id=reservation_id,
            bank_id=bank_id,
            compartment_id=compartment_id,
            package_id=package_id,
            kind=kind,
            status="active",
            starts_at=starts_at or now,
            ends_at=ends_at,
            tracking_id=tracking_id,
            designated_to=designated_to,
            created_by=ctx.actor.label,
            created_at=now,
            contact_id=contact_id,
            department_id=department_id,
            mode=mode,
            max_ends_at=max_ends_at,
            updated_at=now,
        ),
    )
    return reservation_id


async def end(ctx: Ctx, compartment_id: UUID, status: str) -> None:
    """End the compartment's active reservation as fulfilled, cancelled or expired."""
    await ctx.scope.update(
        Reservation, {Reservation.status: status, Reservation.ended_at: clock.now()}
    ).where((Reservation.compartment_id == compartment_id) & (Reservation.status == "active"))


async def set_end(ctx: Ctx, compartment_id: UUID, ends_at: datetime | None) -> None:
    await ctx.scope.update(Reservation, {Reservation.ends_at: ends_at}).where(
        (Reservation.compartment_id == compartment_id) & (Reservation.status == "active")
    )


async def for_bank(ctx: Ctx, bank_id: UUID, status: str | None = None, kind: str | None = None) -> list[dict]:
    return await list_reservations(ctx, bank_ids={bank_id}, status=status, kind=kind)


async def list_reservations(
    ctx: Ctx,
    *,
    bank_ids: set | None = None,
    status: str | None = None,
    kind: str | None = None,
    contact_id: UUID | None = None,
    department_id: UUID | None = None,
    limit: int = 500,
) -> list[dict]:
    """Newest first; ``bank_ids``: only these banks (a caller limited to some locations)."""
    query = ctx.scope.select(Reservation)
    if bank_ids is not None:
        if not bank_ids:
            return []
        query = query.where(Reservation.bank_id.is_in(list(bank_ids)))
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"Unknown reservation status '{status}' (statuses: {', '.join(STATUSES)})")
        query = query.where(Reservation.status == status)
    if kind is not None:
        if kind not in KINDS:
            raise Invalid(f"Unknown reservation kind '{kind}' (kinds: {', '.join(KINDS)})")
        query = query.where(Reservation.kind == kind)
    if contact_id is not None:
        query = query.where(Reservation.contact_id == contact_id)
    if department_id is not None:
        query = query.where(Reservation.department_id == department_id)
    return await query.order_by(Reservation.created_at, ascending=False).limit(min(max(limit, 1), 500))


async def get(ctx: Ctx, reservation_id: UUID) -> dict:
    row = await ctx.scope.select(Reservation).where(Reservation.id == reservation_id).first()
    if row is None:
        raise NotFound("Reservation", reservation_id)
    return row


async def finish(ctx: Ctx, reservation: dict, status: str, *, inside: bool, reason: str = "ended") -> str:
    """End an active reservation and release its compartment (G5); returns the compartment's new state.

    ``inside``: whether something may still be in the compartment (the caller
    knows: storage whose door was opened and not opened a last time, a
    return dropped off). Nothing inside: the compartment is ``available`` at
    once. Something inside: it is ``expired`` until staff empty it
    (``POST /storage/reservations/{id}/clear``, or the package removal route).
    A compartment in another state (out of service...) keeps it.
    """
    if status not in STATUSES or status == "active":
        raise ValueError(status)
    if reservation["status"] != "active":
        raise Conflict(f"This reservation is already {reservation['status']}")
    now = clock.now()
    ended = (
        await ctx.scope.update(
            Reservation, {Reservation.status: status, Reservation.ended_at: now, Reservation.updated_at: now}
        )
        .where((Reservation.id == reservation["id"]) & (Reservation.status == "active"))
        .returning(Reservation.id)
    )
    if not ended:
        raise Conflict("This reservation changed meanwhile; try again")
    comp = await ctx.scope.select(Compartment).where(Compartment.id == reservation["compartment_id"]).first()
    new_state = comp["status"]
    if comp["status"] in ("reserved", "occupied"):
        new_state = "expired" if inside else "available"
        values = {Compartment.status: new_state, Compartment.updated_at: now}
        if new_state == "available":
            values[Compartment.package_id] = None
        await ctx.scope.update(Compartment, values).where(Compartment.id == comp["id"])
    await custody.append(
        ctx,
        "reservation.ended",
        package_id=reservation["package_id"],
        bank_id=reservation["bank_id"],
        compartment_id=comp["id"],
        data={
            "reservation_id": str(reservation["id"]),
            "kind": reservation["kind"],
            "status": status,
            "reason": reason,
            "compartment_status": new_state,
        },
    )
    return new_state


async def end_now(ctx: Ctx, reservation: dict) -> dict:
    """Staff end a reservation that is not storage (G5): its code dies, its compartment is freed.

    A delivery whose package is in the compartment is refused: the package's
    pickup or removal ends it. A return or exchange with something dropped off
    leaves the compartment ``expired`` until staff empty it.
    """
    from pigeonhole.domain import credentials, timers

    if reservation["status"] != "active":
        raise Conflict(f"This reservation is already {reservation['status']}")
    comp = await ctx.scope.select(Compartment).where(Compartment.id == reservation["compartment_id"]).first()
    if reservation["kind"] == "delivery" and reservation["package_id"] is not None:
        if comp["package_id"] == reservation["package_id"]:
            raise Conflict(
                "A delivery reservation with its package in the locker ends with the package's pickup "
                "or removal, not here"
            )
    inside = comp["status"] == "occupied"
    status = "fulfilled" if inside else "cancelled"
    state = await finish(ctx, reservation, status, inside=inside, reason="ended by staff")
    await credentials.revoke_for_reservation(ctx, reservation["id"])
    await timers.cancel(ctx, reservation_id=reservation["id"])
    return {"reservation_id": reservation["id"], "status": status, "compartment_status": state, "door": None}


async def release_owner(ctx: Ctx, *, contact_id: UUID | None = None, department_id: UUID | None = None) -> None:
    """Before a contact or a department is deleted: refused while one of its reservations is active;
    ended ones keep their history without the link (like packages already handed over)."""
    if contact_id is not None:
        mine = Reservation.contact_id == contact_id
        what = "This contact"
    elif department_id is not None:
        mine = Reservation.department_id == department_id
        what = "This department"
    else:
        return
    active = await ctx.scope.count(Reservation).where(mine & (Reservation.status == "active"))
    if active:
        raise Conflict(
            f"{what} still has {active} active reservation{'s' if active > 1 else ''} (storage...); "
            "end them first",
            reservations=active,
        )
    values = {Reservation.contact_id: None} if contact_id is not None else {Reservation.department_id: None}
    await ctx.scope.update(Reservation, values).where(mine)
