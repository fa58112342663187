"""Policies of a workplace mailroom.

Staff come to the office most days, so three days covers a weekend; a parcel
left longer is usually for someone on leave, and the mailroom takes it back.

The timeline (H4), counted from the deposit and all configurable:

- ``reminder_hours`` (24): ``package.reminder`` to the recipient;
- ``escalation_hours`` (48): ``package.escalated`` to the recipient and to the
  department's key contact for a department package, else to the mailroom
  staff (users holding ``packages:write`` at the bank);
- ``hold_hours`` (72): the package expires and waits for the mailroom to take
  it to shelf storage (``package.expired`` with destination ``shelf``).

``reminder_hours`` or ``escalation_hours`` set to 0 leaves the step out.
Each step must come after the one before it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import msgspec
from pigeonhole.api import PackageView, TimelineStep, Workflow

# Up to a year: longer is a typo, and would keep a door shut that long.
Hours = Annotated[int, msgspec.Meta(ge=1, le=24 * 365)]
#: 0: no such step.
StepHours = Annotated[int, msgspec.Meta(ge=0, le=24 * 365)]
# Tuples: immutable, and unlike a default_factory their default reaches the JSON
# schema, hence the admin console's form.
Names = Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]


class WorkplaceConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: When the package expires and goes to shelf storage.
    hold_hours: Hours = 72
    #: A reminder to the recipient this long after the deposit; 0: none. Unset:
    #: 24, left out when the package expires by then.
    reminder_hours: StepHours | None = None
    #: The escalation to the recipient and the key contact / mailroom; 0: none.
    #: Unset: 48, left out when it would not come between reminder and expiry.
    escalation_hours: StepHours | None = None
    #: Access methods issued on deposit; each must be enabled for the tenant.
    pickup_methods: Names = ("pin",)
    #: Staff want to know a parcel arrived, that it is waiting, and, for their
    #: peace of mind, that it left.
    notify_events: tuple[str, ...] = (
        "package.ready",
        "package.picked_up",
        "package.reminder",
        "package.escalated",
        "package.expired",
        "package.removed",
    )

    def __post_init__(self) -> None:
        # Fail when the tenant saves the configuration, not at the first parcel.
        r, e = self.reminder_hours, self.escalation_hours
        if r and e and e <= r:
            raise ValueError(f"escalation_hours ({e}) must come after reminder_hours ({r})")
        for name, value in (("reminder_hours", r), ("escalation_hours", e)):
            if value and value >= self.hold_hours:
                raise ValueError(
                    f"hold_hours ({self.hold_hours}) is when the package expires: it must come after "
                    f"{name} ({value})"
                )

    def steps(self) -> tuple[int, int]:
        """(reminder, escalation) hours in force; 0 for a step left out."""
        reminder = self.reminder_hours
        if reminder is None:
            reminder = DEFAULT_REMINDER if DEFAULT_REMINDER < self.hold_hours else 0
        escalation = self.escalation_hours
        if escalation is None:
            fits = reminder < DEFAULT_ESCALATION < self.hold_hours
            escalation = DEFAULT_ESCALATION if fits else 0
        return reminder, escalation


DEFAULT_REMINDER, DEFAULT_ESCALATION = 24, 48


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

    def timeline(self, package: PackageView) -> list[TimelineStep]:
        reminder, escalation = self.config.steps()
        steps = []
        if reminder:
            steps.append(
                TimelineStep(
                    name="reminder",
                    after=timedelta(hours=reminder),
                    event="package.reminder",
                    data={"reminder": 1, "reminders": 1},
                )
            )
        if escalation:
            steps.append(
                TimelineStep(
                    name="escalation",
                    after=timedelta(hours=escalation),
                    event="package.escalated",
                    notify=("recipient", "key_contact"),
                )
            )
        steps.append(
            TimelineStep(name="expire", after=self.hold_period(package), event="package.expired", expire=True)
        )
        return steps

    def expiry_destination(self, package: PackageView) -> str:
        return "shelf"
