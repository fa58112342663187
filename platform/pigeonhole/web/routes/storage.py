"""Reservations of every kind (G4, G5) and storage of belongings (G1-G3, D6)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from pigeonhole.domain import reservations, storage
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.errors import NotFound
from pigeonhole.domain.identity import scopes
from pigeonhole.web.auth import Caller, require


class ReservationView(msgspec.Struct):
    id: UUID
    kind: str
    status: str
    bank_id: UUID
    compartment_id: UUID
    starts_at: datetime
    ends_at: datetime | None
    created_by: str
    created_at: datetime
    ended_at: datetime | None
    package_id: UUID | None = None
    contact_id: UUID | None = None
    department_id: UUID | None = None
    mode: str | None = None
    max_ends_at: datetime | None = None
    opened_at: datetime | None = None
    updated_at: datetime | None = None
    door: int | None = None
    size: str | None = None
    compartment_status: str | None = None


class StorageIn(msgspec.Struct, forbid_unknown_fields=True):
    bank_id: UUID
    size: str
    mode: str
    contact_id: UUID | None = None
    department_id: UUID | None = None
    #: Reserve ahead (G2); omitted: now.
    starts_at: datetime | None = None
    #: The length: flexible mode (required), fixed mode (optional, must be the fixed length).
    hours: float | None = None


class ExtendIn(msgspec.Struct, forbid_unknown_fields=True):
    hours: float


class StorageOpenIn(msgspec.Struct, forbid_unknown_fields=True):
    #: The person opening it (the recipient app): the contact or a member of the department.
    contact_id: UUID | None = None


class StorageCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    method: str | None = None


class StorageOpened(msgspec.Struct):
    reservation_id: UUID
    door: int
    outcome: str
    opened_at: datetime
    ends_at: datetime | None = None


class StorageEnded(msgspec.Struct):
    reservation_id: UUID
    status: str
    compartment_status: str
    door: int | None = None


class StorageCleared(msgspec.Struct):
    reservation_id: UUID
    door: int
    outcome: str
    compartment_status: str


def _in_scope(reservation_id: UUID):
    """Outside the caller's scope a reservation answers 404 naming itself, never its bank."""

    async def check(ctx, bank_id: UUID) -> None:
        try:
            await scopes.check_bank(ctx, bank_id)
        except NotFound:
            raise NotFound("Reservation", reservation_id) from None

    return check


async def _views(ctx, rows: list[dict]) -> list[ReservationView]:
    return [msgspec.convert(await storage.describe(ctx, r), ReservationView) for r in rows]


