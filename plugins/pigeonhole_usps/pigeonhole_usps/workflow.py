"""Policies of a public post office (H3, K1, K2).

Recipients are members of the public, known only by an email address or a
phone number (K2): a package for someone the office cannot reach is refused
when it is received. A deposited package waits ``hold_days`` (5); the
recipient gets a reminder at each of ``reminder_hours`` after the deposit
(24, 48 and 96 hours: "reminder 2 of 3"), none once the package is picked up.
At the end of the hold the code dies and ``package.expired`` tells the
recipient the parcel waits at the retail counter (``counter_name``,
``counter_hours``); staff then remove it from the locker
(``POST .../banks/{id}/expired/remove``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

import msgspec
from pigeonhole.api import PackageView, TimelineStep, Workflow

Days = Annotated[int, msgspec.Meta(ge=1, le=60)]
Hour = Annotated[int, msgspec.Meta(ge=1, le=60 * 24)]
Names = Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
Text = Annotated[str, msgspec.Meta(max_length=300)]


class UspsConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: How long a package waits in the locker before it goes back to the counter.
    hold_days: Days = 5
    #: Hours after the deposit at which the recipient is reminded; [] for none.
    reminder_hours: Annotated[tuple[Hour, ...], msgspec.Meta(max_length=10)] = (24, 48, 96)
    #: Access methods issued on deposit (a code and a QR token); each must be enabled for the tenant.
    pickup_methods: Names = ("pin", "qr")
    #: The events that reach the recipient.
    notify_events: tuple[str, ...] = (
        "package.ready",
        "package.reminder",
        "package.expired",
        "package.removed",
        "package.picked_up",
    )
    #: Where an expired package is taken: the retail counter, or shelf storage.
    expiry_destination: Literal["counter", "shelf"] = "counter"
    #: How messages name the counter, and when it is open (shown in package.expired).
    counter_name: Text = "the retail counter"
    counter_hours: Text = "Monday to Friday 9:00-17:00, Saturday 9:00-12:00"
    #: K2: refuse a package whose recipient has neither an email address nor a phone number.
    require_contact: bool = True

    def __post_init__(self) -> None:
        hours = list(self.reminder_hours)
        if hours != sorted(set(hours)):
            raise ValueError(f"reminder_hours must be increasing, each once (got {hours})")
        if hours and hours[-1] >= self.hold_days * 24:
            raise ValueError(
                f"reminder_hours: {hours[-1]} h is not before the package expires "
                f"(hold_days {self.hold_days} = {self.hold_days * 24} h)"
            )


class UspsWorkflow(Workflow):
    name = "usps"

    def __init__(self, config: UspsConfig | None = None) -> None:
        self.config = config or UspsConfig()

    def hold_period(self, package: PackageView) -> timedelta:
        return timedelta(days=self.config.hold_days)

    def pickup_methods(self, package: PackageView) -> list[str]:
        return list(self.config.pickup_methods)

    def notify_events(self) -> set[str]:
        return set(self.config.notify_events)

    def timeline(self, package: PackageView) -> list[TimelineStep]:
        c = self.config
        total = len(c.reminder_hours)
        steps = [
            TimelineStep(
                name=f"reminder-{n}",
                after=timedelta(hours=hours),
                event="package.reminder",
                data={"reminder": n, "reminders": total},
            )
            for n, hours in enumerate(c.reminder_hours, start=1)
        ]
        steps.append(
            TimelineStep(
                name="expire",
                after=self.hold_period(package),
                event="package.expired",
                expire=True,
                data={"counter_name": c.counter_name, "counter_hours": c.counter_hours},
            )
        )
        return steps

    def expiry_destination(self, package: PackageView) -> str:
        return self.config.expiry_destination

    def accepts(self, package: PackageView) -> str | None:
        r = package.recipient
        if self.config.require_contact and not (r.email or r.phone):
            return (
                "recipient: a post office package needs the recipient's email address or phone number, "
                "to send the pickup code"
            )
        return None
