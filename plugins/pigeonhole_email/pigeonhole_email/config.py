"""Where mail goes, and how to log in there."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import unquote, urlsplit

import msgspec
from pigeonhole.api import Secret

ENV_URL = "PIGEONHOLE_SMTP_URL"
# aiosmtpd's and mailpit's usual development port: a fresh install mails nobody.
DEFAULT_URL = "smtp://127.0.0.1:8025"

# scheme -> (default port, implicit TLS, STARTTLS)
_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+starttls": (587, False, True),
    "smtps": (465, True, False),
}


class EmailConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: smtp://[user:pass@]host:port, smtp+starttls://..., or smtps://... for
    #: implicit TLS. None: the PIGEONHOLE_SMTP_URL environment variable, so one
    #: relay can serve every tenant without each of them knowing its password.
    #: A Secret (it carries the password): stored sealed, never shown back.
    smtp_url: Secret | None = None
    from_address: str = "Pigeonhole <lockers@pigeonhole.local>"
    reply_to: str | None = None
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10

    def __post_init__(self) -> None:
        # Fail when the tenant saves the configuration, not at the first parcel.
        if self.smtp_url is not None:
            try:
                SmtpTarget.parse(self.smtp_url)
            except ValueError as exc:
                raise ValueError(f"smtp_url: {exc}") from None


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            known = ", ".join(f"{s}://" for s in _SCHEMES)
            raise ValueError(f"SMTP URL must start with one of {known}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"SMTP URL has an invalid port: {parts.netloc.rpartition('@')[2]!r}") from None
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        default_port, implicit_tls, starttls = _SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=port or default_port,
            implicit_tls=implicit_tls,
            starttls=starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    @classmethod
    def resolve(cls, config: EmailConfig) -> SmtpTarget:
        return cls.parse(config.smtp_url or os.environ.get(ENV_URL) or DEFAULT_URL)

    def __str__(self) -> str:
        # Never the password: this ends up in delivery details and logs.
        return f"{self.host}:{self.port}"
