"""Messages: the tenant's wording of each event (H2) and every message's delivery status (H5)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Response
from msgspec import Meta
from piccolo.engine.postgres import PostgresEngine

from pigeonhole.api import MessageWording
from pigeonhole.db.engine import get_engine
from pigeonhole.db.tables import Notification, Outbox, Package
from pigeonhole.domain import clock, templates
from pigeonhole.domain.context import Ctx, tenant_context
from pigeonhole.domain.errors import Conflict, DomainError, NotFound
from pigeonhole.domain.identity import audit, scopes
from pigeonhole.messaging import events, notify, relay
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require

log = logging.getLogger(__name__)

# --- wording (H2) -------------------------------------------------------------------------


class WordingIn(s.Strict):
    subject: Annotated[str, Meta(max_length=10_000)] = ""
    body: Annotated[str, Meta(max_length=100_000)] = ""


class PreviewIn(s.Strict):
    event: str
    language: str = "en"
    channel: str = templates.ANY_CHANNEL
    #: Unsaved text to try; omitted: the saved wording, else the channel's default.
    subject: str | None = None
    body: str | None = None


class WordingOut(msgspec.Struct):
    event: str
    language: str
    channel: str
    subject: str
    body: str
    #: True: the tenant's own wording; False: a channel's built-in default.
    custom: bool
    id: UUID | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


class EventWordingOut(msgspec.Struct):
    event: str
    language: str
    description: str
    audience: str
    #: The tenant's own wordings of this event and language (one per channel, '*' for every channel).
    custom: list[WordingOut]
    #: Each channel's built-in words (what a wording replaces), by channel name.
    defaults: dict[str, WordingOut]


class EventOut(msgspec.Struct):
    name: str
    description: str
    audience: str
    placeholders: dict[str, str]
    optional: list[str]
    sample: dict[str, Any]


class PreviewOut(msgspec.Struct):
    event: str
    language: str
    channel: str
    subject: str
    text: str
    #: Where the words came from: "given" (the request), "custom" (saved) or "default" (a channel's)
    source: str


def _defaults(ctx: Ctx, event: str, language: str) -> dict[str, WordingOut]:
    out = {}
    for channel in ctx.plugins.channels():
        provider = getattr(channel, "default_wording", None)
        if provider is None:
            continue
        try:
            wording = provider(event, language)
        except Exception:  # a plugin's bug shows as "no default", never a 500
            log.exception("channel %s failed to give its default wording", channel.name)
            continue
        if isinstance(wording, MessageWording):
            out[channel.name] = WordingOut(
                event=event, language=language, channel=channel.name,
                subject=wording.subject, body=wording.body, custom=False,
            )  # fmt: skip
    return out


def _wording_out(row: dict) -> WordingOut:
    return WordingOut(custom=True, **row)


class MessageTemplateController(Controller):
    path = "/api/v1/t/{tenant:str}/message-templates"
    tags = ["messages"]

    @get(
        "/",
        summary="Every event and language: the tenant's wording and each channel's default",
        description="Filters: event, language. See docs/admin/messages.md.",
    )
    async def list_templates(
        self,
        caller: NamedDependency[Caller],
        event: FromQuery[str | None] = None,
        language: FromQuery[str | None] = None,
    ) -> list[EventWordingOut]:
        require(caller, "messages:read")
        if event is not None:
            templates.check_event(event)
        if language is not None:
            templates.check_language(language)
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await templates.list_wordings(ctx, event)
            out = []
            for name, found in events.EVENTS.items():
                if event is not None and name != event:
                    continue
                for lang in events.LANGUAGES:
                    if language is not None and lang != language:
                        continue
                    out.append(
                        EventWordingOut(
                            event=name,
                            language=lang,
                            description=found.description,
                            audience=found.audience,
                            custom=[
                                _wording_out(r) for r in rows if r["event"] == name and r["language"] == lang
                            ],
                            defaults=_defaults(ctx, name, lang),
                        )
                    )
            return out

    @get("/events", summary="The message events, their placeholders and sample data")
    async def list_events(self, caller: NamedDependency[Caller]) -> list[EventOut]:
        require(caller, "messages:read")
        return [
            EventOut(
                name=e.name,
                description=e.description,
                audience=e.audience,
                placeholders=e.placeholders(),
                optional=sorted(e.optional),
                sample={k: v for k, v in e.sample.items()},
            )
            for e in events.EVENTS.values()
        ]

    @get(
        "/{event:str}/{language:str}",
        summary="The wording used for an event, language and channel: the tenant's, else the default",
    )
    async def get_template(
        self,
        caller: NamedDependency[Caller],
        event: FromPath[str],
        language: FromPath[str],
        channel: FromQuery[str] = templates.ANY_CHANNEL,
    ) -> WordingOut:
        require(caller, "messages:read")
        templates.check_event(event)
        templates.check_language(language)
        templates.check_channel(None, channel)
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            row = await templates.find(ctx, event, language, channel)
            if row is not None:
                return _wording_out(row)
            defaults = _defaults(ctx, event, language)
        default = defaults.get(channel) or (next(iter(defaults.values()), None) if channel == "*" else None)
        if default is None:
            raise NotFound("Message template", f"{event}/{language}/{channel}")
        return default

    @put(
        "/{event:str}/{language:str}",
        summary="Create or replace the tenant's wording of an event (channel: '*' or a channel's name)",
        description="Placeholders: $name or ${name}, from GET /message-templates/events; "
        "an unknown one, event, language or channel, or a text too long: 400, nothing saved.",
    )
    async def put_template(
        self,
        caller: NamedDependency[Caller],
        event: FromPath[str],
        language: FromPath[str],
        data: JSONBody[WordingIn],
        channel: FromQuery[str] = templates.ANY_CHANNEL,
    ) -> Response[WordingOut]:
        require(caller, "messages:write")
        scopes.require_whole_tenant(caller, "change the wording of messages")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row, created = await templates.put(ctx, event, language, channel, data.subject, data.body)
        return Response(_wording_out(row), status_code=201 if created else 200)

    @delete(
        "/{event:str}/{language:str}",
        summary="Delete the tenant's wording: the channel's default applies again",
        status_code=204,
    )
    async def delete_template(
        self,
        caller: NamedDependency[Caller],
        event: FromPath[str],
        language: FromPath[str],
        channel: FromQuery[str] = templates.ANY_CHANNEL,
    ) -> None:
        require(caller, "messages:write")
        scopes.require_whole_tenant(caller, "change the wording of messages")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await templates.delete(ctx, event, language, channel)

    @post(
        "/preview",
        summary="Render a wording (given, saved or default) with the event's sample data",
        status_code=200,
    )
    async def preview(self, caller: NamedDependency[Caller], data: JSONBody[PreviewIn]) -> PreviewOut:
        require(caller, "messages:read")
        found = templates.check_event(data.event)
        templates.check_language(data.language)
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            templates.check_channel(ctx, data.channel)
            if data.subject is not None or data.body is not None:
                subject, body, source = data.subject or "", data.body or "", "given"
                templates.validate(ctx, data.event, data.language, data.channel, subject, body)
            else:
                row = await templates.find(ctx, data.event, data.language, data.channel)
                if row is not None:
                    subject, body, source = row["subject"], row["body"], "custom"
                else:
                    defaults = _defaults(ctx, data.event, data.language)
                    default = defaults.get(data.channel) or next(iter(defaults.values()), None)
                    if default is None:
                        raise NotFound("Message template", f"{data.event}/{data.language}/{data.channel}")
                    subject, body, source = default.subject, default.body, "default"
        from pigeonhole.api import Recipient

        recipient = Recipient(name="Ada Lovelace", email="ada@example.test", language=data.language)
        values = templates.values(dict(found.sample), recipient, data.event, data.language)
        subject_text, text = templates.render(subject, body, values)
        return PreviewOut(
            event=data.event, language=data.language, channel=data.channel,
            subject=subject_text, text=text, source=source,
        )  # fmt: skip


# --- delivery status (H5) -----------------------------------------------------------------

STATUSES = ("queued", "sending", "sent", "failed")


class NotificationStatusOut(msgspec.Struct):
    id: UUID
    package_id: UUID | None
    event: str
    channel: str
    recipient: dict[str, Any]
    language: str
    #: queued, sending, sent or failed
    status: str
    attempts: int
    #: Why the last attempt failed (the reason of a failed message)
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    #: The message this one sends again (POST .../resend), if any
    resend_of: UUID | None
    #: A failed message whose code or link was wiped: it cannot be sent again
    secrets_wiped: bool


def _status_out(row: dict) -> NotificationStatusOut:
    out = notify.as_dict(row)
    out["resend_of"] = row.get("resend_of")
    out["secrets_wiped"] = bool(row.get("secrets_wiped"))
    return msgspec.convert(out, NotificationStatusOut)


async def _visible_query(ctx: Ctx, query):
    """Limit to what the caller may see: a scoped caller sees messages about packages of its banks."""
    banks = await scopes.allowed_banks(ctx)
    if banks is None:
        return query
    if not banks:
        return None
    inside = ctx.scope.select(Package.id).where(Package.bank_id.is_in(list(banks)))
    return query.where(Notification.package_id.is_in(inside))


async def _get_visible(ctx: Ctx, notification_id: UUID) -> dict:
    query = await _visible_query(
        ctx, ctx.scope.select(Notification).where(Notification.id == notification_id)
    )
    row = await query.first() if query is not None else None
    if row is None:
        raise NotFound("Notification", notification_id)
    return row


class NotificationController(Controller):
    path = "/api/v1/t/{tenant:str}/notifications"
    tags = ["messages"]

    @get(
        "/",
        summary="Every message's delivery status, newest first",
        description="Filters: status (queued, sending, sent, failed), channel, event, package_id, "
        "recipient (part of a name, address or phone), since/until (ISO 8601, when queued); "
        "limit (1-500) and offset page through them.",
    )
    async def list_notifications(
        self,
        caller: NamedDependency[Caller],
        status: FromQuery[str | None] = None,
        channel: FromQuery[str | None] = None,
        event: FromQuery[str | None] = None,
        package_id: FromQuery[UUID | None] = None,
        recipient: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
    ) -> list[NotificationStatusOut]:
        require(caller, "packages:read")
        if status is not None and status not in STATUSES:
            raise DomainError(f"status must be one of {', '.join(STATUSES)} (got '{status}')")
        if not 1 <= limit <= 500:
            raise DomainError("limit must be between 1 and 500")
        if offset < 0:
            raise DomainError("offset must not be negative")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            query = ctx.scope.select(Notification)
            if status:
                query = query.where(Notification.status == status)
            if channel:
                query = query.where(Notification.channel == channel)
            if event:
                if event.endswith(("*", ".")):
                    query = query.where(Notification.event.like(event.rstrip("*") + "%"))
                else:
                    query = query.where(Notification.event == event)
            if package_id is not None:
                query = query.where(Notification.package_id == package_id)
            if recipient:
                needle = recipient.replace("\\", "").replace("%", "").replace("_", "")
                column = Notification.recipient
                # SQLite's LIKE already ignores ASCII case (and has no ILIKE).
                matches = column.ilike if isinstance(get_engine(), PostgresEngine) else column.like
                query = query.where(matches(f"%{needle}%"))
            if since is not None:
                query = query.where(Notification.created_at >= since)
            if until is not None:
                query = query.where(Notification.created_at < until)
            query = await _visible_query(ctx, query)
            if query is None:
                return []
            rows = (
                await query.order_by(Notification.created_at, ascending=False)
                .order_by(Notification.id)
                .limit(limit)
                .offset(offset)
            )
            return [_status_out(r) for r in rows]

    @get("/{notification_id:uuid}", summary="One message's delivery status")
    async def get_notification(
        self, caller: NamedDependency[Caller], notification_id: FromPath[UUID]
    ) -> NotificationStatusOut:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return _status_out(await _get_visible(ctx, notification_id))

    @post(
        "/{notification_id:uuid}/resend",
        summary="Send a failed message again: a new message, queued through the outbox",
        description="Only a failed message; one whose pickup code or link was wiped cannot be sent "
        "again (409): replace the code instead, which sends a new message.",
        status_code=201,
    )
    async def resend(
        self, caller: NamedDependency[Caller], notification_id: FromPath[UUID]
    ) -> NotificationStatusOut:
        require(caller, "packages:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await _get_visible(ctx, notification_id)
            if row["package_id"] is None:
                scopes.require_whole_tenant(caller, "send a message about no package again")
            if row["status"] != "failed":
                raise Conflict(f"Only a failed message can be sent again; this one is {row['status']}")
            if row["secrets_wiped"]:
                if row["event"].startswith("account."):
                    hint = "send the person a new link instead (a new welcome or password reset)"
                else:
                    hint = (
                        "replace the pickup code instead (a code replacement sends a new message "
                        "with a new code; the old one stops working)"
                    )
                raise Conflict(
                    "This message carried a code or link that was wiped when it failed, so it cannot "
                    f"be sent again: {hint}"
                )
            again = (
                await ctx.scope.select(Notification.id)
                .where(Notification.resend_of == notification_id)
                .first()
            )
            if again is not None:
                raise Conflict(
                    f"This message was already sent again as notification {again['id']}; "
                    "follow (or resend) that one"
                )
            if not any(c.name == row["channel"] for c in ctx.plugins.channels()):
                raise Conflict(f"The channel '{row['channel']}' is no longer enabled for this tenant")
            now = clock.now()
            new_id = uuid.uuid4()
            await ctx.scope.insert(
                Notification,
                dict(
                    id=new_id,
                    package_id=row["package_id"],
                    event=row["event"],
                    channel=row["channel"],
                    recipient=row["recipient"],
                    language=row["language"],
                    data=row["data"],
                    sealed=None,
                    status="queued",
                    created_at=now,
                    resend_of=notification_id,
                ),
            )
            await Outbox.insert(
                Outbox(
                    id=uuid.uuid4(),
                    tenant_id=ctx.tenant_id,
                    actor=notify.DELIVER,
                    payload=msgspec.json.encode({"notification_id": str(new_id)}).decode(),
                    created_at=now,
                )
            )
            await audit.record(
                ctx,
                "notification.resent",
                target_type="notification",
                target_id=notification_id,
                data={"new_id": str(new_id), "event": row["event"], "channel": row["channel"]},
            )
            ctx.scope.on_commit(relay.nudge)
            fresh = await ctx.scope.select(Notification).where(Notification.id == new_id).first()
            return _status_out(fresh)


CONTROLLERS = [MessageTemplateController, NotificationController]
