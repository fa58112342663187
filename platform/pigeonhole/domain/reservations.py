"""Reservations: a compartment held for something, from a start to an end.

Every hold on a compartment is a reservation: a delivery waiting for its
package to be deposited and picked up now; returns, exchanges and storage
later (G1-G4). A partial unique index allows one active reservation per
compartment, so even a bug in allocation cannot give one compartment twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from pigeonhole.db.tables import Reservation
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import Invalid

KINDS = ("delivery",)
STATUSES = ("active", "fulfilled", "cancelled", "expired")


async def hold(
    ctx: Ctx,
    bank_id: UUID,
    compartment_id: UUID,
    kind: str,
    package_id: UUID | None = None,
    ends_at: datetime | None = None,
) -> UUID:
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
            starts_at=now,
            ends_at=ends_at,
            created_by=ctx.actor.label,
            created_at=now,
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


async def for_bank(ctx: Ctx, bank_id: UUID, status: str | None = None) -> list[dict]:
    query = ctx.scope.select(Reservation).where(Reservation.bank_id == bank_id)
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"Unknown reservation status '{status}' (statuses: {', '.join(STATUSES)})")
        query = query.where(Reservation.status == status)
    return await query.order_by(Reservation.created_at, ascending=False).limit(500)
