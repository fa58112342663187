"""Durable timers: work that must happen at a moment, exactly once, across restarts.

A timer is a row (``timer``, a tenant table): an ``action`` naming a handler,
the moment it is due, what it is about (a package or a reservation) and a
little data. :func:`schedule` writes it inside the caller's transaction, so a
schedule exists exactly when the change that made it committed (a deposit
materializes its whole timeline then: the expiry told to the recipient never
moves when an administrator later changes the configuration).

Every server and worker process runs :func:`run_loop`, which calls
:func:`tick` every ``PIGEONHOLE_TICK_SECONDS`` (default 5; 0 turns it off).
A tick looks for due timers tenant by tenant and handles each in its tenant's
own transaction, which first *claims* it with a conditional update
(``pending`` -> ``fired``). Claim, handler and the handler's outbox rows
commit together: two processes ticking at once never fire one timer twice,
and a process dying mid-handler rolls everything back, the timer is pending
again and the next tick fires it. See docs/decisions/0024-durable-timers.md.

Handlers register with :func:`action`::

    @timers.action("storage.ending")
    async def ending(ctx, timer: dict) -> bool | None:
        ...

and return ``False`` (or raise :class:`Skip`) when the subject is no longer
in the state the timer was for (a package already picked up): the timer is
then marked ``skipped``. Any other return marks it ``fired``. A handler that
raises is rolled back and retried later (back-off, at most ``MAX_ATTEMPTS``
times, then ``failed``, with the error kept on the row).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from pigeonhole.db.engine import system_tx
from pigeonhole.db.tables import Tenant, Timer
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx, TenantInfo, tenant_by_id, tenant_context

log = logging.getLogger(__name__)

STATUSES = ("pending", "fired", "skipped", "cancelled", "failed")
#: Modules that register handlers; the tick imports them (missing ones are skipped).
HANDLER_MODULES = ["pigeonhole.domain.workflow_steps", "pigeonhole.domain.storage", "pigeonhole.domain.packages"]
MAX_ATTEMPTS = 5

Handler = Callable[[Ctx, dict], Awaitable[Any]]
_handlers: dict[str, Handler] = {}
_imported = False


class Skip(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a handler: the subject is no longer in the expected state; mark the timer skipped."""


def tick_seconds() -> float:
    """How often a process looks for due timers; 0 turns the loop off."""
    return float(os.environ.get("PIGEONHOLE_TICK_SECONDS", "5"))


def action(name: str) -> Callable[[Handler], Handler]:
    """Register ``async def handler(ctx, timer) -> None | bool`` for timers of ``action=name``."""

    def register(fn: Handler) -> Handler:
        _handlers[name] = fn
        return fn

    return register


def _load_handlers() -> None:
    global _imported
    if _imported:
        return
    for module in HANDLER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    _imported = True


# --- scheduling (inside the caller's transaction) ---------------------------------------


async def schedule(
    ctx: Ctx,
    *,
    action: str,
    due_at: datetime,
    package_id: UUID | None = None,
    reservation_id: UUID | None = None,
    step: str = "",
    data: dict | None = None,
    seq: int = 0,
) -> UUID:
    """A timer due at ``due_at``; committed with the caller's transaction. Returns its id."""
    timer_id = uuid.uuid4()
    await ctx.scope.insert(
        Timer,
        dict(
            id=timer_id,
            action=action,
            step=step,
            seq=seq,
            package_id=package_id,
            reservation_id=reservation_id,
            due_at=due_at,
            next_try_at=due_at,
            status="pending",
            data=msgspec.json.encode(data or {}).decode(),
            created_at=clock.now(),
        ),
    )
    return timer_id


async def cancel(ctx: Ctx, *, package_id: UUID | None = None, reservation_id: UUID | None = None) -> int:
    """Cancel the pending timers of a package or reservation; returns how many."""
    if package_id is None and reservation_id is None:
        raise ValueError("cancel needs a package_id or a reservation_id")
    where = Timer.status == "pending"
    if package_id is not None:
        where &= Timer.package_id == package_id
    if reservation_id is not None:
        where &= Timer.reservation_id == reservation_id
    rows = (
        await ctx.scope.update(Timer, {Timer.status: "cancelled", Timer.done_at: clock.now()})
        .where(where)
        .returning(Timer.id)
    )
    return len(rows)


