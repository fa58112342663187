"""From a notification to a subject, a plain-text body and an HTML body."""

from __future__ import annotations

import html
from string import Template
from typing import Any, NamedTuple

from pigeonhole.api import Notification

from pigeonhole_email.dates import format_datetime
from pigeonhole_email.templates import TEMPLATES, template_for

# Values people read aloud or type: set apart in the HTML body.
_EMPHASIZED = frozenset({"code", "compartment"})


class Rendered(NamedTuple):
    language: str
    subject: str
    text: str
    html: str


def language_of(notification: Notification) -> str:
    """Our closest language: "fr-CA" reads French, anything unknown reads English."""
    for candidate in (notification.language, notification.recipient.language):
        primary = (candidate or "").replace("_", "-").split("-")[0].lower()
        if primary in TEMPLATES["package.ready"]:
            return primary
    return "en"


def render(notification: Notification) -> Rendered:
    language = language_of(notification)
    template = template_for(notification.event, language)
    values = _values(notification, language)
    paragraphs = [p for p in template.paragraphs if _complete(p, values)]
    text = "\n\n".join(p.substitute(values) for p in paragraphs) + "\n"
    html_values = {k: _html_value(k, v) for k, v in values.items()}
    html_body = (
        f'<!DOCTYPE html>\n<html lang="{language}"><body>\n'
        + "\n".join(f"<p>{p.substitute(html_values)}</p>" for p in paragraphs)
        + "\n</body></html>\n"
    )
    # safe_substitute: a subject is never dropped, and a header must not crash a send.
    subject = " ".join(template.subject.safe_substitute(values).split())
    return Rendered(language, subject, text, html_body)


def _values(notification: Notification, language: str) -> dict[str, str]:
    data: dict[str, Any] = notification.data
    values = {k: "" if v is None else str(v) for k, v in data.items()}
    values["name"] = notification.recipient.name
    values["event"] = notification.event
    values["place"] = ", ".join(str(data[k]) for k in ("location_name", "location_address") if data.get(k))
    values["expires"] = format_datetime(data.get("expires_at"), language)
    values["picked_up"] = format_datetime(data.get("picked_up_at"), language)
    return values


def _complete(paragraph: Template, values: dict[str, str]) -> bool:
    return all(values.get(name) for name in paragraph.get_identifiers())


def _html_value(key: str, value: str) -> str:
    escaped = html.escape(value)
    if key == "link" and value.startswith(("https://", "http://")):
        return f'<a href="{escaped}">{escaped}</a>'
    if key in _EMPHASIZED:
        return f'<strong style="font-size:1.4em;letter-spacing:0.1em">{escaped}</strong>'
    return escaped
