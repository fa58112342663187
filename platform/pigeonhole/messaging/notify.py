"""Queue notifications inside the domain transaction.

One ``notification`` row per channel that can reach the recipient, plus one
outbox row each, written in the same transaction as the state change: if the
change commits, the message will be sent; if it rolls back, nothing leaves.
Secrets the message must carry (a pickup code) are sealed in ``sealed`` and
wiped once the message is sent.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from pigeonhole.api import Recipient
from pigeonhole.db.tables import Notification, Outbox
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.messaging import relay
from pigeonhole.security.secrets import seal

DELIVER = "deliver_notification"


def recipient_of(package: dict) -> Recipient:
    return Recipient(
        name=package["recipient_name"],
        email=package["recipient_email"],
        phone=package["recipient_phone"],
        language=package["recipient_language"] or "en",
    )


async def queue(
    ctx: Ctx,
    event: str,
    package: dict,
    data: dict[str, Any],
    secrets: dict[str, str] | None = None,
) -> list[uuid.UUID]:
    workflow = ctx.plugins.workflow()
    if workflow is not None and event not in workflow.notify_events():
        return []
    return await queue_to(ctx, event, recipient_of(package), data, secrets=secrets, package_id=package["id"])


async def queue_to(
    ctx: Ctx,
    event: str,
    recipient: Recipient,
    data: dict[str, Any],
    *,
    secrets: dict[str, str] | None = None,
    package_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Queue one message on every channel that reaches the recipient, in the caller's transaction.

    Secrets (codes, links) are sealed until the message is sent; the outbox row
    makes delivery survive a crash after commit.
    """
    now = clock.now()
    queued = []
    for channel in ctx.plugins.channels():
        if not channel.reaches(recipient):
            continue
        notification_id = uuid.uuid4()
        await ctx.scope.insert(
            Notification,
            dict(
                id=notification_id,
                package_id=package_id,
                event=event,
                channel=channel.name,
                recipient=msgspec.json.encode(recipient).decode(),
                language=recipient.language,
                data=msgspec.json.encode(data).decode(),
                sealed=seal(msgspec.json.encode(secrets).decode()) if secrets else None,
                status="queued",
                created_at=now,
            ),
        )
        await Outbox.insert(
            Outbox(
                id=uuid.uuid4(),
                tenant_id=ctx.tenant_id,
                actor=DELIVER,
                payload=msgspec.json.encode({"notification_id": str(notification_id)}).decode(),
                created_at=now,
            )
        )
        queued.append(notification_id)
    if queued:
        ctx.scope.on_commit(relay.nudge)
    return queued


def as_dict(row: dict) -> dict:
    return {
        "id": row["id"],
        "package_id": row["package_id"],
        "event": row["event"],
        "channel": row["channel"],
        "recipient": msgspec.json.decode(row["recipient"]),
        "language": row["language"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "created_at": row["created_at"],
        "sent_at": row["sent_at"],
    }


async def for_package(ctx: Ctx, package_id: uuid.UUID) -> list[dict]:
    rows = (
        await ctx.scope.select(Notification)
        .where(Notification.package_id == package_id)
        .order_by(Notification.created_at)
    )
    return [as_dict(r) for r in rows]
