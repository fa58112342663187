"""SMS notifications through any HTTP SMS gateway, configured per tenant."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_sms.channel import SmsChannel
from pigeonhole_sms.config import SmsConfig

__all__ = ["SmsChannel", "SmsConfig", "SmsPlugin"]


class SmsPlugin(Plugin):
    name = "sms"
    Config = SmsConfig
    description = "SMS through the tenant's HTTP SMS gateway, in English and French"

    @hookimpl
    def pigeonhole_channels(self) -> list[SmsChannel]:
        return [SmsChannel(self.config)]
