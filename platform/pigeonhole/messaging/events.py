"""The catalog of message events: what each one means and what its wording may say.

Every message the platform sends is about one event (``package.ready``,
``storage.ending``...). This module is the one list of them, with the keys of
``Notification.data`` an emitter puts in each and a sample of that data. It is
used to validate a tenant's wording (H2: a placeholder that is not a key of the
event is refused), to preview it, and to document it (docs/admin/messages.md).

Besides the data keys, every wording may use the *derived* values the host
adds when it renders (:data:`DERIVED`): ``name`` (the recipient), ``event``,
``place`` (location name and address) and, for every key ending in ``_at``,
the same name without it written out as a date in the message's language
(``expires_at`` -> ``expires``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Keys of a value the emitter seals (a code, a link): in the message, never in the database after sending.
SECRET_KEYS = frozenset({"code", "qr", "link"})

#: Values the host adds to every message's data when it renders a wording.
DERIVED: dict[str, str] = {
    "name": "The recipient's name",
    "event": "The event's name (package.ready...)",
    "place": "The location's name and address, joined",
    "recipient_name": "Whom the package is for (the recipient's name unless the emitter says otherwise)",
}

LANGUAGES = ("en", "fr")

_PACKAGE: dict[str, str] = {
    "tenant_name": "The organization's name",
    "package_id": "The package's id",
    "tracking_id": "The carrier's tracking number (or the generated id of a package without a label)",
    "carrier": "The carrier",
    "bank_name": "The locker bank",
    "location_name": "The location of the bank",
    "location_address": "Its street address",
    "timezone": "The location's IANA time zone",
    "compartment": "The door number",
}

_PACKAGE_SAMPLE: dict[str, Any] = {
    "tenant_name": "Northwind Traders",
    "package_id": "3f2b6c1e-8a52-4b8e-9f4a-0c1d2e3f4a5b",
    "tracking_id": "1Z999AA10123456784",
    "carrier": "UPS",
    "bank_name": "HQ Lobby",
    "location_name": "Seattle HQ",
    "location_address": "1200 Harbor Ave SW, Seattle, WA 98126",
    "timezone": "America/Los_Angeles",
    "compartment": 12,
}

_SITE: dict[str, str] = {
    k: _PACKAGE[k]
    for k in ("tenant_name", "bank_name", "location_name", "location_address", "timezone", "compartment")
}
_SITE_SAMPLE: dict[str, Any] = {k: _PACKAGE_SAMPLE[k] for k in _SITE}
_STORAGE = {
    **_SITE,
    "reservation_id": "The reservation's id",
    "size": "The compartment's size",
    "mode": "fixed, flexible or open (no end)",
    "starts_at": "When the reservation starts",
    "ends_at": "When it ends (none for open-ended storage)",
}
_STORAGE_SAMPLE = {
    **_SITE_SAMPLE,
    "reservation_id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    "size": "m",
    "mode": "fixed",
    "starts_at": "2026-11-21T08:00:00-08:00",
    "ends_at": "2026-11-21T18:00:00-08:00",
}
_STORAGE_OPTIONAL = frozenset({"size", "mode", "starts_at", "ends_at"})

_EXPIRES = {"expires_at": "When the pickup code stops working (ISO 8601, the location's offset)"}
#: What a workflow timeline step adds (domain/workflow_steps.py).
_STEP = {"step": "The timeline step's name", "hours_waiting": "Hours since the package was deposited"}
_SAMPLE_STEP = {"step": "remind-1", "hours_waiting": 24}
_SAMPLE_EXPIRES = {"expires_at": "2026-11-26T17:00:00-08:00"}
_CODE = {
    "code": "The six-digit pickup code (sealed until sent)",
    "qr": "The QR token when the QR method is issued (sealed; email shows it as a QR image too)",
}
_SAMPLE_CODE = {"code": "482913", "qr": "qr_7Hq2V0bXkT9sL1mN4pR6wY8zA3cE5gJ"}

_STAFF_ALERT = {
    "tenant_name": "The organization's name",
    "alert_id": "The alert's id",
    "kind": "The alert's kind",
    "message": "What happened, in a sentence",
    "bank_name": "The locker bank",
    "location_name": "The location of the bank",
    "location_address": "Its street address",
    "timezone": "The location's IANA time zone",
    "door": "The door number, when one door is concerned",
    "package_id": "The package concerned, if any",
    "command_id": "The door command concerned, if any",
    "raised_at": "When the alert was raised",
}


@dataclass(frozen=True)
class MessageEvent:
    name: str
    description: str
    #: data key -> what it holds
    keys: dict[str, str]
    #: sample data for previews (every key of ``keys``)
    sample: dict[str, Any]
    #: "recipient" (the person a package, return or storage is for) or "staff"
    audience: str = "recipient"
    #: keys an emitter may leave out (a paragraph naming a missing one is left out)
    optional: frozenset[str] = field(default_factory=frozenset)

    def placeholders(self) -> dict[str, str]:
        """Every name a wording of this event may use, with what it holds."""
        out = dict(self.keys)
        out.update(DERIVED)
        for key in self.keys:
            if key.endswith("_at"):
                out[key[:-3]] = f"{self.keys[key]}, written out in the message's language"
        return out


def _event(name, description, keys, sample, **kw) -> MessageEvent:
    missing = set(keys) - set(sample)
    assert not missing, f"{name}: no sample for {missing}"
    return MessageEvent(name, description, keys, sample, **kw)


EVENTS: dict[str, MessageEvent] = {
    e.name: e
    for e in [
        _event(
            "package.ready",
            "A package is in a locker: the pickup code (and the QR code where issued)",
            {
                **_PACKAGE,
                **_CODE,
                **_EXPIRES,
                "compartments": "Every door number, when the package takes several compartments",
                "added_to_existing": "True when the package joined a compartment the recipient already has",
            },
            {
                **_PACKAGE_SAMPLE,
                **_SAMPLE_CODE,
                **_SAMPLE_EXPIRES,
                "compartments": [12, 13],
                "added_to_existing": False,
            },
            optional=frozenset({"qr", "compartments", "added_to_existing", "expires_at"}),
        ),
        _event(
            "package.reminder",
            "The package is still waiting (reminder n of the workflow's total)",
            {
                **_PACKAGE,
                **_EXPIRES,
                **_STEP,
                "reminder": "This reminder's number (1, 2, 3...)",
                "reminders": "How many reminders the workflow sends",
            },
            {**_PACKAGE_SAMPLE, **_SAMPLE_EXPIRES, **_SAMPLE_STEP, "reminder": 2, "reminders": 3},
            optional=frozenset({"reminder", "reminders", "expires_at", "step", "hours_waiting"}),
        ),
        _event(
            "package.escalated",
            "The package has waited too long; sent to the recipient and the escalation contacts",
            {**_PACKAGE, **_EXPIRES, **_STEP},
            {**_PACKAGE_SAMPLE, **_SAMPLE_EXPIRES, **_SAMPLE_STEP, "hours_waiting": 48},
            optional=frozenset({"expires_at", "step"}),
        ),
        _event(
            "package.expired",
            "The pickup time is over: the code no longer works, the package goes to the counter or shelf",
            {
                **_PACKAGE,
                **_EXPIRES,
                **_STEP,
                "destination": "Where the package waits now: counter or shelf",
                "counter_hours": "The counter's opening hours, when the site gives them",
            },
            {
                **_PACKAGE_SAMPLE,
                **_SAMPLE_EXPIRES,
                **_SAMPLE_STEP,
                "hours_waiting": 120,
                "destination": "counter",
                "counter_hours": "Mon-Fri 9:00-17:00",
            },
            optional=frozenset({"counter_hours", "destination", "expires_at", "step", "hours_waiting"}),
        ),
        _event(
            "package.removed",
            "Staff took the package out of the locker; it waits at the counter or on the shelf",
            {
                **_PACKAGE,
                "destination": "Where the package waits now: counter or shelf",
                "counter_hours": "The counter's opening hours, when the site gives them",
            },
            {**_PACKAGE_SAMPLE, "destination": "shelf", "counter_hours": "Mon-Fri 9:00-17:00"},
            optional=frozenset({"counter_hours", "destination"}),
        ),
        _event(
            "package.at_counter",
            "An oversized or special package waits at the counter, not in a locker (E9)",
            {
                **_PACKAGE,
                "reason": "Why it is at the counter (oversized...)",
                "destination": "counter",
                "counter_hours": "The counter's opening hours, when the site gives them",
            },
            {
                **_PACKAGE_SAMPLE,
                "reason": "oversized",
                "destination": "counter",
                "counter_hours": "Mon-Fri 9:00-17:00",
            },
            optional=frozenset({"counter_hours", "reason", "compartment", "bank_name", "destination"}),
        ),
        _event(
            "package.code_replaced",
            "A new pickup code replaced a forgotten one; the old code no longer works (F5)",
            {**_PACKAGE, **_CODE, **_EXPIRES},
            {**_PACKAGE_SAMPLE, **_SAMPLE_CODE, **_SAMPLE_EXPIRES},
            optional=frozenset({"qr", "expires_at"}),
        ),
        _event(
            "package.picked_up",
            "The package was picked up",
            {**_PACKAGE, "picked_up_at": "When it was picked up"},
            {**_PACKAGE_SAMPLE, "picked_up_at": "2026-11-23T12:41:00-08:00"},
        ),
        _event(
            "return.created",
            "A return was booked: the drop-off code for the locker",
            {
                **_PACKAGE,
                **_CODE,
                "reservation_id": "The return's reservation id",
                "ends_at": "Until when the drop-off code works",
                "exchange": "True when the return is part of an exchange",
            },
            {
                **_PACKAGE_SAMPLE,
                **_SAMPLE_CODE,
                "tracking_id": "RET-20261121-0042",
                "carrier": "USPS",
                "reservation_id": "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a",
                "ends_at": "2026-11-28T17:00:00-08:00",
                "exchange": False,
            },
            optional=frozenset({"qr", "reservation_id", "ends_at", "compartment", "exchange"}),
        ),
        _event(
            "return.deposited",
            "The return is in the locker, waiting for the carrier",
            {**_PACKAGE, "reservation_id": "The return's reservation id"},
            {
                **_PACKAGE_SAMPLE,
                "tracking_id": "RET-20261121-0042",
                "carrier": "USPS",
                "reservation_id": "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a",
            },
            optional=frozenset({"reservation_id", "compartment"}),
        ),
        _event(
            "storage.reserved",
            "A storage compartment is reserved: the code that opens it",
            {**_STORAGE, **_CODE},
            {**_STORAGE_SAMPLE, **_SAMPLE_CODE},
            optional=_STORAGE_OPTIONAL | {"qr"},
        ),
        _event(
            "storage.ending",
            "A storage reservation ends soon",
            {**_STORAGE, "minutes_left": "Minutes until it ends"},
            {**_STORAGE_SAMPLE, "minutes_left": 30},
            optional=_STORAGE_OPTIONAL - {"ends_at"},
        ),
        _event(
            "storage.ended",
            "A storage reservation ended (by its holder, or because its time ran out)",
            {**_STORAGE, "why": "ended (the holder ended it) or expired (its time ran out)"},
            {**_STORAGE_SAMPLE, "why": "expired"},
            optional=_STORAGE_OPTIONAL,
        ),
        _event(
            "delivery.preadvised",
            "A partner announced a delivery to a locker (a compartment may be reserved for it)",
            {
                **_PACKAGE,
                "expected_at": "When the delivery is expected, when the partner says",
            },
            {**_PACKAGE_SAMPLE, "expected_at": "2026-11-22T10:00:00-08:00"},
            optional=frozenset({"expected_at", "compartment"}),
        ),
        _event(
            "account.welcome",
            "A staff account was created: the link to choose a first password",
            {
                "tenant_name": "The organization's name",
                "email": "The account's address",
                "link": "The single-use set-password link (sealed)",
                "expires_at": "When the link stops working",
                "user_id": "The account's id",
            },
            {
                "tenant_name": "Northwind Traders",
                "email": "ann@northwind.example",
                "link": "https://lockers.example/t/northwind/password?token=sample",
                "expires_at": "2026-11-28T09:00:00+00:00",
                "user_id": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            },
            audience="staff",
        ),
        _event(
            "account.password_reset",
            "Someone asked to reset a staff password: the reset link",
            {
                "tenant_name": "The organization's name",
                "email": "The account's address",
                "link": "The single-use reset link (sealed)",
                "expires_at": "When the link stops working",
                "user_id": "The account's id",
            },
            {
                "tenant_name": "Northwind Traders",
                "email": "ann@northwind.example",
                "link": "https://lockers.example/t/northwind/password?token=sample",
                "expires_at": "2026-11-21T10:00:00+00:00",
                "user_id": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            },
            audience="staff",
        ),
        _event(
            "directory.import_failed",
            "A scheduled directory import failed (to the schedule's alert addresses)",
            {
                "tenant_name": "The organization's name",
                "schedule_name": "The schedule",
                "kind": "What it imports (contacts, users, locations)",
                "source": "Where it reads from",
                "status": "The run's status",
                "message": "Why it failed",
                "import_id": "The import run's id",
                "failed_at": "When",
            },
            {
                "tenant_name": "Northwind Traders",
                "schedule_name": "HR nightly",
                "kind": "contacts",
                "source": "sftp://hr@sftp.example:22/exports/people.csv",
                "status": "refused",
                "message": "Line 4: Duplicate Personnel ID 'P-1' (lines 2 and 4)",
                "import_id": "0b7e0c1e-0000-4000-8000-000000000001",
                "failed_at": "2026-11-21T03:00:00+00:00",
            },
            audience="staff",
        ),
        *[
            _event(
                f"alert.{kind}",
                f"A {kind} alert to the tenant's staff: {what}",
                _STAFF_ALERT,
                {
                    "tenant_name": "Northwind Traders",
                    "alert_id": "7c6b5a4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
                    "kind": kind,
                    "message": sentence,
                    "bank_name": "HQ Lobby",
                    "location_name": "Seattle HQ",
                    "location_address": "1200 Harbor Ave SW, Seattle, WA 98126",
                    "timezone": "America/Los_Angeles",
                    "door": 7,
                    "package_id": None,
                    "command_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "raised_at": "2026-11-21T14:05:00-08:00",
                },
                audience="staff",
                optional=frozenset({"door", "bank_name", "package_id", "command_id", "location_address"}),
            )
            for kind, what, sentence in (
                ("door.forced", "a door opened with no command", "Door 7 of HQ Lobby opened with no command"),
                (
                    "door.left_open",
                    "a door stayed open too long",
                    "Door 7 of HQ Lobby has been open for 5 minutes",
                ),
                (
                    "command.unknown_outcome",
                    "nobody knows whether a commanded door opened",
                    "Nobody knows whether door 7 of HQ Lobby opened",
                ),
                (
                    "command.outcome_differs",
                    "the agent reported another outcome than recorded",
                    "The agent reports door 7 of HQ Lobby jammed; the server had recorded it opened",
                ),
            )
        ],
    ]
}


def get(name: str) -> MessageEvent | None:
    return EVENTS.get(name)


def date_keys(data: dict[str, Any]) -> list[str]:
    return [k for k in data if k.endswith("_at")]
