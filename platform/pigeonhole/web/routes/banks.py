"""Locker banks and compartments (D1-D3, D5), reservations ahead (E3), reopening (E6)."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from pigeonhole.domain import commands, lockers, packages, reservations
from pigeonhole.domain.context import Ctx, tenant_context
from pigeonhole.domain.errors import NotFound
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


def bank_out(row: dict, comps: list[dict] | None = None) -> s.Bank:
    return s.Bank(
        id=row["id"],
        location_id=row["location_id"],
        name=row["name"],
        loading=row["loading"],
        driver=row["driver"],
        driver_config=msgspec.json.decode(row["driver_config"]),
        settings=msgspec.json.decode(row["settings"]),
        created_at=row["created_at"],
        summary=lockers.summarize(comps) if comps is not None else None,
        compartments=s.out(s.Compartment, comps) if comps is not None else None,
    )


async def visible_bank(ctx: Ctx, caller: NamedDependency[Caller], bank_id: FromPath[UUID]) -> dict:
    """A kiosk sees its own bank only; any other is 'not found'."""
    if caller.actor.bank_id is not None and caller.actor.bank_id != bank_id:
        raise NotFound("Locker bank", bank_id)
    await scopes.check_bank(ctx, bank_id)
    return await lockers.get_bank(ctx, bank_id)


class BankController(Controller):
    path = "/api/v1/t/{tenant:str}/banks"
    tags = ["lockers"]

    @get("/")
    async def list_banks(
        self, caller: NamedDependency[Caller], location_id: FromQuery[UUID | None] = None
    ) -> list[s.Bank]:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await lockers.list_banks(ctx, location_id)
            if caller.actor.bank_id is not None:
                rows = [r for r in rows if r["id"] == caller.actor.bank_id]
            rows = await scopes.filter_rows(ctx, rows, "id", "bank")
            return [bank_out(r) for r in rows]

    @post("/")
    async def create_bank(self, caller: NamedDependency[Caller], data: JSONBody[s.BankIn]) -> s.Bank:
        require(caller, "banks:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_location(ctx, data.location_id)
            row = await lockers.create_bank(
                ctx,
                location_id=data.location_id,
                name=data.name,
                loading=data.loading,
                driver=data.driver,
                driver_config=data.driver_config,
                settings=data.settings,
                compartments_spec=[msgspec.to_builtins(c) for c in data.compartments],
            )
            return bank_out(row, await lockers.compartments(ctx, row["id"]))

    @get("/{bank_id:uuid}", summary="A bank with its compartments and a count by state")
    async def get_bank(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], status: FromQuery[str | None] = None
    ) -> s.Bank:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            row = await visible_bank(ctx, caller, bank_id)
            return bank_out(row, await lockers.compartments(ctx, bank_id, status))

    @patch("/{bank_id:uuid}")
    async def update_bank(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[s.BankPatch]
    ) -> s.Bank:
        require(caller, "banks:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await visible_bank(ctx, caller, bank_id)
            row = await lockers.update_bank(ctx, bank_id, **msgspec.structs.asdict(data))
            return bank_out(row)

    @delete("/{bank_id:uuid}")
    async def delete_bank(self, caller: NamedDependency[Caller], bank_id: FromPath[UUID]) -> None:
        require(caller, "banks:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await visible_bank(ctx, caller, bank_id)
            await lockers.delete_bank(ctx, bank_id)

    @get("/{bank_id:uuid}/compartments")
    async def list_compartments(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], status: FromQuery[str | None] = None
    ) -> list[s.Compartment]:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await visible_bank(ctx, caller, bank_id)
            return s.out(s.Compartment, await lockers.compartments(ctx, bank_id, status))

    @post("/{bank_id:uuid}/compartments", summary="Add compartments to a bank")
    async def add_compartments(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[s.CompartmentsIn]
    ) -> list[s.Compartment]:
        require(caller, "banks:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await visible_bank(ctx, caller, bank_id)
            rows = await lockers.add_compartments(
                ctx, bank_id, [msgspec.to_builtins(c) for c in data.compartments]
            )
            return s.out(s.Compartment, rows)

    @post(
        "/{bank_id:uuid}/compartments/{compartment_id:uuid}/service",
        summary="Take a compartment out of service or put it back (D3)",
        status_code=200,
    )
    async def set_service(
        self,
        caller: NamedDependency[Caller],
        bank_id: FromPath[UUID],
        compartment_id: FromPath[UUID],
        data: JSONBody[s.ServiceIn],
    ) -> s.Compartment:
        require(caller, "banks:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await visible_bank(ctx, caller, bank_id)
            row = await lockers.set_in_service(ctx, bank_id, compartment_id, data.in_service, data.note)
            return s.out(s.Compartment, row)

    @get("/{bank_id:uuid}/commands", summary="Door commands: sent, acknowledged, outcome")
    async def door_commands(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID]
    ) -> list[s.DoorCommandOut]:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await visible_bank(ctx, caller, bank_id)
            return s.out(s.DoorCommandOut, await commands.for_bank(ctx, bank_id))

    @get(
        "/{bank_id:uuid}/reservations",
        summary="Holds on the bank's compartments: delivery, return, exchange, storage (G4)",
    )
    async def list_reservations(
        self,
        caller: NamedDependency[Caller],
        bank_id: FromPath[UUID],
        status: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
    ) -> list[s.ReservationOut]:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await visible_bank(ctx, caller, bank_id)
            return s.out(s.ReservationOut, await reservations.for_bank(ctx, bank_id, status, kind))

    @patch(
        "/{bank_id:uuid}/compartments/{compartment_id:uuid}",
        summary="Dedicate a compartment to one contact or one department, or clear it (D5)",
    )
    async def dedicate(
        self,
        caller: NamedDependency[Caller],
        bank_id: FromPath[UUID],
        compartment_id: FromPath[UUID],
        data: JSONBody[s.CompartmentPatch],
    ) -> s.Compartment:
        require(caller, "banks:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await visible_bank(ctx, caller, bank_id)
            row = await lockers.dedicate(
                ctx, bank_id, compartment_id, data.dedicated_contact_id, data.dedicated_department_id
            )
            return s.out(s.Compartment, row)

    @post(
        "/{bank_id:uuid}/reservations",
        summary="Reserve a compartment ahead for one expected package (E3)",
        description=(
            "kind delivery: package_id (received, not yet in a locker) or tracking_id (not received "
            "yet, with size). The compartment is reserved until that package is deposited at this "
            "bank by the designated person (for_user; omitted: any operator), cancelled, or ends_at."
        ),
    )
    async def reserve_ahead(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], data: JSONBody[s.ReserveAheadIn]
    ) -> s.ReservationOut:
        require(caller, "packages:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await visible_bank(ctx, caller, bank_id)
            if data.package_id is not None:
                await scopes.check_package(ctx, data.package_id)
            if data.compartment_id is not None:
                await lockers.get_compartment(ctx, bank_id, data.compartment_id)
            row = await packages.reserve_ahead(ctx, bank_id, msgspec.structs.asdict(data))
            return s.out(s.ReservationOut, row)

    @delete(
        "/{bank_id:uuid}/reservations/{reservation_id:uuid}",
        summary="Cancel a compartment reserved ahead that no package has used yet (E3)",
        status_code=200,
    )
    async def cancel_reservation(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], reservation_id: FromPath[UUID]
    ) -> s.ReservationOut:
        require(caller, "packages:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await visible_bank(ctx, caller, bank_id)
            return s.out(s.ReservationOut, await packages.cancel_ahead(ctx, bank_id, reservation_id))

    @post(
        "/{bank_id:uuid}/compartments/{compartment_id:uuid}/reopen",
        summary="Reopen a compartment just after a deposit, within the bank's reopen window (E6)",
        status_code=200,
    )
    async def reopen(
        self, caller: NamedDependency[Caller], bank_id: FromPath[UUID], compartment_id: FromPath[UUID]
    ) -> s.ReopenOut:
        require(caller, "packages:write")

        async def check(ctx: Ctx, bank_id: UUID) -> None:
            await visible_bank(ctx, caller, bank_id)

        row = await packages.reopen(caller.tenant, caller.actor, bank_id, compartment_id, check)
        return s.ReopenOut(**row)
