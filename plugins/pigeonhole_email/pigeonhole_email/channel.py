"""Delivery over SMTP, and what each failure means for a retry."""

from __future__ import annotations

import asyncio
import functools
import smtplib
import ssl
from email.policy import SMTP as SMTP_POLICY
from email.utils import parseaddr

from pigeonhole.api import Channel, DeliveryResult, MessageWording, Notification, Recipient

from pigeonhole_email.config import EmailConfig, SmtpTarget
from pigeonhole_email.message import build_message
from pigeonhole_email.templates import FALLBACK_LANGUAGE, _by_language, as_wording_text


class EmailChannel(Channel):
    name = "email"

    def __init__(self, config: EmailConfig | None = None) -> None:
        self.config = config or EmailConfig()

    def reaches(self, recipient: Recipient) -> bool:
        return bool(recipient.email and recipient.email.strip())

    def default_wording(self, event: str, language: str) -> MessageWording | None:
        """The built-in words of ``event`` (``GET /message-templates`` shows them beside the tenant's)."""
        by_language = _by_language(event)
        if by_language is None:
            return None
        subject, body = as_wording_text(by_language.get(language) or by_language[FALLBACK_LANGUAGE])
        return MessageWording(subject=subject, body=body)

    async def send(self, notification: Notification) -> DeliveryResult:
        recipient = (notification.recipient.email or "").strip()
        if not recipient:
            return DeliveryResult(ok=False, detail="recipient has no email address", retry=False)
        try:
            # Read the environment on every send: no restart after changing the relay.
            target = SmtpTarget.resolve(self.config)
        except ValueError as exc:
            return DeliveryResult(ok=False, detail=f"bad SMTP URL: {exc}", retry=True)
        try:
            data = build_message(notification, self.config).as_bytes(policy=SMTP_POLICY)
        except (ValueError, TypeError, UnicodeError) as exc:
            # The same notification will never build better.
            return DeliveryResult(ok=False, detail=f"cannot build the message: {exc}", retry=False)
        sender = parseaddr(self.config.from_address)[1]
        try:
            reply = await asyncio.to_thread(
                _deliver, target, sender, recipient, data, self.config.timeout_seconds
            )
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(exc)
        except smtplib.SMTPDataError as exc:
            # 5xx: the relay will never take this message; 4xx: "try later".
            detail = f"{target}: message refused: {_reply(exc.smtp_code, exc.smtp_error)}"
            return DeliveryResult(ok=False, detail=detail, retry=exc.smtp_code < 500)
        except (OSError, smtplib.SMTPException) as exc:
            # Refused connections, timeouts, TLS, a bad login or sender: the relay may
            # come back, or the admin may fix the settings; the notification must survive.
            return DeliveryResult(ok=False, detail=f"{target}: {_describe(exc)}", retry=True)
        return DeliveryResult(ok=True, detail=reply)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs ~20 ms, far more than a local SMTP send."""
    return ssl.create_default_context()


def _deliver(target: SmtpTarget, sender: str, recipient: str, data: bytes, timeout: float) -> str:
    """Send in one blocking SMTP session; return the server's reply to DATA.

    The envelope is spelled out instead of using ``sendmail`` because only this
    way do we get the final reply, which carries the relay's queue id.
    """
    context = _tls_context() if (target.implicit_tls or target.starttls) else None
    if target.implicit_tls:
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=timeout)
    with smtp:
        smtp.ehlo_or_helo_if_needed()
        if target.starttls:
            smtp.starttls(context=context)
            smtp.ehlo()
        if target.username:
            smtp.login(target.username, target.password or "")
        code, text = smtp.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, text, sender)
        code, text = smtp.rcpt(recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, text)})
        code, text = smtp.data(data)
        if code != 250:
            raise smtplib.SMTPDataError(code, text)
        return _reply(code, text)


def _refused(exc: smtplib.SMTPRecipientsRefused) -> DeliveryResult:
    detail = "; ".join(f"{address}: {_reply(code, text)}" for address, (code, text) in exc.recipients.items())
    # 4xx is greylisting or a full mailbox: worth another try. 5xx is a bad address.
    transient = all(code < 500 for code, _ in exc.recipients.values())
    return DeliveryResult(ok=False, detail=f"recipient refused: {detail}", retry=transient)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {_reply(exc.smtp_code, exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"
