"""The chain of custody: every state change appends an event in its own transaction.

Events are never updated or deleted. Plugins observe them after commit through
``pigeonhole_custody_event``; event subscribers (``pigeonhole_subscribers``,
partner webhooks) get a durable delivery written in the event's own
transaction (:mod:`pigeonhole.messaging.subscribers`).
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec

from pigeonhole.api import CustodyEvent
from pigeonhole.db.tables import Event
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.messaging import subscribers


async def append(
    ctx: Ctx,
    kind: str,
    *,
    package_id: UUID | None = None,
    bank_id: UUID | None = None,
    compartment_id: UUID | None = None,
    method: str | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> CustodyEvent:
    event = CustodyEvent(
        id=uuid.uuid4(),
        tenant=ctx.tenant.slug,
        kind=kind,
        at=clock.now(),
        actor=actor or ctx.actor.label,
        package_id=package_id,
        bank_id=bank_id,
        compartment_id=compartment_id,
        method=method,
        data=data or {},
    )
    await ctx.scope.insert(
        Event,
        dict(
            id=event.id,
            kind=kind,
            at=event.at,
            actor=event.actor,
            method=method,
            package_id=package_id,
            bank_id=bank_id,
            compartment_id=compartment_id,
            data=msgspec.json.encode(event.data).decode(),
        ),
    )
    plugins = ctx.plugins
    # Event subscribers (partner webhooks, J2): their deliveries commit with the event.
    # A tenant without any pays one cached lookup.
    wanted = subscribers.of(plugins)
    if wanted:
        await subscribers.queue(ctx, event, wanted)
    if kind == "door.closed" and package_id is not None:
        # A door closing on a return drop-off completes it (K1, G4), in this transaction.
        from pigeonhole.domain import returns

        await returns.door_closed(ctx, package_id, compartment_id)
    ctx.scope.on_commit(lambda: plugins.custody_event(event))
    return event


def as_dict(row: dict) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "at": row["at"],
        "actor": row["actor"],
        "method": row["method"],
        "package_id": row["package_id"],
        "bank_id": row["bank_id"],
        "compartment_id": row["compartment_id"],
        "data": msgspec.json.decode(row["data"]),
    }


async def for_package(ctx: Ctx, package_id: UUID) -> list[dict[str, Any]]:
    rows = await ctx.scope.select(Event).where(Event.package_id == package_id).order_by(Event.at)
    return [as_dict(r) for r in rows]
