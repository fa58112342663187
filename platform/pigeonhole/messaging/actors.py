"""Actors: the work a broker message asks for.

Each actor is idempotent: it claims its notification with a lease before
sending and marks it sent after, so a message delivered twice, or published
again by the relay after a crash, sends at most once while the lease holds.
The tenant travels in the message (args and options) and the actor works
inside that tenant's transaction like any request.
"""

from __future__ import annotations

import logging
from uuid import UUID

import dramatiq
import msgspec

from pigeonhole import failpoints
from pigeonhole.api import Notification as Message
from pigeonhole.api import Recipient
from pigeonhole.db.tables import Notification
from pigeonhole.domain import clock, templates
from pigeonhole.domain.context import tenant_by_id, tenant_context
from pigeonhole.messaging import leases, loop
from pigeonhole.security.secrets import unseal

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


class RetryLater(Exception):
    """The channel failed in a way that may pass; dramatiq retries with backoff."""


async def deliver(tenant_id: UUID, outbox_id: UUID, notification_id: UUID) -> str:
    tenant = await tenant_by_id(tenant_id)
    if tenant is None:
        await leases.mark_outbox_done(outbox_id)
        return "no-tenant"
    async with tenant_context(tenant) as ctx:
        row = await ctx.scope.select(Notification).where(Notification.id == notification_id).first()
        if row is None or row["status"] in ("sent", "failed"):
            await leases.mark_outbox_done(outbox_id)
            return row["status"] if row else "missing"
        attempts = await leases.claim(ctx, Notification, notification_id)
        if attempts is None:
            return "busy"
        channel = next((c for c in ctx.plugins.channels() if c.name == row["channel"]), None)
        # The tenant's own wording of this event (H2), rendered below once the secrets are unsealed.
        wordings = await templates.candidates(ctx, row["event"])
    if channel is None:
        result_ok, retry, detail = False, False, f"channel '{row['channel']}' is not enabled for this tenant"
    else:
        data = msgspec.json.decode(row["data"])
        if row["sealed"]:
            data.update(msgspec.json.decode(unseal(row["sealed"]) or "{}"))
        recipient = msgspec.json.decode(row["recipient"], type=Recipient)
        subject = text = None
        wording = templates.choose(wordings, row["channel"], row["language"], recipient, tenant.settings)
        if wording is not None:
            try:
                subject, text = templates.render_for(wording, data, recipient, row["event"])
            except Exception:  # a wording that slipped past validation must not stop the message
                log.exception("tenant wording %s could not be rendered", wording["id"])
        message = Message(
            id=str(row["id"]),
            tenant=tenant.slug,
            event=row["event"],
            language=row["language"],
            recipient=recipient,
            data=data,
            subject=subject,
            text=text,
        )
        failpoints.hit("notify.before_send")
        try:
            result = await channel.send(message)
            result_ok, retry, detail = result.ok, result.retry, result.detail
        except Exception as exc:
            log.exception("channel %s failed", row["channel"])
            result_ok, retry, detail = False, True, f"{type(exc).__name__}: {exc}"
    async with tenant_context(tenant) as ctx:
        done = clock.now()
        if result_ok:
            values = {
                Notification.status: "sent",
                Notification.sent_at: done,
                Notification.sealed: None,
                Notification.last_error: None,
                Notification.lease_until: None,
            }
        elif not retry or attempts >= MAX_ATTEMPTS:
            values = {
                Notification.status: "failed",
                Notification.sealed: None,
                # H5: a code or link that was wiped cannot be resent (POST /notifications/{id}/resend)
                Notification.secrets_wiped: bool(row["sealed"]),
                Notification.last_error: detail,
                Notification.lease_until: None,
            }
        else:
            values = {
                Notification.status: "queued",
                Notification.last_error: detail,
                Notification.lease_until: None,
            }
        await ctx.scope.update(Notification, values).where(Notification.id == notification_id)
        if result_ok or not retry or attempts >= MAX_ATTEMPTS:
            await leases.mark_outbox_done(outbox_id)
    if not (result_ok or not retry or attempts >= MAX_ATTEMPTS):
        raise RetryLater(detail)
    return "sent" if result_ok else "failed"


def deliver_notification(tenant_id: str, outbox_id: str, payload: dict) -> None:
    loop.run(deliver(UUID(tenant_id), UUID(outbox_id), UUID(payload["notification_id"])))


def declare(broker: dramatiq.Broker, queue_name: str) -> None:
    dramatiq.Actor(
        deliver_notification,
        broker=broker,
        actor_name="deliver_notification",
        queue_name=queue_name,
        priority=0,
        options=leases.retry_options(MAX_ATTEMPTS),
    )
    # Event subscribers (partner webhooks, J2): their own actor, same retry rules.
    from pigeonhole.messaging import subscribers

    subscribers.declare(broker, queue_name)
