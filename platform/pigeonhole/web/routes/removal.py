"""Expired packages: taking them out of the lockers (G5), and a package's timeline (H3, H4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from pigeonhole.domain import packages, timers, workflow_steps
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


class RemovedOut(msgspec.Struct):
    package_id: UUID
    tracking_id: str
    door: int
    destination: str
    #: at_counter or in_storage
    status: str
    outcome: str


class RemovalFailedOut(msgspec.Struct):
    package_id: UUID
    door: int
    outcome: str


class RemovalOut(msgspec.Struct):
    bank_id: UUID
    command_id: UUID | None
    removed: list[RemovedOut]
    #: doors that did not open: their packages stay expired in the locker
    failed: list[RemovalFailedOut]


class TimerOut(msgspec.Struct):
    id: UUID
    action: str
    step: str
    due_at: datetime
    #: pending, fired, skipped (the package was no longer waiting), cancelled or failed
    status: str
    done_at: datetime | None
    attempts: int
    error: str | None
    data: dict[str, Any]


class ExpiredRemovalController(Controller):
    path = "/api/v1/t/{tenant:str}/banks/{bank_id:uuid}/expired"
    tags = ["packages"]

    @post(
        "/remove",
        summary="Open every door holding an expired package and record the packages removed (G5)",
        description=(
            "Every package of the bank that expired (its code is dead, its compartment still holds it) "
            "is taken out: the doors open through the agent in one command, each package becomes "
            "at_counter or in_storage as its workflow decided at expiry, and its compartment is free "
            "again. A door that does not open leaves its package expired, listed under failed."
        ),
        status_code=200,
    )
    async def remove_expired(self, caller: NamedDependency[Caller], bank_id: FromPath[UUID]) -> RemovalOut:
        require(caller, "packages:write")
        report = await workflow_steps.remove(caller.tenant, caller.actor, bank_id, check=scopes.check_bank)
        return msgspec.convert(report, RemovalOut)


class PackageRemovalController(Controller):
    path = "/api/v1/t/{tenant:str}/packages/{package_id:uuid}"
    tags = ["packages"]

    @post(
        "/remove",
        summary="Take one expired package out of its locker (G5)",
        status_code=200,
    )
    async def remove_one(self, caller: NamedDependency[Caller], package_id: FromPath[UUID]) -> s.Package:
        require(caller, "packages:write")
        await workflow_steps.remove(
            caller.tenant, caller.actor, package_id=package_id, check=scopes.check_package
        )
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(s.Package, await packages.get_package(ctx, package_id))

    @get(
        "/timeline",
        summary="The package's scheduled steps (reminders, escalation, expiry) and what became of them",
    )
    async def timeline(self, caller: NamedDependency[Caller], package_id: FromPath[UUID]) -> list[TimerOut]:
        require(caller, "packages:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await scopes.check_package(ctx, package_id)
            await packages.get_package(ctx, package_id)
            return msgspec.convert(await timers.for_package(ctx, package_id), list[TimerOut])


CONTROLLERS = [ExpiredRemovalController, PackageRemovalController]
