"""Receiving, depositing and following packages (E1, E2, F6)."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from pigeonhole.domain import custody, packages
from pigeonhole.domain.context import tenant_context
from pigeonhole.messaging import notify
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


def package_out(row: dict, door: dict | None = None) -> s.Package:
    out = s.out(s.Package, {k: v for k, v in row.items() if not k.startswith("_")})
    if door is not None:
        out.door = s.Door(**door)
    return out


class PackageController(Controller):
    path = "/api/v1/t/{tenant:str}/packages"
    tags = ["packages"]

    @post(
        "/",
        summary="Receive a package; with bank_id, assign a compartment and open its door",
        description=(
            "Without bank_id the package is received and waits for a locker. With bank_id the "
            "smallest free compartment that fits is reserved and its door opened through the agent; "
            "when none is free the answer is 409 and nothing is recorded."
        ),
    )
    async def receive(self, caller: NamedDependency[Caller], data: JSONBody[s.PackageIn]) -> s.Package:
        require(caller, "packages:write")
        body = msgspec.to_builtins(data)
        body["bank_id"] = data.bank_id
        body["compartment_id"] = data.compartment_id
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            package, comp, command_id, bank = await packages.receive(ctx, body)
        if comp is None:
            return package_out(package)
        door = await packages.open_for_deposit(
            caller.tenant, caller.actor, package["id"], bank, comp, command_id
        )
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return package_out(await packages.get_package(ctx, package["id"]), door)

    @post("/{package_id:uuid}/deposit", summary="Put a received package into a bank", status_code=200)
    async def deposit(
        self, caller: NamedDependency[Caller], package_id: FromPath[UUID], data: JSONBody[s.DepositIn]
    ) -> s.Package:
        require(caller, "packages:write")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            comp, command_id, bank = await packages.assign(ctx, package_id, data.bank_id, data.compartment_id)
        door = await packages.open_for_deposit(
            caller.tenant, caller.actor, package_id, bank, comp, command_id
        )
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return package_out(await packages.get_package(ctx, package_id), door)

    @get("/")
    async def list_packages(
        self,
        caller: NamedDependency[Caller],
        status: FromQuery[str | None] = None,
        tracking_id: FromQuery[str | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
    ) -> list[s.Package]:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await packages.list_packages(
                ctx, status=status, tracking_id=tracking_id, limit=limit, offset=offset
            )
            return [package_out(r) for r in rows]

    @get("/{package_id:uuid}")
    async def get_package(self, caller: NamedDependency[Caller], package_id: FromPath[UUID]) -> s.Package:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return package_out(await packages.get_package(ctx, package_id))

    @get("/{package_id:uuid}/events", summary="The package's chain of custody")
    async def events(self, caller: NamedDependency[Caller], package_id: FromPath[UUID]) -> list[s.Event]:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
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
            await packages.get_package(ctx, package_id)
            return s.out(s.NotificationOut, await notify.for_package(ctx, package_id))
