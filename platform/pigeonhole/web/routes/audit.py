"""The tenant's audit log: who changed users, roles, keys, SSO and plugins."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.identity import audit, scopes
from pigeonhole.web.auth import Caller, require


class AuditEntryOut(msgspec.Struct):
    id: UUID
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target_type: str
    target_id: str
    data: dict[str, Any]


class AuditController(Controller):
    path = "/api/v1/t/{tenant:str}/audit"
    tags = ["users"]

    @get(
        "/",
        summary="Audit entries, newest first",
        description="Filters: action (exact, or a prefix ending in '.' or '*'), actor (label), actor_kind "
        "(user, api_key, platform, system), target_type, target_id, since/until (ISO 8601).",
    )
    async def entries(
        self,
        caller: NamedDependency[Caller],
        action: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        actor_kind: FromQuery[str | None] = None,
        target_type: FromQuery[str | None] = None,
        target_id: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: FromQuery[int] = 100,
        offset: FromQuery[int] = 0,
    ) -> list[AuditEntryOut]:
        require(caller, "audit:read")
        scopes.require_whole_tenant(caller, "read the audit log")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            rows = await audit.entries(
                ctx,
                action=action,
                actor=actor,
                actor_kind=actor_kind,
                target_type=target_type,
                target_id=target_id,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
        return [msgspec.convert(r, AuditEntryOut) for r in rows]
