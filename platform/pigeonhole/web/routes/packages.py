"""Receiving, depositing and following packages (E1-E6, E9, E10, F6)."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from pigeonhole.domain import custody, packages, partner
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.directory import custom_fields
from pigeonhole.domain.errors import Invalid
from pigeonhole.domain.identity import scopes
from pigeonhole.messaging import notify
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require
from pigeonhole.web.routes.directory import custom_filters


def package_out(row: dict, door: dict | None = None) -> s.Package:
    out = s.out(s.Package, {k: v for k, v in row.items() if not k.startswith("_")})
    if door is not None:
        out.door = s.Door(**door)
    return out


async def packages_out(ctx, rows: list[dict], door: dict | None = None) -> list[s.Package]:
    """Packages with their custom field values (directory, #6)."""
    values = await custom_fields.load(ctx, "packages", [r["id"] for r in rows])
    return [package_out({**r, "custom": values[r["id"]]}, door) for r in rows]


class PackageController(Controller):
    path = "/api/v1/t/{tenant:str}/packages"
    tags = ["packages"]

    @post(
        "/",
        summary="Receive a package; with bank_id, assign a compartment and open its door",
        description=(
            "Without bank_id the package is received and waits for a locker. With bank_id the "
            "smallest free compartment that fits is reserved and its door opened through the agent; "
            "when none is free the answer is 409 and nothing is recorded. A compartment reserved "
            "ahead for the package is used (E3); the recipient's dedicated compartment comes first "
            "(D5), then one they already have at the bank (E4, door.added_to_existing; "
            "fresh_compartment asks for a new one). Without tracking_id (or with no_barcode) the "
            "platform generates one (E5). An oversized package, or one no compartment can hold, "
            "waits at the counter (status at_counter, E9). A recipient with accessibility needs "
            "only gets doors 35-123 cm from the floor (E10)."
        ),
    )
    async def receive(self, caller: NamedDependency[Caller], data: JSONBody[s.PackageIn]) -> s.Package:
        require(caller, "packages:write")
        body = msgspec.to_builtins(data)
        body["bank_id"] = data.bank_id
        body["compartment_id"] = data.compartment_id
        body["recipient_contact_id"] = data.recipient_contact_id
        body["department_id"] = data.department_id
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            if data.bank_id is not None:
                await scopes.check_bank(ctx, data.bank_id)
            elif not scopes.whole_tenant(caller):
                raise Invalid(
                    "You act at some locations only: receive the package into a bank there (give bank_id)"
                )
            expected = await partner.find_expected(ctx, data.tracking_id) if data.tracking_id else None
            if expected is not None:
                # A pre-advised delivery (J2) arrives at the desk: it becomes that package,
                # not a second one, and keeps any compartment held for it.
                arrival = {"tracking_id": data.tracking_id, "bank_id": data.bank_id}
                arrival["compartment_id"] = data.compartment_id
                package, comp, command_id, bank = await partner.arrive(ctx, arrival)
            else:
                package, comp, command_id, bank = await packages.receive(ctx, body)
            if comp is None:
                return (await packages_out(ctx, [package]))[0]
        door = await packages.open_for_deposit(
            caller.tenant, caller.actor, package["id"], bank, comp, command_id
        )
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return (await packages_out(ctx, [await packages.get_package(ctx, package["id"])], door))[0]

    @post("/{package_id:uuid}/deposit", summary="Put a received package into a bank", status_code=200)
    async def deposit(
        self, caller: NamedDependency[Caller], package_id: FromPath[UUID], data: JSONBody[s.DepositIn]
    ) -> s.Package:
        require(caller, "packages:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await scopes.check_package(ctx, package_id)
            await scopes.check_bank(ctx, data.bank_id)
            comp, command_id, bank = await packages.assign(
                ctx,
                package_id,
                data.bank_id,
                data.compartment_id,
                oversized=data.oversized,
                fresh=data.fresh_compartment,
            )
            if comp is None:  # E9: at the counter
                return (await packages_out(ctx, [await packages.get_package(ctx, package_id)]))[0]
        door = await packages.open_for_deposit(
            caller.tenant, caller.actor, package_id, bank, comp, command_id
        )
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return (await packages_out(ctx, [await packages.get_package(ctx, package_id)], door))[0]

    @get("/")
    async def list_packages(
        self,
        caller: NamedDependency[Caller],
        request: Request,
        status: FromQuery[str | None] = None,
        tracking_id: FromQuery[str | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
        flagged: FromQuery[bool | None] = None,
        recipient_contact_id: FromQuery[UUID | None] = None,
        department_id: FromQuery[UUID | None] = None,
    ) -> list[s.Package]:
        """``flagged=true`` lists the packages the mailroom must look at (e.g. recipient deactivated);
        ``custom.<key>=value`` filters by a custom field (#6)."""
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await packages.list_packages(
                ctx,
                status=status,
                tracking_id=tracking_id,
                limit=limit,
                offset=offset,
                flagged=flagged,
                recipient_contact_id=recipient_contact_id,
                department_id=department_id,
                bank_ids=await scopes.allowed_banks(ctx),
                custom=custom_filters(request),
            )
            return await packages_out(ctx, rows)

    @get("/{package_id:uuid}")
    async def get_package(self, caller: NamedDependency[Caller], package_id: FromPath[UUID]) -> s.Package:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await scopes.check_package(ctx, package_id)
            return (await packages_out(ctx, [await packages.get_package(ctx, package_id)]))[0]

    @get("/{package_id:uuid}/events", summary="The package's chain of custody")
    async def events(self, caller: NamedDependency[Caller], package_id: FromPath[UUID]) -> list[s.Event]:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await scopes.check_package(ctx, package_id)
            await packages.get_package(ctx, package_id)
            return s.out(s.Event, await custody.for_package(ctx, package_id))

    @get(
        "/{package_id:uuid}/notifications", summary="Every message about the package and its delivery status"
    )
    async def notifications(
        self, caller: NamedDependency[Caller], package_id: FromPath[UUID]
    ) -> list[s.NotificationOut]:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await scopes.check_package(ctx, package_id)
            await packages.get_package(ctx, package_id)
            return s.out(s.NotificationOut, await notify.for_package(ctx, package_id))
