"""The MIME message for one notification."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from pigeonhole.api import Notification

from pigeonhole_email.config import EmailConfig
from pigeonhole_email.qr import QR_CID
from pigeonhole_email.render import render

_NOT_IN_MESSAGE_ID = re.compile(r"[^A-Za-z0-9._\-]")


def message_id(notification: Notification) -> str:
    # Derived from the notification id, stable across retries, so a retry after a
    # lost reply arrives as a duplicate that mail clients fold into one.
    return f"<{_NOT_IN_MESSAGE_ID.sub('-', notification.id)}@pigeonhole>"


def build_message(notification: Notification, config: EmailConfig) -> EmailMessage:
    rendered = render(notification)
    recipient = notification.recipient
    msg = EmailMessage()
    msg["From"] = config.from_address
    msg["To"] = formataddr((recipient.name, recipient.email or ""))
    if config.reply_to:
        msg["Reply-To"] = config.reply_to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id(notification)
    # RFC 3834: vacation responders must not answer a locker.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Pigeonhole-Notification"] = notification.id
    msg["X-Pigeonhole-Event"] = notification.event
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    if rendered.qr_png is not None:
        # multipart/related around the HTML part: the image travels with it, shown inline.
        html_part = msg.get_payload()[1]
        html_part.add_related(
            rendered.qr_png, maintype="image", subtype="png", cid=f"<{QR_CID}>", filename="qr.png",
            disposition="inline",
        )  # fmt: skip
    # After the bodies: set_content() drops every Content-* header already set.
    msg["Content-Language"] = rendered.language
    return msg
