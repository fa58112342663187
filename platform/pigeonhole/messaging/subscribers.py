"""Durable deliveries of custody events to event subscribers (partner webhooks, J2).

When :func:`pigeonhole.domain.custody.append` writes an event, :func:`queue`
writes, in the same transaction, one ``subscriber_delivery`` row per
subscriber of the tenant that wants the event's kind, plus an outbox row each:
if the state change commits, the partner will hear of it; if it rolls back,
nothing leaves. The row keeps a snapshot of the event and of its package as
they were then, so a retry an hour later sends the same thing.

The actor (:func:`deliver`) is idempotent like the notifications' one: it
claims the row with a lease, calls the subscriber outside any transaction, and
records the outcome (status, attempts, last error, the partner's response
code). A failure that may pass is raised again so dramatiq retries with
exponential backoff; one the subscriber says retrying cannot help is final.

A tenant without subscribers pays one cached lookup per event.
"""

from __future__ import annotations

import logging
import uuid
from uuid import UUID

import dramatiq
import msgspec

from pigeonhole.api import CustodyEvent, EventSubscriber, PackageView
from pigeonhole.db.tables import Outbox, Package, SubscriberDelivery
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx, tenant_by_id, tenant_context
from pigeonhole.domain.errors import Invalid
from pigeonhole.messaging import leases, loop, relay

log = logging.getLogger(__name__)

ACTOR = "deliver_to_subscriber"
MAX_ATTEMPTS = 8
STATUSES = ("queued", "sending", "sent", "failed")

_CACHE_ATTR = "_pigeonhole_subscribers"


class RetryLater(Exception):
    """The subscriber failed in a way that may pass; dramatiq retries with backoff."""


def of(plugins) -> list[EventSubscriber]:
    """The tenant's subscribers, computed once per plugin configuration (cached on it)."""
    found = getattr(plugins, _CACHE_ATTR, None)
    if found is None:
        found = []
        try:
            for contributed in plugins.hook.pigeonhole_subscribers():
                found.extend(contributed or ())
        except Exception:  # a broken plugin must not break every state change
            log.exception("a plugin failed to contribute event subscribers")
        try:
            setattr(plugins, _CACHE_ATTR, found)
        except AttributeError:  # pragma: no cover - a plugins object that takes no attributes
            pass
    return found


def _package_view(row: dict) -> PackageView:
    from pigeonhole.domain import packages

    return packages.view(row)


async def queue(ctx: Ctx, event: CustodyEvent, subscribers: list[EventSubscriber]) -> int:
    """Write the deliveries of ``event`` for the subscribers that want it, in the caller's transaction."""
    wanted = []
    for subscriber in subscribers:
        try:
            if subscriber.wants(event.kind):
                wanted.append(subscriber)
        except Exception:
            log.exception("subscriber %s failed to say whether it wants %s", subscriber.name, event.kind)
    if not wanted:
        return 0
    package = None
    if event.package_id is not None:
        row = await ctx.scope.select(Package).where(Package.id == event.package_id).first()
        package = _package_view(row) if row else None
    payload = msgspec.json.encode({"event": event, "package": package}).decode()
    now = clock.now()
    for subscriber in wanted:
        delivery_id = uuid.uuid4()
        await ctx.scope.insert(
            SubscriberDelivery,
            dict(
                id=delivery_id,
                subscriber=subscriber.name,
                event_id=event.id,
                event_kind=event.kind,
                package_id=event.package_id,
                payload=payload,
                status="queued",
                created_at=now,
            ),
        )
        await Outbox.insert(
            Outbox(
                id=uuid.uuid4(),
                tenant_id=ctx.tenant_id,
                actor=ACTOR,
                payload=msgspec.json.encode({"delivery_id": str(delivery_id)}).decode(),
                created_at=now,
            )
        )
    ctx.scope.on_commit(relay.nudge)
    return len(wanted)


class _Snapshot(msgspec.Struct):
    event: CustodyEvent
    package: PackageView | None = None


