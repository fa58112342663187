"""Alerts (a forced door, a door left open, an unknown outcome) and their acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from pigeonhole.domain import alerts
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.errors import NotFound
from pigeonhole.domain.identity import scopes
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


class AlertOut(msgspec.Struct):
    id: UUID
    kind: str
    message: str
    bank_id: UUID | None
    door: int | None
    compartment_id: UUID | None
    package_id: UUID | None
    command_id: UUID | None
    data: dict[str, Any]
    raised_at: datetime
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    open: bool


class AcknowledgeIn(s.Strict):
    note: Annotated[str, Meta(max_length=500)] = ""


async def _visible(ctx, caller: Caller, rows: list[dict]) -> list[dict]:
    if caller.actor.bank_id is not None:
        rows = [r for r in rows if r["bank_id"] == caller.actor.bank_id]
    return await scopes.filter_rows(ctx, rows, "bank_id", "bank")


class AlertController(Controller):
    path = "/api/v1/t/{tenant:str}/alerts"
    tags = ["agents"]

    @get("/", summary="Alerts, newest first: open (default), acknowledged or all")
    async def list_alerts(
        self,
        caller: NamedDependency[Caller],
        status: FromQuery[str] = "open",
        bank_id: FromQuery[UUID | None] = None,
    ) -> list[AlertOut]:
        require(caller, "events:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await alerts.list_alerts(ctx, status=status, bank_id=bank_id)
            return s.out(AlertOut, await _visible(ctx, caller, rows))

    @get("/{alert_id:uuid}")
    async def get_alert(self, caller: NamedDependency[Caller], alert_id: FromPath[UUID]) -> AlertOut:
        require(caller, "events:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            row = await alerts.get_alert(ctx, alert_id)
            if not await _visible(ctx, caller, [row]):
                raise NotFound("Alert", alert_id)
            return s.out(AlertOut, row)

    @post("/{alert_id:uuid}/acknowledge", summary="Someone has looked at it", status_code=200)
    async def acknowledge(
        self, caller: NamedDependency[Caller], alert_id: FromPath[UUID], data: JSONBody[AcknowledgeIn]
    ) -> AlertOut:
        require(caller, "doors:open")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            row = await alerts.get_alert(ctx, alert_id)
            if not await _visible(ctx, caller, [row]):
                raise NotFound("Alert", alert_id)
            return s.out(AlertOut, await alerts.acknowledge(ctx, alert_id, data.note))