class ReservationController(Controller):
    path = "/api/v1/t/{tenant:str}/reservations"
    tags = ["reservations"]

    @get("/", summary="Reservations of every kind (delivery, return, exchange, storage)")
    async def list_reservations(
        self,
        caller: NamedDependency[Caller],
        kind: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        bank_id: FromQuery[UUID | None] = None,
        contact_id: FromQuery[UUID | None] = None,
        department_id: FromQuery[UUID | None] = None,
        limit: FromQuery[int] = 100,
    ) -> list[ReservationView]:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            allowed = await scopes.allowed_banks(ctx)
            if caller.actor.bank_id is not None:
                allowed = {caller.actor.bank_id} if allowed is None else allowed & {caller.actor.bank_id}
            if bank_id is not None:
                allowed = {bank_id} if allowed is None else allowed & {bank_id}
            rows = await reservations.list_reservations(
                ctx,
                bank_ids=allowed,
                status=status,
                kind=kind,
                contact_id=contact_id,
                department_id=department_id,
                limit=limit,
            )
            return await _views(ctx, rows)

    @get("/{reservation_id:uuid}", summary="One reservation")
    async def get_reservation(
        self, caller: NamedDependency[Caller], reservation_id: FromPath[UUID]
    ) -> ReservationView:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            row = await reservations.get(ctx, reservation_id)
            await _in_scope(reservation_id)(ctx, row["bank_id"])
            if caller.actor.bank_id is not None and caller.actor.bank_id != row["bank_id"]:
                raise NotFound("Reservation", reservation_id)
            return (await _views(ctx, [row]))[0]

    @post(
        "/{reservation_id:uuid}/end",
        status_code=200,
        summary="End a reservation and free its compartment (G5)",
        description=(
            "Storage ends as POST /storage/reservations/{id}/end does (the door opens a last time). "
            "Another kind ends at once: its code dies and its compartment is available again, or "
            "'expired' when something was left in it (staff empty it). A delivery whose package is "
            "in the locker is refused (409): its pickup or removal ends it."
        ),
    )
    async def end_reservation(
        self, caller: NamedDependency[Caller], reservation_id: FromPath[UUID]
    ) -> StorageEnded:
        require(caller, "banks:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await reservations.get(ctx, reservation_id)
            await _in_scope(reservation_id)(ctx, row["bank_id"])
            if row["kind"] != storage.KIND:
                return StorageEnded(**await reservations.end_now(ctx, row))
        result = await storage.end(
            caller.tenant, caller.actor, reservation_id, check=_in_scope(reservation_id)
        )
        return StorageEnded(**result)


class StorageController(Controller):
    path = "/api/v1/t/{tenant:str}/storage/reservations"
    tags = ["storage"]

    @post(
        "/",
        summary="Reserve a compartment to store belongings (G1-G3)",
        description=(
            "For a contact or a department (shared by its members), now or ahead (starts_at), in a "
            "mode the tenant's storage policy allows: fixed, flexible (hours, up to the maximum) or "
            "open (no end). The compartment is held from now; its code reaches the contact or every "
            "member of the department in the storage.reserved message, never in this answer. "
            "422 names the rule a request breaks; 409 when no compartment of the size is free for "
            "storage (some are kept for deliveries, D6). Nothing changes on a refusal."
        ),
    )
    async def create(self, caller: NamedDependency[Caller], data: JSONBody[StorageIn]) -> ReservationView:
        require(caller, "storage:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_bank(ctx, data.bank_id)
            if caller.actor.bank_id is not None and caller.actor.bank_id != data.bank_id:
                raise NotFound("Locker bank", data.bank_id)
            row = await storage.create(
                ctx,
                bank_id=data.bank_id,
                size=data.size,
                mode=data.mode,
                contact_id=data.contact_id,
                department_id=data.department_id,
                starts_at=data.starts_at,
                hours=data.hours,
            )
            return (await _views(ctx, [row]))[0]

    @get("/", summary="Storage reservations")
    async def list_storage(
        self,
        caller: NamedDependency[Caller],
        status: FromQuery[str | None] = None,
        contact_id: FromQuery[UUID | None] = None,
        department_id: FromQuery[UUID | None] = None,
    ) -> list[ReservationView]:
        require(caller, "storage:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await reservations.list_reservations(
                ctx,
                bank_ids=await scopes.allowed_banks(ctx),
                status=status,
                kind=storage.KIND,
                contact_id=contact_id,
                department_id=department_id,
            )
            return await _views(ctx, rows)

    @get("/{reservation_id:uuid}", summary="One storage reservation")
    async def get_storage(
        self, caller: NamedDependency[Caller], reservation_id: FromPath[UUID]
    ) -> ReservationView:
        require(caller, "storage:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            row = await storage.get_storage(ctx, reservation_id)
            await _in_scope(reservation_id)(ctx, row["bank_id"])
            return (await _views(ctx, [row]))[0]

    @post(
        "/{reservation_id:uuid}/extend",
        status_code=200,
        summary="Extend a flexible storage reservation, up to its maximum from the start",
    )
    async def extend(
        self, caller: NamedDependency[Caller], reservation_id: FromPath[UUID], data: JSONBody[ExtendIn]
    ) -> ReservationView:
        require(caller, "storage:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await storage.get_storage(ctx, reservation_id)
            await _in_scope(reservation_id)(ctx, row["bank_id"])
            row = await storage.extend(ctx, reservation_id, data.hours)
            return (await _views(ctx, [row]))[0]

    @post(
        "/{reservation_id:uuid}/open",
        status_code=200,
        summary="Open the compartment during the reservation, to take or add things (G2)",
    )
    async def open_storage(
        self, caller: NamedDependency[Caller], reservation_id: FromPath[UUID], data: JSONBody[StorageOpenIn]
    ) -> StorageOpened:
        require(caller, "storage:write")
        result = await storage.open_reservation(
            caller.tenant,
            caller.actor,
            reservation_id,
            contact_id=data.contact_id,
            check=_in_scope(reservation_id),
        )
        return StorageOpened(**result)

    @post(
        "/{reservation_id:uuid}/end",
        status_code=200,
        summary="End the storage: the door opens a last time, the code dies, the compartment is freed",
    )
    async def end_storage(
        self, caller: NamedDependency[Caller], reservation_id: FromPath[UUID]
    ) -> StorageEnded:
        require(caller, "storage:write")
        result = await storage.end(
            caller.tenant, caller.actor, reservation_id, check=_in_scope(reservation_id)
        )
        return StorageEnded(**result)

    @post(
        "/{reservation_id:uuid}/clear",
        status_code=200,
        summary="Staff empty an expired storage compartment: its door opens, it is available again",
    )
    async def clear(self, caller: NamedDependency[Caller], reservation_id: FromPath[UUID]) -> StorageCleared:
        require(caller, "storage:write")
        result = await storage.clear(
            caller.tenant, caller.actor, reservation_id, check=_in_scope(reservation_id)
        )
        return StorageCleared(**result)


class StorageKioskController(Controller):
    path = "/api/v1/t/{tenant:str}/banks/{bank_id:uuid}/storage/open"
    tags = ["storage"]

    @post(
        "/",
        status_code=200,
        summary="At the kiosk: a storage code opens its compartment",
        description=(
            "The same walls as pickup codes: 403 for a wrong code (with the attempts left), 429 with "
            "Retry-After when the kiosk or the bank pauses code entry, 502 when the door did not open. "
            "A code before its reservation starts or after it ended is refused (403)."
        ),
    )
    async def open_with_code(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[StorageCodeIn]
    ) -> StorageOpened:
        require(caller, "pickup")
        if not scopes.whole_tenant(caller):
            async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
                await scopes.check_bank(ctx, bank_id)
        result = await storage.open_by_code(caller.tenant, caller.actor, bank_id, data.code, data.method)
        return StorageOpened(**result)


STORAGE_CONTROLLERS = [ReservationController, StorageController, StorageKioskController]

__all__ = ["STORAGE_CONTROLLERS"]
