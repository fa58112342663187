"""Where the workers' async code runs.

dramatiq runs actors in threads; the database engine lives on an event loop.
The embedded worker hands its coroutines to the server's own loop; a
standalone ``pigeonhole worker`` runs one loop in a thread of its own and
connects to the database there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

_loop: asyncio.AbstractEventLoop | None = None


def use_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _loop
    _loop = loop


def start_own_loop(setup: Callable[[], Awaitable[None]] | None = None) -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="pigeonhole-loop", daemon=True)
    thread.start()
    use_loop(loop)
    if setup is not None:
        asyncio.run_coroutine_threadsafe(setup(), loop).result()
    return loop


def submit(coro: Awaitable) -> Future:
    if _loop is None:
        raise RuntimeError("no event loop for the workers: call use_loop() or start_own_loop()")
    return asyncio.run_coroutine_threadsafe(coro, _loop)


def run(coro: Awaitable, timeout: float | None = 120):
    return submit(coro).result(timeout)
