"""Bodies and answers of the REST API, as msgspec Structs.

Every request body is decoded into one of these, so a wrong type or a missing
field is refused by msgspec with a message naming the field, before any
handler code runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Size = Literal["xs", "s", "m", "l", "xl"]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


# --- hierarchy ----------------------------------------------------------------


class EnterpriseIn(Strict):
    name: Name


class Enterprise(msgspec.Struct):
    id: UUID
    slug: str
    name: str
    status: str


class DivisionIn(Strict):
    name: Name


class Division(msgspec.Struct):
    id: UUID
    name: str
    created_at: datetime


class LocationIn(Strict):
    division_id: UUID
    name: Name
    address: str = ""
    region: str = ""
    timezone: str = "UTC"
    custom: dict[str, Any] = {}


class LocationPatch(Strict):
    name: Name | None = None
    division_id: UUID | None = None
    address: str | None = None
    region: str | None = None
    timezone: str | None = None
    custom: dict[str, Any] | None = None


class Location(msgspec.Struct):
    id: UUID
    division_id: UUID
    name: str
    address: str
    region: str
    timezone: str
    created_at: datetime
    custom: dict[str, Any] = {}


# --- banks and compartments -----------------------------------------------------


class CompartmentIn(Strict):
    door: Annotated[int, Meta(ge=1, le=10_000)]
    size: Size
    door_height_cm: Annotated[int, Meta(ge=0, le=300)] = 100
    refrigerated: bool = False


class BankIn(Strict):
    location_id: UUID
    name: Name
    driver: Name
    loading: Literal["front", "rear"] = "front"
    driver_config: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    compartments: list[CompartmentIn] = []


class BankPatch(Strict):
    name: Name | None = None
    loading: Literal["front", "rear"] | None = None
    driver: Name | None = None
    driver_config: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None


class CompartmentsIn(Strict):
    compartments: list[CompartmentIn]


class ServiceIn(Strict):
    in_service: bool
    note: Annotated[str, Meta(max_length=500)] = ""


class Compartment(msgspec.Struct):
    id: UUID
    bank_id: UUID
    door: int
    size: str
    door_height_cm: int
    refrigerated: bool
    status: str
    package_id: UUID | None
    status_note: str
    updated_at: datetime
    #: D5: the one contact or department this compartment takes packages for
    dedicated_contact_id: UUID | None = None
    dedicated_department_id: UUID | None = None


class CompartmentPatch(Strict):
    """D5: dedicate a compartment to one contact or one department; both null clears it."""

    dedicated_contact_id: UUID | None = None
    dedicated_department_id: UUID | None = None


class ReserveAheadIn(Strict):
    """E3: hold a compartment for one expected package."""

    kind: Literal["delivery"] = "delivery"
    package_id: UUID | None = None
    tracking_id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    size: Size | None = None
    compartment_id: UUID | None = None
    #: the designated person (a staff user's or an API key's id); omitted: any operator
    for_user: UUID | None = None
    ends_at: datetime | None = None
    #: for a package not received yet whose recipient needs an accessible door (E10)
    accessible: bool = False


class ReopenOut(msgspec.Struct):
    door: int
    outcome: str
    package_id: UUID
    command_id: UUID


class Bank(msgspec.Struct):
    id: UUID
    location_id: UUID
    name: str
    loading: str
    driver: str
    driver_config: dict[str, Any]
    settings: dict[str, Any]
    created_at: datetime
    summary: dict[str, int] | None = None
    compartments: list[Compartment] | None = None


class ReservationOut(msgspec.Struct):
    id: UUID
    bank_id: UUID
    compartment_id: UUID
    package_id: UUID | None
    kind: str
    status: str
    starts_at: datetime
    ends_at: datetime | None
    created_by: str
    created_at: datetime
    ended_at: datetime | None
    #: E3: a delivery reserved ahead: the expected tracking id and who may use it
    tracking_id: str | None = None
    designated_to: str | None = None
    #: G1-G4 (0012): who it is for, the storage mode, the latest end, the last opening
    contact_id: UUID | None = None
    department_id: UUID | None = None
    mode: str | None = None
    max_ends_at: datetime | None = None
    opened_at: datetime | None = None
    updated_at: datetime | None = None


# --- packages -------------------------------------------------------------------


class RecipientIn(Strict):
    name: Name
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    language: Literal["en", "fr"] = "en"
    #: E10: needs a door 35 to 123 cm from the floor
    accessible: bool = False


class PackageIn(Strict):
    carrier: Annotated[str, Meta(min_length=1, max_length=100)]
    size: Size
    #: E5: omitted (or no_barcode) when the barcode cannot be read: the platform makes one
    tracking_id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    # One of: inline recipient, a directory contact, a department (directory, #6).
    recipient: RecipientIn | None = None
    recipient_contact_id: UUID | None = None
    department_id: UUID | None = None
    bank_id: UUID | None = None
    compartment_id: UUID | None = None
    custom: dict[str, Any] = {}
    no_barcode: bool = False
    #: E9: goes to the counter instead of a compartment (when the bank allows it)
    oversized: bool = False
    #: E4: a new compartment even when the recipient already has one at the bank
    fresh_compartment: bool = False


class DepositIn(Strict):
    bank_id: UUID
    compartment_id: UUID | None = None
    oversized: bool = False
    fresh_compartment: bool = False


class Door(msgspec.Struct, omit_defaults=True):
    door: int
    outcome: str
    #: E4: the package joined a compartment its recipient already has (shown only when true)
    added_to_existing: bool = False


class Package(msgspec.Struct):
    id: UUID
    tracking_id: str
    carrier: str
    size: str
    status: str
    recipient_name: str
    recipient_email: str | None
    recipient_phone: str | None
    recipient_language: str
    bank_id: UUID | None
    compartment_id: UUID | None
    received_by: str
    received_at: datetime
    deposited_at: datetime | None
    ready_at: datetime | None
    expires_at: datetime | None
    picked_up_at: datetime | None
    picked_up_by: str | None
    pickup_method: str | None
    recipient_contact_id: UUID | None = None
    department_id: UUID | None = None
    mailroom_flag: str | None = None
    #: workflows (#5): where an expired package goes when removed ("counter" | "shelf")
    destination: str | None = None
    custom: dict[str, Any] = {}
    door: Door | None = None
    accessible: bool = False
    #: partner (#5, K1/G4): "delivery", or "return" (a customer drops it off, a carrier collects it)
    direction: str = "delivery"


class Event(msgspec.Struct):
    id: UUID
    kind: str
    at: datetime
    actor: str
    method: str | None
    package_id: UUID | None
    bank_id: UUID | None
    compartment_id: UUID | None
    data: dict[str, Any]


class NotificationOut(msgspec.Struct):
    id: UUID
    package_id: UUID | None
    event: str
    channel: str
    recipient: dict[str, Any]
    language: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class DoorCommandOut(msgspec.Struct):
    id: UUID
    bank_id: UUID
    kind: str
    doors: list[int]
    requested_by: str
    created_at: datetime
    acked_at: datetime | None
    completed_at: datetime | None
    outcome: dict[str, str] | None
    #: pending (no answer yet), done, unknown (no_answer: nobody knows), reconciled
    state: str = "done"
    #: what the agent (or an operator) said later: outcome per door, or "unknown"
    reconciled_outcome: dict[str, str] | str | None = None
    reconciled_at: datetime | None = None
    reconciled_by: str | None = None


# --- pickup -----------------------------------------------------------------------


class PickupIn(Strict):
    code: Annotated[str, Meta(min_length=1, max_length=64)]
    method: Name = "pin"
    package_id: UUID | None = None


class PickupOut(msgspec.Struct):
    package_id: UUID
    tracking_id: str
    door: int
    outcome: str
    picked_up_at: datetime
    method: str


# --- plugins and keys -----------------------------------------------------------------


class PluginIn(Strict):
    config: dict[str, Any] = {}


class PluginOut(msgspec.Struct):
    name: str
    distribution: str
    version: str
    description: str
    enabled: bool
    config: dict[str, Any] | None
    config_schema: dict[str, Any]


class ApiKeyIn(Strict):
    name: Name
    role: Literal["admin", "operator", "kiosk", "agent"]
    bank_id: UUID | None = None
    # identity (#3): narrow the key to some of its role's permissions, and to
    # divisions/locations (omitted: the role's permissions, the creator's scope)
    permissions: list[str] | None = None
    divisions: list[UUID] | None = None
    locations: list[UUID] | None = None


class ApiKeyOut(msgspec.Struct):
    id: UUID
    name: str
    role: str
    bank_id: UUID | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    key: str | None = None
    permissions: list[str] | None = None
    scope: dict | None = None
    created_by: str = ""


def out(cls, row: dict | list):
    if isinstance(row, list):
        return [msgspec.convert(r, cls, from_attributes=False) for r in row]
    return msgspec.convert(row, cls)
