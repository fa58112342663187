"""Policies of a workplace mailroom.

Staff come to the office most days, so three days covers a weekend; a parcel
left longer is usually for someone on leave, and the mailroom takes it back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import msgspec
from pigeonhole.api import PackageView, Workflow

# Up to a year: longer is a typo, and would keep a door shut that long.
Hours = Annotated[int, msgspec.Meta(ge=1, le=24 * 365)]
# Tuples: immutable, and unlike a default_factory their default reaches the JSON
# schema, hence the admin console's form.
Names = Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]


class WorkplaceConfig(msgspec.Struct, forbid_unknown_fields=True):
    hold_hours: Hours = 72
    #: Access methods issued on deposit; each must be enabled for the tenant.
    pickup_methods: Names = ("pin",)
    #: Staff want to know a parcel arrived and, for their peace of mind, that it left.
    notify_events: tuple[str, ...] = ("package.ready", "package.picked_up")


class WorkplaceWorkflow(Workflow):
    name = "workplace"

    def __init__(self, config: WorkplaceConfig | None = None) -> None:
        self.config = config or WorkplaceConfig()

    def hold_period(self, package: PackageView) -> timedelta:
        return timedelta(hours=self.config.hold_hours)

    def pickup_methods(self, package: PackageView) -> list[str]:
        return list(self.config.pickup_methods)

    def notify_events(self) -> set[str]:
        return set(self.config.notify_events)
