"""What a tenant allows: modes, lengths, how far ahead, reminders, sizes, the delivery reserve."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Mode = Literal["fixed", "flexible", "open"]
Size = Literal["xs", "s", "m", "l", "xl"]
# Up to a year: longer is a typo, and would keep a door shut that long.
Hours = Annotated[int, msgspec.Meta(ge=1, le=24 * 365)]
Ahead = Annotated[int, msgspec.Meta(ge=0, le=24 * 365)]
Minutes = Annotated[int, msgspec.Meta(ge=0, le=24 * 60)]
Count = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class StorageConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: Which modes people may choose: ``fixed`` (exactly ``fixed_hours``),
    #: ``flexible`` (up to ``max_hours`` from the start, extensions included),
    #: ``open`` (no end time, until someone ends it).
    modes: Annotated[tuple[Mode, ...], msgspec.Meta(min_length=1)] = ("fixed", "flexible", "open")
    fixed_hours: Hours = 8
    max_hours: Hours = 24
    #: How far ahead a reservation may start (0: now only).
    max_advance_hours: Ahead = 168
    #: A ``storage.ending`` reminder this long before the end (0: none).
    reminder_minutes: Minutes = 30
    #: The compartment sizes storage may use.
    sizes: Annotated[tuple[Size, ...], msgspec.Meta(min_length=1)] = ("s", "m", "l")
    #: Per size, how many free compartments every bank keeps for deliveries
    #: only: storage never takes them (D6), e.g. ``{"s": 2, "m": 1}``.
    keep_for_deliveries: dict[Size, Count] = {}
    #: The access method whose secret opens a storage compartment.
    access_method: str = "pin"

    def __post_init__(self) -> None:
        if "flexible" in self.modes and "fixed" in self.modes and self.fixed_hours > self.max_hours:
            raise ValueError("fixed_hours cannot exceed max_hours")
