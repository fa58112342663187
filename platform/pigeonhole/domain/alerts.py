"""Alerts: what a person must look at (a forced door, a door left open, an unknown outcome).

An alert is a row the API lists until someone acknowledges it, plus an event in
the custody chain. After commit every plugin the tenant enabled is told through
the ``pigeonhole_alert`` hook. In the same transaction the alert is queued for
the tenant's staff rooms and staff users (:mod:`pigeonhole.messaging.staff_alerts`),
so it reaches them durably through their channels.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from uuid import UUID

import msgspec

from pigeonhole.api import AlertView
from pigeonhole.db.tables import Alert
from pigeonhole.domain import clock, custody
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import Conflict, Invalid, NotFound
from pigeonhole.messaging import staff_alerts

log = logging.getLogger(__name__)

KINDS = {
    "door.forced": "a door opened without a command",
    "door.left_open": "a door stayed open past its bank's timer",
    "command.unknown_outcome": "nobody knows whether a commanded door opened",
    "command.outcome_differs": "a door did something else than the server recorded",
}


async def raise_alert(
    ctx: Ctx,
    kind: str,
    message: str,
    *,
    bank_id: UUID | None = None,
    door: int | None = None,
    compartment_id: UUID | None = None,
    package_id: UUID | None = None,
    command_id: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> dict:
    assert kind in KINDS, kind
    row = dict(
        id=uuid.uuid4(),
        kind=kind,
        bank_id=bank_id,
        door=door,
        compartment_id=compartment_id,
        package_id=package_id,
        command_id=command_id,
        message=message,
        data=msgspec.json.encode(data or {}).decode(),
        raised_at=clock.now(),
    )
    await ctx.scope.insert(Alert, row)
    await custody.append(
        ctx,
        "alert.raised",
        package_id=package_id,
        bank_id=bank_id,
        compartment_id=compartment_id,
        data={"alert_id": str(row["id"]), "kind": kind, "door": door, "message": message},
    )
    view = AlertView(
        id=row["id"],
        tenant=ctx.tenant.slug,
        kind=kind,
        message=message,
        raised_at=row["raised_at"],
        bank_id=bank_id,
        door=door,
        package_id=package_id,
        command_id=command_id,
        data=data or {},
    )
    # The staff rooms and staff mailboxes, durably (outbox rows in this transaction).
    await staff_alerts.queue(ctx, view)
    plugins = ctx.plugins
    ctx.scope.on_commit(lambda: _tell_plugins(plugins, view))
    log.warning("alert %s for tenant %s: %s", kind, ctx.tenant.slug, message)
    return row


def _tell_plugins(plugins, view: AlertView) -> None:
    try:
        plugins.hook.pigeonhole_alert(alert=view)
    except Exception:  # an observer must never break the state change
        log.exception("a plugin failed while observing alert %s", view.kind)


async def clear(ctx: Ctx, alert_id: UUID) -> None:
    """The condition ended (the door closed); the alert stays listed until acknowledged."""
    await ctx.scope.update(Alert, {Alert.cleared_at: clock.now()}).where(
        (Alert.id == alert_id) & Alert.cleared_at.is_null()
    )


def as_dict(row: dict) -> dict:
    return {**row, "data": msgspec.json.decode(row["data"]), "open": row["acknowledged_at"] is None}


async def list_alerts(
    ctx: Ctx, *, status: str | None = "open", bank_id: UUID | None = None, limit: int = 100
) -> list[dict]:
    query = ctx.scope.select(Alert).order_by(Alert.raised_at, ascending=False)
    if status == "open":
        query = query.where(Alert.acknowledged_at.is_null())
    elif status == "acknowledged":
        query = query.where(Alert.acknowledged_at.is_not_null())
    elif status not in (None, "all"):
        raise Invalid(f"Unknown alert status '{status}' (statuses: open, acknowledged, all)")
    if bank_id is not None:
        query = query.where(Alert.bank_id == bank_id)
    return [as_dict(r) for r in await query.limit(min(max(limit, 1), 500))]


async def get_alert(ctx: Ctx, alert_id: UUID) -> dict:
    row = await ctx.scope.select(Alert).where(Alert.id == alert_id).first()
    if row is None:
        raise NotFound("Alert", alert_id)
    return as_dict(row)


async def acknowledge(ctx: Ctx, alert_id: UUID, note: str = "") -> dict:
    row = await get_alert(ctx, alert_id)
    if row["acknowledged_at"] is not None:
        raise Conflict(
            f"Alert '{alert_id}' was already acknowledged by {row['acknowledged_by']} "
            f"at {row['acknowledged_at'].isoformat()}"
        )
    now = clock.now()
    await ctx.scope.update(Alert, {Alert.acknowledged_at: now, Alert.acknowledged_by: ctx.actor.label}).where(
        Alert.id == alert_id
    )
    await custody.append(
        ctx,
        "alert.acknowledged",
        package_id=row["package_id"],
        bank_id=row["bank_id"],
        compartment_id=row["compartment_id"],
        data={"alert_id": str(alert_id), "kind": row["kind"], "note": note},
    )
    return await get_alert(ctx, alert_id)
