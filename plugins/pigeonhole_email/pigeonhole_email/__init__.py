"""Email notifications: the channel every recipient can be reached on."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_email.channel import EmailChannel
from pigeonhole_email.config import EmailConfig

__all__ = ["EmailChannel", "EmailConfig", "EmailPlugin"]


class EmailPlugin(Plugin):
    name = "email"
    Config = EmailConfig
    description = "Email notifications over SMTP, in English and French"

    @hookimpl
    def pigeonhole_channels(self) -> list[EmailChannel]:
        return [EmailChannel(self.config)]
