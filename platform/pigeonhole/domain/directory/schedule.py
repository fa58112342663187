"""Scheduled SFTP imports (C3) and directory sync (C5).

A tenant keeps any number of schedules; each names an SFTP source, a kind of
import, how often to poll, and whether people missing from the file are
deactivated (directory sync). Every server and worker process runs
:func:`run_loop`; a poll is claimed by moving ``next_run_at`` forward in one
UPDATE, so two processes never poll one schedule at the same time.

A file still being written is never imported: a poll imports the file only
when its size and modification time are those the previous poll saw (the
previous poll then comes back after ``PIGEONHOLE_IMPORT_SETTLE_SECONDS``
rather than after the whole interval), and :mod:`.sftp` checks them again
after the download. A file already imported (same size and time) is not
imported again. See docs/decisions/0023-scheduled-sftp-imports.md.

Failures (server unreachable, key refused, a refused file) are recorded as
import runs (``GET .../directory/imports``), shown on the schedule, and
mailed to the schedule's alert addresses and to the tenant's users who may
import, through the tenant's notification channels.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

import msgspec

from pigeonhole.api import Recipient
from pigeonhole.db.engine import system_tx
from pigeonhole.db.tables import ImportSchedule, Notification, Outbox, Tenant
from pigeonhole.domain import clock
from pigeonhole.domain.context import Actor, Ctx, TenantInfo, tenant_by_id, tenant_context
from pigeonhole.domain.directory import csvfile, imports, sftp
from pigeonhole.domain.directory.csvfile import FileTooLarge
from pigeonhole.domain.errors import Conflict, Invalid, NotFound
from pigeonhole.messaging import relay
from pigeonhole.security.secrets import seal, unseal

log = logging.getLogger(__name__)

ALERT_EVENT = "directory.import_failed"
MIN_INTERVAL, MAX_INTERVAL = 5, 7 * 24 * 60
#: A claimed poll that never finished (its process died) is retried after this.
CLAIM = timedelta(minutes=15)


def poll_seconds() -> float:
    """How often a process looks for due schedules; 0 turns the loop off."""
    return float(os.environ.get("PIGEONHOLE_IMPORT_POLL_SECONDS", "30"))


def settle_seconds() -> float:
    """How soon a poll that saw a new or growing file looks again."""
    return float(os.environ.get("PIGEONHOLE_IMPORT_SETTLE_SECONDS", "60"))


# --- the schedules --------------------------------------------------------------------

FIELDS = (
    "id",
    "name",
    "kind",
    "host",
    "port",
    "username",
    "host_key",
    "remote_path",
    "interval_minutes",
    "deactivate_missing",
    "alert_emails",
    "enabled",
    "next_run_at",
    "last_run_at",
    "last_status",
    "last_message",
    "created_at",
    "updated_at",
)


def out(row: dict) -> dict:
    data = {k: row[k] for k in FIELDS}
    data["alert_emails"] = json.loads(row["alert_emails"])
    data["source"] = _source(row, private_key="").label
    return data


def _source(row: dict, private_key: str) -> sftp.Source:
    return sftp.Source(
        host=row["host"],
        port=row["port"],
        username=row["username"],
        private_key=private_key,
        host_key=row["host_key"],
        path=row["remote_path"],
    )


def _clean(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}

    def text(key: str, limit: int) -> None:
        if key in data and data[key] is not None:
            value = str(data[key]).strip()
            if not value:
                raise Invalid(f"{key} must not be empty")
            if len(value) > limit:
                raise Invalid(f"{key} has at most {limit} characters")
            values[key] = value
        elif not partial:
            raise Invalid(f"{key} is required")

    text("name", 100)
    text("host", 255)
    text("username", 100)
    text("remote_path", 1000)
    if "kind" in data and data["kind"] is not None:
        if data["kind"] not in imports.KINDS:
            raise Invalid(f"kind must be one of {', '.join(imports.KINDS)} (got '{data['kind']}')")
        values["kind"] = data["kind"]
    elif not partial:
        values["kind"] = "contacts"
    if data.get("port") is not None:
        if not 1 <= int(data["port"]) <= 65535:
            raise Invalid("port must be between 1 and 65535")
        values["port"] = int(data["port"])
    if data.get("interval_minutes") is not None:
        minutes = int(data["interval_minutes"])
        if not MIN_INTERVAL <= minutes <= MAX_INTERVAL:
            raise Invalid(f"interval_minutes must be between {MIN_INTERVAL} and {MAX_INTERVAL} (one week)")
        values["interval_minutes"] = minutes
    elif not partial:
        raise Invalid("interval_minutes is required")
    if data.get("private_key") is not None:
        try:
            sftp.check_private_key(data["private_key"])
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        values["private_key"] = seal(data["private_key"])
    elif not partial:
        raise Invalid("private_key is required (the key the server accepts for this user)")
    if data.get("host_key") is not None:
        try:
            sftp.check_host_key(data["host_key"])
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        values["host_key"] = data["host_key"].strip()
    elif not partial:
        raise Invalid("host_key is required (the server's public key, as in its known_hosts line)")
    if data.get("alert_emails") is not None:
        emails = []
        for email in data["alert_emails"]:
            email = (email or "").strip()
            local, _, domain = email.partition("@")
            if not local or "." not in domain or " " in email:
                raise Invalid(f"alert_emails: '{email}' is not an email address")
            emails.append(email)
        values["alert_emails"] = json.dumps(emails)
    for flag in ("deactivate_missing", "enabled"):
        if data.get(flag) is not None:
            values[flag] = bool(data[flag])
    kind = values.get("kind", data.get("_current_kind"))
    if values.get("deactivate_missing") and kind not in (None, "contacts"):
        raise Invalid("deactivate_missing is only for imports of contacts (directory sync)")
    return values


async def list_schedules(ctx: Ctx) -> list[dict]:
    return [out(r) for r in await ctx.scope.select(ImportSchedule).order_by(ImportSchedule.name)]


async def _row(ctx: Ctx, schedule_id: UUID) -> dict:
    row = await ctx.scope.select(ImportSchedule).where(ImportSchedule.id == schedule_id).first()
    if row is None:
        raise NotFound("Import schedule", schedule_id)
    return row


async def get(ctx: Ctx, schedule_id: UUID) -> dict:
    return out(await _row(ctx, schedule_id))


async def _name_free(ctx: Ctx, name: str, except_id: UUID | None = None) -> None:
    query = ctx.scope.exists(ImportSchedule).where(ImportSchedule.name == name)
    if except_id is not None:
        query = query.where(ImportSchedule.id != except_id)
    if await query:
        raise Conflict(f"An import schedule named '{name}' already exists")


async def create(ctx: Ctx, data: dict[str, Any]) -> dict:
    values = _clean(data, partial=False)
    await _name_free(ctx, values["name"])
    now = clock.now()
    row = {
        "id": uuid.uuid4(),
        "port": 22,
        "deactivate_missing": False,
        "alert_emails": "[]",
        "enabled": True,
        **values,
        "next_run_at": now,
        "created_at": now,
        "updated_at": now,
    }
    await ctx.scope.insert(ImportSchedule, row)
    return await get(ctx, row["id"])


async def update(ctx: Ctx, schedule_id: UUID, data: dict[str, Any]) -> dict:
    current = await _row(ctx, schedule_id)
    values = _clean({**data, "_current_kind": current["kind"]}, partial=True)
    if values.get("deactivate_missing") is None and values.get("kind", "contacts") != "contacts":
        values["deactivate_missing"] = False
    if "name" in values:
        await _name_free(ctx, values["name"], except_id=schedule_id)
    if any(k in values for k in ("host", "port", "username", "remote_path")):
        values.update(seen=None, imported=None)  # another file: forget what the old one looked like
    if values:
        values["updated_at"] = clock.now()
        if values.get("enabled"):
            values["next_run_at"] = clock.now()
        await ctx.scope.update(
            ImportSchedule, {getattr(ImportSchedule, k): v for k, v in values.items()}
        ).where(ImportSchedule.id == schedule_id)
    return await get(ctx, schedule_id)


async def delete(ctx: Ctx, schedule_id: UUID) -> None:
    """The schedule goes; the history of its imports stays (no longer linked to it)."""
    from pigeonhole.db.tables import ImportRun

    await _row(ctx, schedule_id)
    await ctx.scope.update(ImportRun, {ImportRun.schedule_id: None}).where(
        ImportRun.schedule_id == schedule_id
    )
    await ctx.scope.delete(ImportSchedule).where(ImportSchedule.id == schedule_id)


# --- one poll ---------------------------------------------------------------------------


async def poll(tenant: TenantInfo, schedule_id: UUID) -> dict:
    """Look at the schedule's file once and import it if it is complete and new.

    Returns ``{"status", "message", "import_id"}``; status is one of imported,
    refused, failed, waiting (the file is new or still changing), unchanged
    (already imported), missing (no file yet).
    """
    async with tenant_context(tenant, write=False) as ctx:
        row = await _row(ctx, schedule_id)
    private_key = unseal(row["private_key"])
    previous = sftp.RemoteFile.from_dict(json.loads(row["seen"]) if row["seen"] else None)
    done = sftp.RemoteFile.from_dict(json.loads(row["imported"]) if row["imported"] else None)
    source = _source(row, private_key or "")
    actor = Actor(name=f"schedule {row['name']}", role="system")
    seen, imported = previous, done
    result: dict[str, Any] = {"import_id": None}
    interval = timedelta(minutes=row["interval_minutes"])
    next_in = interval

    async def record_failure(message: str):
        report = imports.Report(kind=row["kind"], source="sftp", filename=source.label, status="failed")
        report.message = message
        report.deactivate_missing = row["deactivate_missing"]
        await imports._record(tenant, report, actor, clock.now(), row["id"])
        return report.import_id

    try:
        if private_key is None:
            raise sftp.SftpFailed(
                "The schedule's private key cannot be unsealed (the server's secret key changed?); enter it again"
            )
        stable = lambda current: current == previous and current != done  # noqa: E731
        current, data = await sftp.poll(source, fetch_if=stable, limit=csvfile.max_bytes())
    except sftp.SftpFailed as exc:
        result.update(status="failed", message=str(exc), import_id=await record_failure(str(exc)))
    except FileTooLarge as exc:
        too_large = exc

        async def refuse():
            raise too_large

        result.update(await _import(tenant, actor, row, source, refuse))
        seen = imported = getattr(exc, "remote", None)  # refused once; a new version is looked at again
    else:
        seen = current
        if current is None:
            result.update(status="missing", message=f"No file at {source.label} yet")
        elif data is None and current == done:
            result.update(status="unchanged", message="The file has not changed since it was imported")
        elif data is None:
            result.update(
                status="waiting",
                message="The file is new or still changing; it is imported once two polls see it unchanged",
            )
            next_in = min(interval, timedelta(seconds=settle_seconds()))
        else:

            async def read():
                return await asyncio.to_thread(csvfile.read_bytes, [data])

            result.update(await _import(tenant, actor, row, source, read))
            if result["status"] in ("imported", "refused"):
                imported = current  # a refused file is reported once, not at every poll
    now = clock.now()
    async with tenant_context(tenant) as ctx:
        await ctx.scope.update(
            ImportSchedule,
            {
                ImportSchedule.seen: json.dumps(seen.as_dict()) if seen else None,
                ImportSchedule.imported: json.dumps(imported.as_dict()) if imported else None,
                ImportSchedule.last_run_at: now,
                ImportSchedule.last_status: result["status"],
                ImportSchedule.last_message: result["message"][:2000],
                ImportSchedule.next_run_at: now + next_in,
            },
        ).where(ImportSchedule.id == row["id"])
        repeated = (row["last_status"], row["last_message"]) == (result["status"], result["message"][:2000])
        if result["status"] in ("failed", "refused") and not repeated:
            await _alert(ctx, row, source, result)  # once per failure, not at every poll of a dead server
    return result


async def _import(tenant, actor, row, source, read) -> dict:
    try:
        report = await imports.run(
            tenant,
            actor,
            row["kind"],
            read,
            source="sftp",
            filename=source.label,
            deactivate_missing=row["deactivate_missing"],
            schedule_id=row["id"],
        )
    except imports.ImportRefused as exc:
        return {"status": "refused", "message": exc.report.message, "import_id": exc.report.import_id}
    except Exception as exc:  # recorded as a failed run by imports.run
        log.exception("scheduled import %s failed", row["id"])
        return {
            "status": "failed",
            "message": f"The import failed: {type(exc).__name__}: {exc}",
            "import_id": None,
        }
    return {"status": "imported", "message": report.message, "import_id": report.import_id}


async def _admin_recipients(ctx: Ctx, row: dict) -> list[Recipient]:
    """The schedule's alert addresses, and the tenant's active users who may import."""
    emails = {e.lower(): Recipient(name=e, email=e) for e in json.loads(row["alert_emails"])}
    try:
        from pigeonhole.db.tables import AppUser, Role
        from pigeonhole.domain.identity import roles
    except ImportError:  # identity not installed in this build
        return list(emails.values())
    may_import = {
        r["id"] for r in await ctx.scope.select(Role) if "directory:import" in roles.role_permissions(r)
    }
    if may_import:
        for user in await ctx.scope.select(AppUser.name, AppUser.email).where(
            (AppUser.status == "active") & AppUser.role_id.is_in(list(may_import))
        ):
            emails.setdefault(user["email"].lower(), Recipient(name=user["name"], email=user["email"]))
    return list(emails.values())


async def _alert(ctx: Ctx, row: dict, source: sftp.Source, result: dict) -> None:
    """One notification per administrator and channel, sent after commit like every other."""
    now = clock.now()
    data = {
        "tenant_name": ctx.tenant.name,
        "schedule_name": row["name"],
        "kind": row["kind"],
        "source": source.label,
        "status": result["status"],
        "message": result["message"],
        "import_id": str(result["import_id"]) if result["import_id"] else "",
        "failed_at": now.isoformat(timespec="seconds"),
    }
    queued = False
    for recipient in await _admin_recipients(ctx, row):
        for channel in ctx.plugins.channels():
            if not channel.reaches(recipient):
                continue
            notification_id = uuid.uuid4()
            await ctx.scope.insert(
                Notification,
                dict(
                    id=notification_id,
                    package_id=None,
                    event=ALERT_EVENT,
                    channel=channel.name,
                    recipient=msgspec.json.encode(recipient).decode(),
                    language=recipient.language,
                    data=json.dumps(data),
                    status="queued",
                    created_at=now,
                ),
            )
            await Outbox.insert(
                Outbox(
                    id=uuid.uuid4(),
                    tenant_id=ctx.tenant_id,
                    actor="deliver_notification",
                    payload=json.dumps({"notification_id": str(notification_id)}),
                    created_at=now,
                )
            )
            queued = True
    if queued:
        ctx.scope.on_commit(relay.nudge)


# --- the loop every server and worker runs ------------------------------------------------


async def _claim(tenant: TenantInfo, row: dict) -> bool:
    now = clock.now()
    async with tenant_context(tenant) as ctx:
        claimed = (
            await ctx.scope.update(ImportSchedule, {ImportSchedule.next_run_at: now + CLAIM})
            .where(
                (ImportSchedule.id == row["id"])
                & (ImportSchedule.next_run_at == row["next_run_at"])
                & (ImportSchedule.enabled == True)  # noqa: E712
            )
            .returning(ImportSchedule.id)
        )
    return bool(claimed)


async def run_due() -> int:
    """Poll every due schedule of every active tenant once; returns how many were polled."""
    async with system_tx(write=False):
        tenant_ids = [r["id"] for r in await Tenant.select(Tenant.id).where(Tenant.status == "active")]
    polled = 0
    for tenant_id in tenant_ids:
        tenant = await tenant_by_id(tenant_id)
        if tenant is None or tenant.status != "active":
            continue
        async with tenant_context(tenant, write=False) as ctx:
            due = await ctx.scope.select(ImportSchedule.id, ImportSchedule.next_run_at).where(
                (ImportSchedule.enabled == True) & (ImportSchedule.next_run_at <= clock.now())  # noqa: E712
            )
        for row in due:
            if not await _claim(tenant, row):
                continue  # another process took it
            try:
                await poll(tenant, row["id"])
            except Exception:
                log.exception("scheduled import %s of tenant %s failed", row["id"], tenant.slug)
            polled += 1
    return polled


async def run_loop(stop: asyncio.Event) -> None:
    period = poll_seconds()
    if period <= 0:
        return
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=period)
            return
        except TimeoutError:
            pass
        try:
            await run_due()
        except Exception:
            log.exception("the import schedule loop failed; retrying")
