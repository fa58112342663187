"""From a notification to a subject, a plain-text body and an HTML body.

The built-in words come from :mod:`pigeonhole_email.templates`. When the
tenant wrote its own wording (H2), the host has already rendered it into
``Notification.subject`` and ``text``: those are sent instead, the text as the
plain body and a simple HTML version of it. Either way a message whose data
carries ``qr`` gets the QR code as an inline image (see :mod:`pigeonhole_email.qr`).
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from string import Template
from typing import Any, NamedTuple

from pigeonhole.api import Notification

from pigeonhole_email.dates import format_datetime
from pigeonhole_email.qr import QR_CID, qr_png
from pigeonhole_email.templates import TEMPLATES, template_for

# Values people read aloud or type: set apart in the HTML body.
_EMPHASIZED = frozenset({"code", "compartment"})


class Rendered(NamedTuple):
    language: str
    subject: str
    text: str
    html: str
    #: The QR code of ``data["qr"]`` as PNG, shown inline (Content-ID ``QR_CID``); None without one.
    qr_png: bytes | None = None


def language_of(notification: Notification) -> str:
    """Our closest language: "fr-CA" reads French, anything unknown reads English."""
    for candidate in (notification.language, notification.recipient.language):
        primary = (candidate or "").replace("_", "-").split("-")[0].lower()
        if primary in TEMPLATES["package.ready"]:
            return primary
    return "en"


def render(notification: Notification) -> Rendered:
    language = language_of(notification)
    values = _values(notification, language)
    qr = str(notification.data.get("qr") or "").strip() or None
    if notification.text:
        return _render_tenant_wording(notification, language, values, qr)
    template = template_for(notification.event, language, notification.data)
    paragraphs = [p for p in template.paragraphs if _complete(p, values)]
    text = "\n\n".join(p.substitute(values) for p in paragraphs) + "\n"
    html_values = {k: _html_value(k, v) for k, v in values.items()}
    html_paragraphs = []
    for p in paragraphs:
        html_paragraphs.append(f"<p>{p.substitute(html_values)}</p>")
        if qr and "qr" in p.get_identifiers():
            html_paragraphs.append(_qr_html(language))
    if qr and not any("qr" in p.get_identifiers() for p in paragraphs):
        html_paragraphs.append(_qr_html(language))
        html_paragraphs.append(f"<p>{_qr_line(language, html.escape(qr))}</p>")
        text += "\n" + _qr_line(language, qr) + "\n"
    html_body = _html_document(language, html_paragraphs)
    # safe_substitute: a subject is never dropped, and a header must not crash a send.
    subject = " ".join(template.subject.safe_substitute(defaultdict(str, values)).split())
    return Rendered(language, subject, text, html_body, qr_png(qr) if qr else None)


def _render_tenant_wording(
    notification: Notification, language: str, values: dict[str, str], qr: str | None
) -> Rendered:
    text = notification.text.strip() + "\n"
    subject = " ".join((notification.subject or "").split()) or " ".join(
        template_for(notification.event, language, notification.data)
        .subject.safe_substitute(defaultdict(str, values))
        .split()
    )
    # Only the code is set apart in free text: a door number ("1") could be anywhere.
    emphasized = {values["code"]} if len(values.get("code", "")) >= 4 else set()
    html_paragraphs = [
        "<p>" + _emphasize(html.escape(p).replace("\n", "<br>\n"), emphasized) + "</p>"
        for p in re.split(r"\n\s*\n", text.strip())
        if p.strip()
    ]
    if qr:
        html_paragraphs.append(_qr_html(language))
        html_paragraphs.append(f"<p>{_qr_line(language, html.escape(qr))}</p>")
        if qr not in text:
            text += "\n" + _qr_line(language, qr) + "\n"
    return Rendered(
        language, subject, text, _html_document(language, html_paragraphs), qr_png(qr) if qr else None
    )


def _emphasize(escaped: str, values: set[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        token = html.escape(value)
        if len(token) >= 1 and token.isalnum():
            escaped = re.sub(
                rf"(?<![\w]){re.escape(token)}(?![\w])",
                f'<strong style="font-size:1.4em;letter-spacing:0.1em">{token}</strong>',
                escaped,
            )
    return escaped


def _html_document(language: str, paragraphs: list[str]) -> str:
    return f'<!DOCTYPE html>\n<html lang="{language}"><body>\n' + "\n".join(paragraphs) + "\n</body></html>\n"


def _qr_html(language: str) -> str:
    alt = "Code QR de retrait" if language == "fr" else "Pickup QR code"
    return f'<p><img src="cid:{QR_CID}" alt="{alt}" width="220" height="220"></p>'


def _qr_line(language: str, token: str) -> str:
    if language == "fr":
        return f"Si vous ne pouvez pas scanner le code QR, saisissez ce code à la borne\u00a0: {token}"
    return f"If you cannot scan the QR code, type this code at the kiosk: {token}"


def _values(notification: Notification, language: str) -> dict[str, str]:
    data: dict[str, Any] = notification.data
    values = {k: _text(v, language) for k, v in data.items()}
    values["name"] = notification.recipient.name
    values["event"] = notification.event
    values.setdefault("recipient_name", notification.recipient.name)
    values["place"] = ", ".join(str(data[k]) for k in ("location_name", "location_address") if data.get(k))
    for key, value in data.items():
        if key.endswith("_at") and key[:-3] not in data:
            values[key[:-3]] = format_datetime(value, language)
    values.setdefault("expires", "")
    values.setdefault("picked_up", "")
    if isinstance(data.get("compartments"), (list, tuple)) and len(data["compartments"]) < 2:
        values["compartments"] = ""  # one door: "Door: 7" says it
    elif values.get("compartments"):
        values["compartment"] = ""  # several doors: "Doors: 7, 8" says it
    return values


def _text(value: Any, language: str) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "oui" if language == "fr" else "yes"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _complete(paragraph: Template, values: dict[str, str]) -> bool:
    return all(values.get(name) for name in paragraph.get_identifiers())


def _html_value(key: str, value: str) -> str:
    escaped = html.escape(value)
    if key == "link" and value.startswith(("https://", "http://")):
        return f'<a href="{escaped}">{escaped}</a>'
    if key in _EMPHASIZED:
        return f'<strong style="font-size:1.4em;letter-spacing:0.1em">{escaped}</strong>'
    return escaped
