"""Slack rooms: the mailroom's channel hears about packages and staff alerts."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_slack.channel import SlackChannel
from pigeonhole_slack.config import Room, SlackConfig

__all__ = ["Room", "SlackChannel", "SlackConfig", "SlackPlugin"]


class SlackPlugin(Plugin):
    name = "slack"
    Config = SlackConfig
    description = "Slack rooms (incoming webhooks): package events and staff alerts, never codes"

    @hookimpl
    def pigeonhole_channels(self) -> list[SlackChannel]:
        c = self.config
        main = SlackChannel(c.webhook_url, c.events, c.alerts, c.language, c.timeout_seconds)
        more = [
            SlackChannel(r.webhook_url, r.events, r.alerts, r.language, c.timeout_seconds, name=f"slack.{r.name}")
            for r in c.rooms
        ]
        return [main, *more]
