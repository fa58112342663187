"""The workplace mailroom: parcels for staff, held a few working days."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_workplace.workflow import WorkplaceConfig, WorkplaceWorkflow

__all__ = ["WorkplaceConfig", "WorkplacePlugin", "WorkplaceWorkflow"]


class WorkplacePlugin(Plugin):
    name = "workplace"
    Config = WorkplaceConfig
    description = "Workplace mailroom: staff parcels held for a few days"

    @hookimpl
    def pigeonhole_workflows(self) -> list[WorkplaceWorkflow]:
        return [WorkplaceWorkflow(self.config)]
