"""Queue notifications inside the domain transaction.

One ``notification`` row per channel that can reach the recipient, plus one
outbox row each, written in the same transaction as the state change: if the
change commits, the message will be sent; if it rolls back, nothing leaves.
Each channel's row is its own (its status, attempts, last error), so one
failing channel never holds another back. Secrets the message must carry (a
pickup code) are sealed in ``sealed`` and wiped once the message is sent.

A channel gets a row only when the tenant configured it to carry the event
(``Channel.wants``), the recipient did not leave it out of their choice
(``Recipient.channels``) and it can reach them (``Channel.reaches``). Shared
rooms (Slack, Teams) are not people: package events also go, once, to
:data:`pigeonhole.api.MAILROOM`, without the code or QR token. See
docs/decisions/0030-channels-and-rooms.md.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec

from pigeonhole.api import MAILROOM, ROOM_SECRETS, Channel, Recipient, is_mailroom
from pigeonhole.db.tables import Contact, Notification, Outbox
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.messaging import relay
from pigeonhole.security.secrets import seal

log = logging.getLogger(__name__)

DELIVER = "deliver_notification"


def recipient_of(package: dict) -> Recipient:
    return Recipient(
        name=package["recipient_name"],
        email=package["recipient_email"],
        phone=package["recipient_phone"],
        language=package["recipient_language"] or "en",
    )


#: Messages a workflow's ``notify_events`` cannot switch off: the person asked for them
#: (a replaced code) or could not find the package without them (it waits at the counter).
ALWAYS_SENT = frozenset({"package.code_replaced", "package.at_counter"})


async def queue(
    ctx: Ctx,
    event: str,
    package: dict,
    data: dict[str, Any],
    secrets: dict[str, str] | None = None,
) -> list[uuid.UUID]:
    """Tell the package's recipient, and the staff rooms that carry ``event``."""
    workflow = ctx.plugins.workflow()
    if workflow is not None and event not in workflow.notify_events() and event not in ALWAYS_SENT:
        return []
    recipient = await _with_choice(ctx, recipient_of(package), package.get("recipient_contact_id"))
    queued = await queue_to(ctx, event, recipient, data, secrets=secrets, package_id=package["id"])
    if not queued and recipient.channels is not None:
        # None of the chosen channels can reach them (SMS chosen, no phone, or not enabled):
        # a package must not wait in silence, so every channel that reaches them is used.
        everyone = msgspec.structs.replace(recipient, channels=None)
        queued = await queue_to(ctx, event, everyone, data, secrets=secrets, package_id=package["id"])
    queued += await queue_to(
        ctx, event, MAILROOM, {**data, "recipient_name": recipient.name}, package_id=package["id"]
    )
    return queued


async def _with_choice(ctx: Ctx, recipient: Recipient, contact_id: uuid.UUID | None) -> Recipient:
    """The recipient with the channels they chose in the directory (``contact.notify_channels``)."""
    if contact_id is None or recipient.channels is not None:
        return recipient
    row = await ctx.scope.select(Contact.notify_channels).where(Contact.id == contact_id).first()
    if not row or not row["notify_channels"]:
        return recipient
    return msgspec.structs.replace(recipient, channels=tuple(msgspec.json.decode(row["notify_channels"])))


def _takes(channel: Channel, event: str, recipient: Recipient) -> bool:
    """Whether ``channel`` gets a row: the tenant wants it, the person chose it, it reaches them."""
    if recipient.channels is not None and channel.name not in recipient.channels:
        return False
    try:
        return bool(channel.wants(event)) and bool(channel.reaches(recipient))
    except Exception:  # a plugin's bug must not undo the state change
        log.exception("channel %s failed to answer wants/reaches for %s", channel.name, event)
        return False


async def queue_to(
    ctx: Ctx,
    event: str,
    recipient: Recipient,
    data: dict[str, Any],
    *,
    secrets: dict[str, str] | None = None,
    package_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Queue one message on every channel that takes it, in the caller's transaction.

    A channel takes it when it ``wants`` the event, is among ``recipient.channels``
    (when the person chose) and ``reaches`` the recipient. Secrets (codes,
    links) are sealed until the message is sent; the outbox row makes delivery
    survive a crash after commit. For the staff room (:data:`MAILROOM`) secrets
    are never stored: a room is shared.
    """
    if is_mailroom(recipient):
        data = {k: v for k, v in data.items() if k not in ROOM_SECRETS}
        secrets = None
    now = clock.now()
    queued = []
    for channel in ctx.plugins.channels():
        if not _takes(channel, event, recipient):
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
