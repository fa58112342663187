"""The public plugin API: everything a plugin may import from the host.

A plugin imports :mod:`pigeonhole.api` and nothing else of the host. What is
here is kept small and stable; what is not here is private and may change.
The guide for plugin authors is ``docs/plugins/``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol
from uuid import UUID

import msgspec

from pigeonhole.hookspecs import hookimpl

__all__ = [
    "AccessMethod",
    "AlertView",
    "Channel",
    "CustodyEvent",
    "DeliveryResult",
    "DoorListener",
    "DoorState",
    "DriverHealth",
    "InvalidSecret",
    "LockDriver",
    "NoConfig",
    "Notification",
    "PackageView",
    "Plugin",
    "PluginRequest",
    "Recipient",
    "UnlockOutcome",
    "Workflow",
    "hookimpl",
]


# --------------------------------------------------------------------------
# Plugins and their configuration
# --------------------------------------------------------------------------


class NoConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The configuration of a plugin that takes none."""


class Plugin:
    """Base class of every plugin published under ``pigeonhole.plugins``.

    The host builds one instance per tenant that enabled the plugin, passing the
    tenant's configuration already validated against ``Config``; platform
    hooks are called on an instance built with ``config=None``.
    """

    #: Short, unique name: the key in a tenant manifest and in URLs.
    name: ClassVar[str]
    #: A msgspec Struct describing the configuration; its JSON schema drives
    #: the admin console's form. Give every field a default where one makes sense.
    Config: ClassVar[type[msgspec.Struct]] = NoConfig
    #: One line for the admin console.
    description: ClassVar[str] = ""

    def __init__(self, config: msgspec.Struct | None) -> None:
        self.config = config


class PluginRequest(msgspec.Struct, frozen=True):
    """Who is calling a plugin route, resolved and authenticated by the host."""

    tenant_id: UUID
    tenant_slug: str
    actor: str
    role: str
    bank_id: UUID | None = None


# --------------------------------------------------------------------------
# Lock drivers
# --------------------------------------------------------------------------


class DoorState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


class UnlockOutcome(enum.StrEnum):
    """What really happened to a door after an unlock, as its sensor saw it."""

    OPENED = "opened"
    ALREADY_OPEN = "already_open"
    JAMMED = "jammed"
    NO_ANSWER = "no_answer"

    @property
    def door_is_open(self) -> bool:
        return self in (UnlockOutcome.OPENED, UnlockOutcome.ALREADY_OPEN)


class DriverHealth(msgspec.Struct, frozen=True):
    ok: bool
    detail: str = ""


class DoorListener(Protocol):
    """Where a driver reports door changes it sees without being asked.

    It also names the bank the driver serves, for drivers that keep per-bank
    state of their own (a simulator's boards, a bus shared by several banks).
    """

    tenant_id: UUID
    bank_id: UUID

    async def door_changed(self, door: int, state: DoorState) -> None: ...


class LockDriver(abc.ABC):
    """Drives the locks of one bank.

    ``doors`` are the bank's door numbers (1-based, as printed on the bank);
    the driver's ``Config`` maps them to boards, channels or coils. A driver
    reports what the door sensor saw, never what it hoped: an unlock that the
    board acknowledged while the door stayed shut is ``JAMMED``. It must never
    repeat an unlock whose outcome is unknown: a person may already have
    opened and closed the door.
    """

    name: ClassVar[str]
    Config: ClassVar[type[msgspec.Struct]] = NoConfig

    def __init__(self, config: msgspec.Struct, doors: Sequence[int], listener: DoorListener) -> None:
        self.config = config
        self.doors = list(doors)
        self.listener = listener

    async def start(self) -> None:
        """Open ports or links; switch every relay off. Called once."""

    async def stop(self) -> None:
        """Release ports or links. Called once."""

    @abc.abstractmethod
    async def unlock(self, door: int) -> UnlockOutcome:
        """Fire one lock and report the door's state after the pulse."""

    async def unlock_many(self, doors: Sequence[int], *, sequential: bool = True) -> dict[int, UnlockOutcome]:
        """Open several doors, one after the other unless the board can do all at once."""
        return {door: await self.unlock(door) for door in doors}

    @abc.abstractmethod
    async def door_states(self) -> dict[int, DoorState]:
        """Read every door sensor of the bank."""

    async def health(self) -> DriverHealth:
        return DriverHealth(ok=True)


# --------------------------------------------------------------------------
# Notifications
# --------------------------------------------------------------------------


class Recipient(msgspec.Struct, frozen=True):
    name: str
    email: str | None = None
    phone: str | None = None
    language: str = "en"
    #: The channels this person chose (the recipient app, H1); None: every channel that reaches them.
    channels: tuple[str, ...] | None = None


class Notification(msgspec.Struct, frozen=True):
    """One message to one recipient about one event.

    ``id`` is stable across retries: a channel that can pass an idempotency key
    to its provider should pass this one. ``data`` carries what templates need:
    ``tenant_name``, ``tracking_id``, ``carrier``, ``bank_name``,
    ``location_name``, ``location_address``, ``timezone`` (the location's IANA
    zone, for showing times), ``compartment``, ``code`` (only on
    ``package.ready``), ``expires_at`` and ``picked_up_at`` (ISO 8601 with the
    location's UTC offset, so a template can show local time as it is) and
    ``package_id``.
    """

    id: str
    tenant: str
    event: str
    language: str
    recipient: Recipient
    data: dict[str, Any]
    #: The tenant's own wording for this event and language (H2), already rendered
    #: with ``data``. A channel sends these instead of its built-in words when set.
    subject: str | None = None
    text: str | None = None


