"""The public post office: parcels for the public, reminders, then the retail counter."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_usps.workflow import UspsConfig, UspsWorkflow

__all__ = ["UspsConfig", "UspsPlugin", "UspsWorkflow"]


class UspsPlugin(Plugin):
    name = "usps"
    Config = UspsConfig
    description = "Public post office: three reminders, then the parcel goes back to the retail counter"

    @hookimpl
    def pigeonhole_workflows(self) -> list[UspsWorkflow]:
        return [UspsWorkflow(self.config)]
