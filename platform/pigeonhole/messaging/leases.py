"""Claiming a row to send it: the at-most-once half of an at-least-once outbox.

Notifications and subscriber deliveries are both sent by actors that may run
twice for one outbox row (a redelivered broker message, a relay republish
after a crash). The actor first claims the row with a conditional update: a
row still ``queued``, or ``sending`` whose holder's lease ran out. Only the
claimer sends; the lease bounds how long a dead worker can hold it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from uuid import UUID

from pigeonhole.db.tables import Outbox
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx


def lease() -> timedelta:
    return timedelta(seconds=float(os.environ.get("PIGEONHOLE_SEND_LEASE_SECONDS", "60")))


async def claim(ctx: Ctx, table, row_id: UUID) -> int | None:
    """Take the row for sending; return its attempt number, or None when someone else holds it.

    ``table`` has ``status``, ``lease_until`` and ``attempts`` columns.
    """
    now = clock.now()
    claimed = (
        await ctx.scope.update(
            table,
            {table.status: "sending", table.lease_until: now + lease(), table.attempts: table.attempts + 1},
        )
        .where(
            (table.id == row_id)
            & ((table.status == "queued") | ((table.status == "sending") & (table.lease_until < now)))
        )
        .returning(table.attempts)
    )
    return claimed[0]["attempts"] if claimed else None


async def mark_outbox_done(outbox_id: UUID) -> None:
    await Outbox.update({Outbox.done_at: clock.now()}).where(Outbox.id == outbox_id)


def retry_options(max_attempts: int) -> dict:
    """dramatiq options of a sending actor: exponential, jittered backoff from min to max.

    The environment can shorten the backoff (tests) or stretch it (milliseconds).
    """
    min_backoff = int(os.environ.get("PIGEONHOLE_RETRY_MIN_BACKOFF_MS", "1000"))
    max_backoff = int(os.environ.get("PIGEONHOLE_RETRY_MAX_BACKOFF_MS", "300000"))
    return {
        "max_retries": max_attempts,
        "min_backoff": min_backoff,
        "max_backoff": max(max_backoff, min_backoff),
        "time_limit": 120_000,
    }
