"""Microsoft Teams rooms: the mailroom's channel hears about packages and staff alerts."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_teams.channel import TeamsChannel
from pigeonhole_teams.config import Room, TeamsConfig

__all__ = ["Room", "TeamsChannel", "TeamsConfig", "TeamsPlugin"]


class TeamsPlugin(Plugin):
    name = "teams"
    Config = TeamsConfig
    description = "Microsoft Teams rooms (incoming webhooks): package events and staff alerts, never codes"

    @hookimpl
    def pigeonhole_channels(self) -> list[TeamsChannel]:
        c = self.config
        main = TeamsChannel(c.webhook_url, c.events, c.alerts, c.language, c.timeout_seconds, c.card)
        more = [
            TeamsChannel(
                r.webhook_url, r.events, r.alerts, r.language, c.timeout_seconds, c.card, name=f"teams.{r.name}"
            )
            for r in c.rooms
        ]
        return [main, *more]
