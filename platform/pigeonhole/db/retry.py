"""Retry a transaction that failed for reasons that pass: a busy SQLite, a dropped connection.

Only for work that must land once the world has changed (a door has opened):
the whole transaction is run again, so it must read what it needs inside.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (
    sqlite3.OperationalError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,
    TimeoutError,
)


async def retrying(fn: Callable[[], Awaitable[T]], attempts: int = 6, first_wait: float = 0.05) -> T:
    for attempt in range(attempts):
        try:
            return await fn()
        except TRANSIENT as exc:
            if attempt == attempts - 1:
                raise
            wait = first_wait * 2**attempt
            log.warning("transaction failed (%s); retrying in %.2fs", exc, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")
