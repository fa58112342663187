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
from typing import Annotated, Any, ClassVar, Protocol
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
    """How a pickup credential looks: a code, a QR token, a badge...

    Most methods are a secret per package, issued on deposit. A method with
    ``identifies_person = True`` (a badge) is not: what is presented names a
    person of the directory (their Personnel ID), and the host opens every
    ready package of that person at the bank. Such a method is never issued
    (``new_secret`` is not called) and ``normalize`` returns the ID to look up.
    """

    name: ClassVar[str]
    #: Failures against one credential before it is locked.
    max_failures: int = 5
    #: True: the presented value identifies a person (a badge), not a package (access #5).
    identifies_person: ClassVar[bool] = False

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

    # --- timelines (#5): see "Workflow timelines" below and docs/plugins/workflows.md

    def timeline(self, package: PackageView) -> list[TimelineStep]:
        """What happens to a deposited package while it waits, from its deposit on.

        The host materializes the steps as durable timers when the package
        becomes ready; a later change of configuration does not move them. A
        step fires only while the package is still ``ready`` (a package picked
        up gets nothing more). The default: expire at :meth:`hold_period`.
        """
        return [
            TimelineStep(name="expire", after=self.hold_period(package), event="package.expired", expire=True)
        ]

    def expiry_destination(self, package: PackageView) -> str:
        """Where an expired package is taken when staff remove it: ``"counter"`` or ``"shelf"``."""
        return "counter"

    def accepts(self, package: PackageView) -> str | None:
        """None to accept a package being received; else why it is refused (a sentence, HTTP 400)."""
        return None


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

#: Who a timeline step notifies (``TimelineStep.notify``).
NOTIFY_TARGETS = ("recipient", "key_contact", "staff")
#: Where an expired package goes (``Workflow.expiry_destination``).
EXPIRY_DESTINATIONS = ("counter", "shelf")


class TimelineStep(msgspec.Struct, frozen=True):
    """One step of a deposited package's timeline (``Workflow.timeline``).

    ``after`` counts from the deposit (the moment the package became ready).
    ``event`` is the message event sent when the step fires (None: none), to
    each of ``notify``: ``"recipient"`` (the package's recipient),
    ``"key_contact"`` (the key contact of the package's department; for a
    package with no department, or a department without key contact, the
    staff instead) and ``"staff"`` (the tenant's active users holding both
    ``packages:write`` and ``doors:open`` whose scope covers the package's
    bank: the mailroom, not carriers).
    ``expire=True`` ends the package's wait: its codes die, it becomes
    ``expired`` with ``Workflow.expiry_destination`` and waits for staff to
    remove it. ``data`` is added to the message data (e.g. ``reminder``,
    ``reminders`` for ``package.reminder``; ``counter_hours`` for
    ``package.expired``). Names are unique within a timeline.
    """

    name: str
    after: timedelta
    event: str | None = None
    notify: tuple[str, ...] = ("recipient",)
    expire: bool = False
    data: dict[str, Any] = {}


__all__ += ["EXPIRY_DESTINATIONS", "NOTIFY_TARGETS", "TimelineStep"]


# --------------------------------------------------------------------------
# Access: badges and carrier codes (#5)
# --------------------------------------------------------------------------

#: Characters of the secrets read off a screen or a scanner: Crockford's base32
#: (no I, L, O, U), so a scanner typing in the wrong case or a person reading
#: "0" for "O" still gives the same secret after :func:`fold_base32`.
BASE32_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BASE32_FOLD = str.maketrans({"O": "0", "I": "1", "L": "1"})


def fold_base32(text: str) -> str:
    """What a keyboard-wedge scanner or a person typed, in canonical form.

    Strips whitespace and line ends (scanners end with Enter), dashes and
    spaces between groups, upper-cases, and maps look-alike letters.
    """
    return "".join(text.split()).replace("-", "").upper().translate(_BASE32_FOLD)


__all__ += ["BASE32_ALPHABET", "fold_base32"]


# --------------------------------------------------------------------------
# Storage (#5, G1-G3, D6)
# --------------------------------------------------------------------------


class StoragePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a tenant allows day-use storage of belongings (G1-G3, D6).

    Contributed by a plugin through ``pigeonhole_storage_policies``; the host
    enforces it when a storage reservation is made, extended or opened. With
    no policy, the tenant offers no storage.

    - ``modes``: ``"fixed"`` (exactly ``fixed_hours``), ``"flexible"`` (the
      person chooses, up to ``max_hours`` from the start, extensions included)
      and ``"open"`` (no end time: it lasts until someone ends it);
    - ``max_advance_hours``: how far ahead a reservation may start (0: now only);
    - ``reminder_minutes``: a ``storage.ending`` message this long before the
      end (0: none);
    - ``sizes``: the compartment sizes storage may use;
    - ``keep_for_deliveries``: per size, how many free compartments every bank
      keeps for deliveries only; storage never takes one of them (D6);
    - ``access_method``: the access method whose secret opens the compartment.
    """

    modes: tuple[str, ...] = ("fixed", "flexible", "open")
    fixed_hours: int = 8
    max_hours: int = 24
    max_advance_hours: int = 168
    reminder_minutes: int = 30
    sizes: tuple[str, ...] = ("xs", "s", "m", "l", "xl")
    keep_for_deliveries: dict[str, int] = {}
    access_method: str = "pin"


__all__ += ["StoragePolicy"]


# --------------------------------------------------------------------------
# Event subscribers: partner webhooks (#5, J2)
# --------------------------------------------------------------------------


class SubscriberResult(DeliveryResult, frozen=True):
    """What an event subscriber's delivery did; ``response_code``: the partner's HTTP status, if any."""

    response_code: int | None = None


class EventSubscriber(abc.ABC):
    """Something outside that hears about every custody event it wants (a partner's webhook).

    The host writes one delivery per event and interested subscriber in the
    transaction that appends the event (so a crash loses none) and calls
    ``deliver`` from a worker, retrying with backoff while the result says
    ``retry``. ``event.id`` is stable across retries: pass it as the
    idempotency key. ``package`` is the package as it was when the event
    happened (None for events about no package).
    """

    #: Unique among the tenant's subscribers, stable across restarts: deliveries are found by it.
    name: str

    def wants(self, kind: str) -> bool:
        """Whether this subscriber takes events of ``kind`` (e.g. ``package.deposited``)."""
        return True

    @abc.abstractmethod
    async def deliver(self, event: CustodyEvent, package: PackageView | None) -> DeliveryResult:
        """Deliver now; return ``SubscriberResult`` to report a response code. Raise to retry."""


__all__ += ["EventSubscriber", "SubscriberResult"]


# --------------------------------------------------------------------------
# Message events and tenant wording (#5, H2)
# --------------------------------------------------------------------------


class MessageWording(msgspec.Struct, frozen=True):
    """A subject and a body in the placeholder syntax of tenant wording (``$tracking_id``).

    The body is paragraphs separated by blank lines; a paragraph naming a value
    the message lacks is left out. Placeholders: the event's data keys (see
    docs/admin/messages.md), plus ``name``, ``event``, ``place`` and, for every
    ``<x>_at`` key, ``<x>`` written out as a date in the message's language.
    """

    subject: str
    body: str


class WordingDefaults(Protocol):
    """What a :class:`Channel` may also offer: its built-in words, in wording syntax.

    ``GET /message-templates`` shows them beside the tenant's own wording, so an
    administrator sees what they replace. A channel without it shows nothing.
    When the tenant has a wording, the host renders it into
    ``Notification.subject``/``text`` and the channel sends those instead.
    """

    def default_wording(self, event: str, language: str) -> MessageWording | None: ...


__all__ += ["MessageWording", "WordingDefaults"]


# --------------------------------------------------------------------------
# Channels: shared rooms and staff alerts (#5, H1)
# --------------------------------------------------------------------------

#: The recipient of what the host queues for the tenant's staff rooms (a Slack or
#: Teams channel): not a person, so no address. The host queues one message per
#: event for it (never one per person): the package events a room ``wants``, and
#: staff alerts as events ``alert.<kind>`` (``alert.door.forced``...). Its data
#: never carries ``code`` or ``qr``, and has ``recipient_name`` (whom the package is for).
MAILROOM = Recipient(name="#mailroom")

#: Data keys a shared room must never show: whoever reads the room could open the door.
ROOM_SECRETS = frozenset({"code", "qr", "link"})


def is_mailroom(recipient: Recipient) -> bool:
    """Whether ``recipient`` is the staff room (:data:`MAILROOM`) rather than a person."""
    return recipient == MAILROOM


class RoomChannel(Channel):
    """A channel that posts into a room staff share (Slack, Teams), not to a person.

    It reaches only :data:`MAILROOM`. Subclasses say which events the room carries
    with ``wants`` and build their text from :meth:`room_data`, which drops
    :data:`ROOM_SECRETS` even if a host bug let one through.
    """

    def reaches(self, recipient: Recipient) -> bool:
        return is_mailroom(recipient)

    @staticmethod
    def room_data(notification: Notification) -> dict[str, Any]:
        return {k: v for k, v in notification.data.items() if k not in ROOM_SECRETS}

    @staticmethod
    def room_view(notification: Notification, language: str):
        """The host's words for a room: ``(title, text, facts, footer)`` in ``language`` (en, fr).

        ``facts`` is a list of (label, value) pairs; the tenant's own wording
        (``subject``/``text``) wins, and secrets are masked even there.
        """
        from pigeonhole.messaging import rooms  # the words live with the host's messaging

        return rooms.room_view(notification, language)


__all__ += ["MAILROOM", "ROOM_SECRETS", "RoomChannel", "is_mailroom"]


# --------------------------------------------------------------------------
# Secrets in plugin configuration (#5)
# --------------------------------------------------------------------------

#: A configuration field that holds a secret (an API token, a password, a
#: signing key, a webhook URL that works as a bearer secret). Use it as the
#: field's type: ``auth_value: Secret | None = None``; add constraints with
#: another ``Annotated`` layer (``Annotated[Secret, msgspec.Meta(min_length=16)]``).
#: Its JSON schema says ``"writeOnly": true, "format": "password"``, which the
#: host reads to store the value sealed and to answer :data:`SECRET_PLACEHOLDER`
#: instead of it; the admin console draws a password input. The plugin's
#: instance receives the value in clear, as a plain ``str``.
Secret = Annotated[str, msgspec.Meta(extra_json_schema={"writeOnly": True, "format": "password"})]

#: What every API answer shows in place of a secret that is set (an unset
#: optional secret stays ``null``). Sent back in a configuration, it keeps the
#: stored value.
SECRET_PLACEHOLDER = "********"


__all__ += ["SECRET_PLACEHOLDER", "Secret"]