class DeliveryResult(msgspec.Struct, frozen=True):
    ok: bool
    detail: str = ""
    #: False when retrying cannot help (bad address): the host stops trying.
    retry: bool = True


class Channel(abc.ABC):
    """A way to reach a person (email, SMS, chat...)."""

    name: ClassVar[str]

    @abc.abstractmethod
    def reaches(self, recipient: Recipient) -> bool:
        """Whether this channel has what it needs to reach the recipient."""

    def wants(self, event: str) -> bool:
        """Whether the tenant configured this channel to carry ``event`` (a chat room may take only some)."""
        return True

    @abc.abstractmethod
    async def send(self, notification: Notification) -> DeliveryResult:
        """Deliver now. Raise or return ``ok=False`` to have the host retry."""


# --------------------------------------------------------------------------
# Access methods and workflows
# --------------------------------------------------------------------------


class InvalidSecret(ValueError):
    """A presented secret that cannot be of this method's form; the message says why."""


class AccessMethod(abc.ABC):
    """How a pickup credential looks: a code, a QR token, a badge..."""

    name: ClassVar[str]
    #: Failures against one credential before it is locked.
    max_failures: int = 5

    @abc.abstractmethod
    def new_secret(self) -> str:
        """A fresh secret to give the recipient. The host retries on collision."""

    def normalize(self, presented: str) -> str:
        """The canonical form of what a person typed or scanned; raise InvalidSecret."""
        return presented.strip()

    def lifetime(self) -> timedelta | None:
        """How long a credential lives from its issue; None: as long as the package waits."""
        return None


class PackageView(msgspec.Struct, frozen=True):
    """A package as plugins see it."""

    id: UUID
    tracking_id: str
    carrier: str
    size: str
    status: str
    recipient: Recipient
    bank_id: UUID | None = None
    received_at: datetime | None = None


class Workflow(abc.ABC):
    """The policies of a kind of locker site."""

    name: ClassVar[str]

    @abc.abstractmethod
    def hold_period(self, package: PackageView) -> timedelta:
        """How long a deposited package waits before it expires."""

    def pickup_methods(self, package: PackageView) -> list[str]:
        """Names of the access methods to issue when a package is deposited."""
        return ["pin"]

    def notify_events(self) -> set[str]:
        """The events that notify the recipient."""
        return {"package.ready"}


class CustodyEvent(msgspec.Struct, frozen=True):
    """One link of a chain of custody, as plugins observe it."""

    id: UUID
    tenant: str
    kind: str
    at: datetime
    actor: str
    package_id: UUID | None = None
    bank_id: UUID | None = None
    compartment_id: UUID | None = None
    method: str | None = None
    data: dict[str, Any] = {}


# --------------------------------------------------------------------------
# Alerts (hardware #4): what a person must look at
# --------------------------------------------------------------------------


class AlertView(msgspec.Struct, frozen=True):
    """An alert as plugins observe it (``pigeonhole_alert``).

    ``kind`` is one of ``door.forced`` (a door opened with no command),
    ``door.left_open`` (open past its bank's ``door_left_open_seconds``),
    ``command.unknown_outcome`` (nobody knows whether a commanded door opened)
    and ``command.outcome_differs`` (the agent later reported another outcome
    than the server had recorded). ``message`` is a sentence for a person.
    """

    id: UUID
    tenant: str
    kind: str
    message: str
    raised_at: datetime
    bank_id: UUID | None = None
    door: int | None = None
    package_id: UUID | None = None
    command_id: UUID | None = None
    data: dict[str, Any] = {}


# --------------------------------------------------------------------------
# Lock-board toolkit (hardware #4)
# --------------------------------------------------------------------------

#: The other host package a driver plugin may import: serial and TCP links
#: that reopen, a serialized bus with inter-frame gaps, ``BoardDriver`` (a
#: board's frames are all a new driver writes) and the base of board
#: simulators. Public and kept stable like this module; see
#: ``docs/plugins/drivers.md``. What drivers built on it promise the agent
#: (and what any driver should do, the conformance kit checks it):
#:
#: - ``start()`` does not raise because a port or bridge is missing: the driver
#:   keeps trying to reopen it, ``health()`` says why, unlocks answer
#:   ``NO_ANSWER`` meanwhile;
#: - ``door_states()`` only reads; a door that moves without a command is
#:   reported through ``DoorListener.door_changed`` by the driver's own poll
#:   (``poll_interval_ms`` of its config), never the door a command opened;
#: - ``health()`` answers from the last read of each board (the poll reads them
#:   anyway) and reads only boards not seen for a second or two poll intervals,
#:   so a heartbeat costs no bus time and is not held up by a silent board;
#: - ``unlock_many(doors, sequential=False)`` fires the locks back to back
#:   (one frame per board when the board can open all its locks) with one
#:   settle wait and one read per board; ``sequential=True`` is one full
#:   unlock (read, fire, settle, read) after the other;
#: - a task a driver starts for good (a poller) is created with a fresh
#:   ``contextvars.Context()``: ``start()`` may run inside the host's database
#:   transaction, whose context variables the task would otherwise inherit and
#:   outlive ("no active connection" on SQLite when it reports a door).
HARDWARE_TOOLKIT = "pigeonhole.hardware"


# --------------------------------------------------------------------------
# Workflow timelines (#5): reminders, escalations, expiry
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Access: badges and carrier codes (#5)
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Storage (#5, G1-G3, D6)
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Event subscribers: partner webhooks (#5, J2)
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Message events and tenant wording (#5, H2)
# --------------------------------------------------------------------------