def out(row: dict) -> dict:
    """A timer as the API shows it."""
    return {
        "id": row["id"],
        "action": row["action"],
        "step": row["step"],
        "due_at": row["due_at"],
        "status": row["status"],
        "done_at": row["done_at"],
        "attempts": row["attempts"],
        "error": row["last_error"],
        "data": msgspec.json.decode(row["data"]),
    }


async def for_package(ctx: Ctx, package_id: UUID) -> list[dict]:
    rows = await ctx.scope.select(Timer).where(Timer.package_id == package_id).order_by(Timer.due_at)
    return [out(r) for r in sorted(rows, key=lambda r: (r["due_at"], r["seq"]))]


# --- the tick ------------------------------------------------------------------------


def _decode(row: dict) -> dict:
    timer = dict(row)
    timer["data"] = msgspec.json.decode(row["data"])
    return timer


async def _fire(tenant: TenantInfo, row: dict) -> str | None:
    """Claim and handle one timer in one transaction; returns its new status (None: not ours)."""
    handler = _handlers.get(row["action"])
    now = clock.now()
    async with tenant_context(tenant) as ctx:
        claimed = (
            await ctx.scope.update(Timer, {Timer.status: "fired", Timer.done_at: now})
            .where((Timer.id == row["id"]) & (Timer.status == "pending"))
            .returning(Timer.id)
        )
        if not claimed:
            return None  # another process fired, or someone cancelled it
        if handler is None:
            raise LookupError(f"no handler registered for timer action '{row['action']}'")
        try:
            result = await handler(ctx, _decode(row))
        except Skip:
            result = False
        if result is False:
            await ctx.scope.update(Timer, {Timer.status: "skipped"}).where(Timer.id == row["id"])
            return "skipped"
        return "fired"


async def _failed(tenant: TenantInfo, row: dict, error: BaseException) -> None:
    attempts = row["attempts"] + 1
    values: dict = {Timer.attempts: attempts, Timer.last_error: f"{type(error).__name__}: {error}"[:1000]}
    if attempts >= MAX_ATTEMPTS:
        values[Timer.status] = "failed"
        values[Timer.done_at] = clock.now()
    else:
        values[Timer.next_try_at] = clock.now() + timedelta(minutes=2**attempts)
    async with tenant_context(tenant) as ctx:
        await ctx.scope.update(Timer, values).where((Timer.id == row["id"]) & (Timer.status == "pending"))


async def _due(tenant: TenantInfo, now: datetime, limit: int) -> list[dict]:
    async with tenant_context(tenant, write=False) as ctx:
        rows = (
            await ctx.scope.select(Timer)
            .where((Timer.status == "pending") & (Timer.next_try_at <= now))
            .order_by(Timer.next_try_at)
            .limit(limit)
        )
    # One package's steps in their timeline order, even when several came due together.
    return sorted(rows, key=lambda r: (r["due_at"], r["seq"]))


async def tick(limit: int = 500) -> int:
    """Fire every timer due by ``clock.now()`` in every active tenant; returns how many this call handled.

    Safe to run in any number of processes at once.
    """
    _load_handlers()
    now = clock.now()
    async with system_tx(write=False):
        tenant_ids = [r["id"] for r in await Tenant.select(Tenant.id).where(Tenant.status == "active")]
    handled = 0
    for tenant_id in tenant_ids:
        tenant = await tenant_by_id(tenant_id)
        if tenant is None or tenant.status != "active":
            continue
        while handled < limit:
            rows = await _due(tenant, now, limit - handled)
            if not rows:
                break
            progressed = 0
            for row in rows:
                try:
                    status = await _fire(tenant, row)
                except Exception as exc:
                    log.exception("timer %s (%s) of tenant %s failed", row["id"], row["action"], tenant.slug)
                    await _failed(tenant, row, exc)
                    continue
                if status is not None:
                    handled += 1
                    progressed += 1
            if progressed == 0 or len(rows) < limit:
                break
    return handled


async def run_loop(stop: asyncio.Event) -> None:
    """Tick every ``PIGEONHOLE_TICK_SECONDS`` until ``stop`` is set."""
    period = tick_seconds()
    if period <= 0:
        return
    while not stop.is_set():
        try:
            await tick()
        except Exception:
            log.exception("the timer tick failed; retrying")
        try:
            await asyncio.wait_for(stop.wait(), timeout=period)
            return
        except TimeoutError:
            pass
