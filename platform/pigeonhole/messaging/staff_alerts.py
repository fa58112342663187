"""Alerts to the people who must look at them: the staff rooms and the staff's mailboxes.

When an alert is raised (a forced door, a door left open, a door command whose
outcome nobody knows...), :func:`queue` writes, in the transaction that raises
it, one notification per channel: the event is ``alert.<kind>``
(``alert.door.forced``), sent to

- the tenant's staff rooms (:data:`pigeonhole.api.MAILROOM`: the Slack or Teams
  channels configured to carry alerts), once per alert;
- every active staff user whose role may see alerts (``events:read``), by the
  channels that reach them (email: the email plugin's ``alert.*`` staff texts).

The outbox makes it durable like any message: a crash after the commit does not
lose it; a channel that fails is retried on its own.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pigeonhole.api import MAILROOM, AlertView, Recipient
from pigeonhole.db.tables import Bank, Location
from pigeonhole.domain.context import Ctx
from pigeonhole.messaging import notify

log = logging.getLogger(__name__)

#: The permission of ``GET /alerts``: whoever may list alerts is told about them.
PERMISSION = "events:read"


def event_of(kind: str) -> str:
    return f"alert.{kind}"


async def staff_recipients(ctx: Ctx) -> list[Recipient]:
    """Active staff users whose role may see alerts, one per address."""
    try:
        from pigeonhole.db.tables import AppUser, Role
        from pigeonhole.domain.identity import roles
    except ImportError:  # identity not installed in this build
        return []
    allowed = [r["id"] for r in await ctx.scope.select(Role) if PERMISSION in roles.role_permissions(r)]
    if not allowed:
        return []
    people: dict[str, Recipient] = {}
    rows = await ctx.scope.select(AppUser.name, AppUser.email).where(
        (AppUser.status == "active") & AppUser.role_id.is_in(allowed)
    )
    for user in rows:
        if user["email"]:
            people.setdefault(user["email"].lower(), Recipient(name=user["name"], email=user["email"]))
    return list(people.values())


async def _place(ctx: Ctx, bank_id: uuid.UUID | None) -> dict[str, Any]:
    if bank_id is None:
        return {"bank_name": "", "location_name": "", "location_address": "", "timezone": "UTC"}
    bank = await ctx.scope.select(Bank).where(Bank.id == bank_id).first()
    location = (
        await ctx.scope.select(Location).where(Location.id == bank["location_id"]).first() if bank else None
    )
    return {
        "bank_name": bank["name"] if bank else "",
        "location_name": location["name"] if location else "",
        "location_address": location["address"] if location else "",
        "timezone": location["timezone"] if location else "UTC",
    }


async def queue(ctx: Ctx, alert: AlertView) -> list[uuid.UUID]:
    """Queue the alert for the staff rooms and staff users, in the caller's transaction."""
    from pigeonhole.domain.packages import local_iso

    place = await _place(ctx, alert.bank_id)
    data = {
        "tenant_name": ctx.tenant.name,
        "alert_id": str(alert.id),
        "kind": alert.kind,
        "message": alert.message,
        "door": alert.door,
        "package_id": str(alert.package_id) if alert.package_id else None,
        "command_id": str(alert.command_id) if alert.command_id else None,
        "raised_at": local_iso(alert.raised_at, {"timezone": place["timezone"]}),
        **place,
    }
    event = event_of(alert.kind)
    queued = await notify.queue_to(ctx, event, MAILROOM, data)
    for person in await staff_recipients(ctx):
        queued += await notify.queue_to(ctx, event, person, data)
    return queued