async def deliver(tenant_id: UUID, outbox_id: UUID, delivery_id: UUID) -> str:
    tenant = await tenant_by_id(tenant_id)
    if tenant is None:
        await leases.mark_outbox_done(outbox_id)
        return "no-tenant"
    async with tenant_context(tenant) as ctx:
        row = await ctx.scope.select(SubscriberDelivery).where(SubscriberDelivery.id == delivery_id).first()
        if row is None or row["status"] in ("sent", "failed"):
            await leases.mark_outbox_done(outbox_id)
            return row["status"] if row else "missing"
        attempts = await leases.claim(ctx, SubscriberDelivery, delivery_id)
        if attempts is None:
            return "busy"
        subscriber = next((s for s in of(ctx.plugins) if s.name == row["subscriber"]), None)
    code = None
    if subscriber is None:
        ok, retry, detail = False, False, f"subscriber '{row['subscriber']}' is not enabled for this tenant"
    else:
        snapshot = msgspec.json.decode(row["payload"], type=_Snapshot)
        try:
            result = await subscriber.deliver(snapshot.event, snapshot.package)
            ok, retry, detail = result.ok, result.retry, result.detail
            code = getattr(result, "response_code", None)
        except Exception as exc:
            log.exception("subscriber %s failed", row["subscriber"])
            ok, retry, detail = False, True, f"{type(exc).__name__}: {exc}"
    final = ok or not retry or attempts >= MAX_ATTEMPTS
    async with tenant_context(tenant) as ctx:
        values = {
            SubscriberDelivery.lease_until: None,
            SubscriberDelivery.response_code: code,
            SubscriberDelivery.last_error: None if ok else (detail or "failed"),
        }
        if ok:
            values[SubscriberDelivery.status] = "sent"
            values[SubscriberDelivery.sent_at] = clock.now()
        else:
            values[SubscriberDelivery.status] = "failed" if final else "queued"
        await ctx.scope.update(SubscriberDelivery, values).where(SubscriberDelivery.id == delivery_id)
        if final:
            await leases.mark_outbox_done(outbox_id)
    if not final:
        raise RetryLater(detail)
    return "sent" if ok else "failed"


def deliver_to_subscriber(tenant_id: str, outbox_id: str, payload: dict) -> None:
    loop.run(deliver(UUID(tenant_id), UUID(outbox_id), UUID(payload["delivery_id"])))


def declare(broker: dramatiq.Broker, queue_name: str) -> None:
    """Called from :func:`pigeonhole.messaging.actors.declare`; backoff as the notifications'."""
    dramatiq.Actor(
        deliver_to_subscriber,
        broker=broker,
        actor_name=ACTOR,
        queue_name=queue_name,
        priority=10,
        options=leases.retry_options(MAX_ATTEMPTS),
    )


# --- the API's view ---------------------------------------------------------------------


def as_dict(row: dict) -> dict:
    return {
        "id": row["id"],
        "subscriber": row["subscriber"],
        "event_id": row["event_id"],
        "event_kind": row["event_kind"],
        "package_id": row["package_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "response_code": row["response_code"],
        "created_at": row["created_at"],
        "sent_at": row["sent_at"],
    }


async def list_deliveries(
    ctx: Ctx,
    *,
    status: str | None = None,
    subscriber: str | None = None,
    package_id: UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict]:
    query = ctx.scope.select(SubscriberDelivery).order_by(SubscriberDelivery.created_at, ascending=False)
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"Unknown delivery status '{status}' (statuses: {', '.join(STATUSES)})")
        query = query.where(SubscriberDelivery.status == status)
    if subscriber is not None:
        query = query.where(SubscriberDelivery.subscriber == subscriber)
    if package_id is not None:
        query = query.where(SubscriberDelivery.package_id == package_id)
    rows = await query.limit(min(max(limit, 1), 500)).offset(max(offset, 0))
    return [as_dict(r) for r in rows]
