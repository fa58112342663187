"""Door commands across banks (ack and outcome, reconciliation) and remote open (D4)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from pigeonhole.domain import commands, doors
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.errors import Invalid, NotFound
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require

STATES = ("pending", "done", "unknown", "reconciled")


class ResolveIn(s.Strict):
    #: what a person saw at the door
    door_opened: bool
    note: Annotated[str, Meta(min_length=1, max_length=500)]


class RemoteOpenIn(s.Strict):
    #: why: recorded in the chain of custody
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class RemoteOpenOut(msgspec.Struct):
    command_id: UUID
    bank_id: UUID
    compartment_id: UUID
    door: int
    outcome: Literal["opened", "already_open"]
    package_id: UUID | None
    reason: str


async def _visible_command(ctx, caller: Caller, command_id: UUID) -> dict:
    row = await commands.get_command(ctx, command_id)
    if caller.actor.bank_id is not None and caller.actor.bank_id != row["bank_id"]:
        raise NotFound("Door command", command_id)
    try:
        await scopes.check_bank(ctx, row["bank_id"])
    except NotFound:
        raise NotFound("Door command", command_id) from None
    return row


class CommandController(Controller):
    path = "/api/v1/t/{tenant:str}/commands"
    tags = ["lockers"]

    @get("/", summary="Door commands of every bank: sent, acknowledged, outcome, reconciled")
    async def list_commands(
        self,
        caller: NamedDependency[Caller],
        status: FromQuery[str | None] = None,
        bank_id: FromQuery[UUID | None] = None,
    ) -> list[s.DoorCommandOut]:
        """``status``: pending, done, unknown or reconciled."""
        require(caller, "banks:read")
        if status is not None and status not in STATES:
            raise Invalid(f"Unknown command status '{status}' (statuses: {', '.join(STATES)})")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await commands.list_commands(ctx, state_=status, bank_id=bank_id)
            if caller.actor.bank_id is not None:
                rows = [r for r in rows if r["bank_id"] == caller.actor.bank_id]
            return s.out(s.DoorCommandOut, await scopes.filter_rows(ctx, rows, "bank_id", "bank"))

    @get("/{command_id:uuid}")
    async def get_command(
        self, caller: NamedDependency[Caller], command_id: FromPath[UUID]
    ) -> s.DoorCommandOut:
        require(caller, "banks:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            return s.out(s.DoorCommandOut, await _visible_command(ctx, caller, command_id))

    @post(
        "/{command_id:uuid}/resolve",
        summary="Settle a command whose outcome no agent will report, from what a person saw",
        status_code=200,
    )
    async def resolve(
        self, caller: NamedDependency[Caller], command_id: FromPath[UUID], data: JSONBody[ResolveIn]
    ) -> s.DoorCommandOut:
        require(caller, "doors:open")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            await _visible_command(ctx, caller, command_id)
        row = await commands.resolve(caller.tenant, caller.actor, command_id, data.door_opened, data.note)
        return s.out(s.DoorCommandOut, row)


class RemoteOpenController(Controller):
    path = "/api/v1/t/{tenant:str}/banks/{bank_id:uuid}/compartments/{compartment_id:uuid}/open"
    tags = ["lockers"]

    @post(
        "/",
        summary="Open a compartment from afar (D4), with a reason for the chain of custody",
        status_code=200,
    )
    async def remote_open(
        self,
        caller: NamedDependency[Caller],
        bank_id: FromPath[UUID],
        compartment_id: FromPath[UUID],
        data: JSONBody[RemoteOpenIn],
    ) -> RemoteOpenOut:
        require(caller, "doors:open")
        # The scope check runs inside the command's own transaction: one transaction fewer per open.
        opened = await doors.remote_open(
            caller.tenant, caller.actor, bank_id, compartment_id, data.reason, check=scopes.check_bank
        )
        return s.out(RemoteOpenOut, opened)
