"""The outbox relay: moves committed outbox rows to the broker.

At least once: a row is marked published after the broker took the message,
and published again if no actor has marked it done within
``outbox_redeliver_seconds`` (a worker may have died holding it). Actors are
idempotent, so a second delivery of the same row does nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import dramatiq
import msgspec
from piccolo.engine.postgres import PostgresEngine

from pigeonhole.db.engine import get_engine, system_tx
from pigeonhole.db.tables import Outbox
from pigeonhole.domain import clock

log = logging.getLogger(__name__)

_wake: asyncio.Event | None = None
_wake_loop: asyncio.AbstractEventLoop | None = None


def nudge() -> None:
    """Wake the relay now instead of at its next poll (after a commit that wrote rows)."""
    if _wake is None or _wake_loop is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is _wake_loop:
        _wake.set()
    else:
        _wake_loop.call_soon_threadsafe(_wake.set)


_publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pigeonhole-relay")


def _publish(broker: dramatiq.Broker, messages: list[dramatiq.Message]) -> None:
    for message in messages:
        broker.enqueue(message)


def _due(redeliver_seconds: float):
    cutoff = clock.now() - timedelta(seconds=redeliver_seconds)
    return Outbox.done_at.is_null() & (Outbox.published_at.is_null() | (Outbox.published_at < cutoff))


async def relay_once(
    broker: dramatiq.Broker, queue_name: str, redeliver_seconds: float, limit: int = 200
) -> int:
    # A cheap read first: SQLite would otherwise take its write lock on every poll.
    if not await Outbox.exists().where(_due(redeliver_seconds)):
        return 0
    async with system_tx():
        query = Outbox.select().where(_due(redeliver_seconds)).order_by(Outbox.created_at).limit(limit)
        if isinstance(get_engine(), PostgresEngine):
            query = query.lock_rows("UPDATE", skip_locked=True)
        rows = await query
        if not rows:
            return 0
        messages = [
            dramatiq.Message(
                queue_name=queue_name,
                actor_name=row["actor"],
                args=(str(row["tenant_id"]), str(row["id"]), msgspec.json.decode(row["payload"])),
                kwargs={},
                options={"tenant_id": str(row["tenant_id"])},
            )
            for row in rows
        ]
        # Broker clients block; one publishing thread keeps the event loop (and the API) free.
        await asyncio.get_running_loop().run_in_executor(_publisher, _publish, broker, messages)
        await Outbox.update(
            {Outbox.published_at: clock.now(), Outbox.publish_count: Outbox.publish_count + 1}
        ).where(Outbox.id.is_in([r["id"] for r in rows]))
    return len(rows)


async def run(
    broker: dramatiq.Broker, queue_name: str, redeliver_seconds: float, stop: asyncio.Event, poll: float = 0.5
) -> None:
    global _wake, _wake_loop
    _wake = asyncio.Event()
    _wake_loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            while await relay_once(broker, queue_name, redeliver_seconds):
                pass
        except Exception:
            log.exception("outbox relay failed; retrying")
        try:
            await asyncio.wait_for(_wake.wait(), timeout=poll)
        except TimeoutError:
            pass
        _wake.clear()
