"""A tenant's own wording of its messages (H2).

An administrator writes a subject and a body for one event (see
:mod:`pigeonhole.messaging.events`), one language (en, fr) and one channel
(``*``: every channel, or a channel's name). Placeholders are
``string.Template``'s: ``$tracking_id`` or ``${tracking_id}``; ``$$`` is a
dollar sign. Nothing else is evaluated, so a wording cannot run code or reach
anything but the message's own values. A placeholder that is not a value of the
event is refused when the wording is saved, not when the first parcel arrives.

The body is paragraphs separated by blank lines. A paragraph naming a value
the message does not carry (no deadline, no QR token) is left out rather than
printed with a hole, the rule of the built-in email texts.

At send time (messaging/actors.deliver) the host picks the most specific
wording: the message's language, else the tenant's ``default_language``, else
English; within a language a wording for the message's channel before one for
``*``. Shared rooms (Slack, Teams: ``pigeonhole.api.MAILROOM``) get only a
wording written for their channel. No wording: the channel's own words.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from string import Template
from typing import Any

from pigeonhole.api import Recipient, is_mailroom
from pigeonhole.db.tables import MessageTemplate
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import DomainError, NotFound
from pigeonhole.domain.identity import audit
from pigeonhole.messaging import events

ANY_CHANNEL = "*"
MAX_SUBJECT = 200
MAX_BODY = 5000
_CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


class BadTemplate(DomainError):
    """A wording that cannot be saved: the sentence names what is wrong. Nothing is saved."""

    status_code = 400


# --- validation -----------------------------------------------------------------------


def check_event(event: str) -> events.MessageEvent:
    found = events.get(event)
    if found is None:
        raise BadTemplate(f"Unknown event '{event}': see GET /message-templates/events for the list")
    return found


def check_language(language: str) -> str:
    if language not in events.LANGUAGES:
        raise BadTemplate(f"Unknown language '{language}': one of {', '.join(events.LANGUAGES)}")
    return language


def check_channel(ctx: Ctx | None, channel: str) -> str:
    if channel == ANY_CHANNEL:
        return channel
    if not _CHANNEL_NAME.fullmatch(channel or ""):
        raise BadTemplate(f"Unknown channel '{channel}': '*' (every channel) or a channel's name")
    if ctx is not None:
        names = sorted(c.name for c in ctx.plugins.channels())
        if channel not in names:
            raise BadTemplate(
                f"Unknown channel '{channel}': this tenant's channels are {', '.join(names) or 'none'}, "
                "or '*' for every channel"
            )
    return channel


def check_text(event: events.MessageEvent, field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise BadTemplate(f"The {field} is too long: {len(text)} characters, at most {limit}")
    template = Template(text)
    if not template.is_valid():
        bad = _bad_dollar(text)
        raise BadTemplate(
            f"The {field} has a '$' that starts no placeholder near {bad!r}: "
            "write $name or ${name}, and $$ for a dollar sign"
        )
    allowed = event.placeholders()
    unknown = [name for name in template.get_identifiers() if name not in allowed]
    if unknown:
        raise BadTemplate(
            f"Unknown placeholder ${unknown[0]} in the {field} for {event.name}: "
            f"the placeholders are {', '.join('$' + k for k in sorted(allowed))}"
        )


def _bad_dollar(text: str) -> str:
    for match in Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            start = match.start("invalid")
            return text[max(0, start - 10) : start + 15]
    return text[:25]


def validate(ctx: Ctx | None, event: str, language: str, channel: str, subject: str, body: str):
    found = check_event(event)
    check_language(language)
    check_channel(ctx, channel)
    if not body.strip():
        raise BadTemplate("The body is empty: write the message, or DELETE the wording to use the default")
    if "\n" in subject or "\r" in subject:
        raise BadTemplate("The subject must be one line")
    check_text(found, "subject", subject, MAX_SUBJECT)
    check_text(found, "body", body, MAX_BODY)
    return found


# --- storage ----------------------------------------------------------------------------


def _out(row: dict) -> dict:
    return {
        "id": row["id"],
        "event": row["event"],
        "language": row["language"],
        "channel": row["channel"],
        "subject": row["subject"],
        "body": row["body"],
        "updated_by": row["updated_by"],
        "updated_at": row["updated_at"],
    }


async def list_wordings(ctx: Ctx, event: str | None = None) -> list[dict]:
    query = ctx.scope.select(MessageTemplate)
    if event is not None:
        query = query.where(MessageTemplate.event == event)
    rows = await query.order_by(MessageTemplate.event).order_by(MessageTemplate.language)
    return [_out(r) for r in rows]


async def find(ctx: Ctx, event: str, language: str, channel: str) -> dict | None:
    row = (
        await ctx.scope.select(MessageTemplate)
        .where(
            (MessageTemplate.event == event)
            & (MessageTemplate.language == language)
            & (MessageTemplate.channel == channel)
        )
        .first()
    )
    return _out(row) if row else None


async def put(
    ctx: Ctx, event: str, language: str, channel: str, subject: str, body: str
) -> tuple[dict, bool]:
    """Create or replace the wording; returns it and whether it is new. Audited."""
    validate(ctx, event, language, channel, subject, body)
    now = clock.now()
    existing = await find(ctx, event, language, channel)
    values = {"subject": subject, "body": body, "updated_by": ctx.actor.label, "updated_at": now}
    if existing is None:
        row_id = uuid.uuid4()
        await ctx.scope.insert(
            MessageTemplate, dict(id=row_id, event=event, language=language, channel=channel, **values)
        )
    else:
        row_id = existing["id"]
        await ctx.scope.update(
            MessageTemplate,
            {
                MessageTemplate.subject: subject,
                MessageTemplate.body: body,
                MessageTemplate.updated_by: ctx.actor.label,
                MessageTemplate.updated_at: now,
            },
        ).where(MessageTemplate.id == row_id)
    await audit.record(
        ctx,
        "message_template.created" if existing is None else "message_template.changed",
        target_type="message_template",
        target_id=f"{event}/{language}/{channel}",
        data={
            "event": event,
            "language": language,
            "channel": channel,
            "subject": subject,
            "body": body,
            **({"previous": {"subject": existing["subject"], "body": existing["body"]}} if existing else {}),
        },
    )
    return await find(ctx, event, language, channel), existing is None


async def delete(ctx: Ctx, event: str, language: str, channel: str) -> None:
    check_event(event)
    check_language(language)
    check_channel(None, channel)
    existing = await find(ctx, event, language, channel)
    if existing is None:
        raise NotFound("Message template", f"{event}/{language}/{channel}")
    await ctx.scope.delete(MessageTemplate).where(MessageTemplate.id == existing["id"])
    await audit.record(
        ctx,
        "message_template.deleted",
        target_type="message_template",
        target_id=f"{event}/{language}/{channel}",
        data={
            "event": event,
            "language": language,
            "channel": channel,
            "previous": {"subject": existing["subject"], "body": existing["body"]},
        },
    )


# --- choosing and rendering at send time ------------------------------------------------


def primary_language(value: str | None) -> str:
    return (value or "").replace("_", "-").split("-")[0].lower()


def languages_for(message_language: str | None, tenant_settings: dict | None) -> list[str]:
    """The languages to look for, in order: the message's, the tenant's default, English."""
    out: list[str] = []
    for candidate in (
        primary_language(message_language),
        primary_language((tenant_settings or {}).get("default_language")),
        "en",
    ):
        if candidate in events.LANGUAGES and candidate not in out:
            out.append(candidate)
    return out


async def candidates(ctx: Ctx, event: str) -> list[dict]:
    """Every wording the tenant has for ``event`` (read in the send's first transaction)."""
    rows = await ctx.scope.select(MessageTemplate).where(MessageTemplate.event == event)
    return [_out(r) for r in rows]


def choose(
    rows: list[dict], channel: str, language: str | None, recipient: Recipient, tenant_settings: dict | None
) -> dict | None:
    """The most specific wording: language first (message, tenant default, en), then channel before '*'."""
    by_key = {(r["language"], r["channel"]): r for r in rows}
    channels = [channel] if is_mailroom(recipient) else [channel, ANY_CHANNEL]
    for lang in languages_for(language, tenant_settings):
        for ch in channels:
            if (lang, ch) in by_key:
                return by_key[(lang, ch)]
    return None


def values(data: dict[str, Any], recipient: Recipient, event: str, language: str) -> dict[str, str]:
    """The strings a wording's placeholders stand for: the data and the derived values."""
    out = {k: _text(v, language) for k, v in data.items()}
    out["name"] = recipient.name
    out["event"] = event
    out.setdefault("recipient_name", recipient.name)
    out["place"] = ", ".join(str(data[k]) for k in ("location_name", "location_address") if data.get(k))
    for key, value in data.items():
        if key.endswith("_at") and key[:-3] not in data:
            out[key[:-3]] = format_datetime(value, language)
    return out


def _text(value: Any, language: str) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "oui" if language == "fr" else "yes"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def render(subject: str, body: str, data: dict[str, str]) -> tuple[str, str]:
    """Subject and text; paragraphs naming a missing value are left out."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", body.replace("\r\n", "\n").strip()):
        template = Template(paragraph)
        if all(data.get(name) for name in template.get_identifiers()):
            paragraphs.append(template.safe_substitute(data).strip())
    text = "\n\n".join(p for p in paragraphs if p) + "\n"
    subject_text = " ".join(
        Template(subject).safe_substitute({k: data.get(k, "") for k in _ids(subject)}).split()
    )
    return subject_text, text


def _ids(text: str) -> list[str]:
    return Template(text).get_identifiers()


def render_for(row: dict, data: dict[str, Any], recipient: Recipient, event: str) -> tuple[str, str]:
    return render(row["subject"], row["body"], values(data, recipient, event, row["language"]))


# --- dates written out (the host's own, for wordings; channels have theirs) -------------

_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_FR_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_FR_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def format_datetime(value: Any, language: str) -> str:
    """An ISO 8601 time as people read it, in the offset it was given; "" for none."""
    if not value:
        return ""
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    offset = at.utcoffset()
    zone = ""
    if offset is not None:
        if offset == timedelta(0):
            zone = "UTC"
        else:
            minutes = abs(int(offset.total_seconds())) // 60
            zone = f"UTC{'+' if offset > timedelta(0) else '-'}{minutes // 60:02d}:{minutes % 60:02d}"
    if language == "fr":
        day = "1er" if at.day == 1 else str(at.day)
        text = f"{_FR_DAYS[at.weekday()]} {day} {_FR_MONTHS[at.month - 1]} {at.year} à {at.hour} h {at.minute:02d}"
    else:
        text = f"{_EN_DAYS[at.weekday()]}, {at.day} {_EN_MONTHS[at.month - 1]} {at.year} at {at.hour:02d}:{at.minute:02d}"
    return f"{text} {zone}" if zone else text
