"""One conversation at a time on a shared wire, with the pauses boards need.

RS485 is half duplex and every board on a chain hears every frame: two
requests in flight garble each other, and boards want a moment of silence
between transactions. :class:`Bus` is the only way a driver talks to its
transport: it serializes transactions, keeps the gap, drops stale bytes
before each request, reopens a link that went away, and retries *only* the
transactions the caller declared safe to repeat (status reads), never an
unlock.

Several banks can be wired to one chain; :func:`shared_bus` hands every
driver of the same link the same :class:`Bus`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pigeonhole.hardware.checksums import hexbytes
from pigeonhole.hardware.timing import sleep_until
from pigeonhole.hardware.transport import LinkDown, NoReply, Transport

__all__ = ["BadFrame", "Bus", "BusError", "LinkDown", "NoReply", "shared_bus"]

log = logging.getLogger(__name__)


class BadFrame(ValueError):
    """A reply arrived but is not what the request asked for (checksum, address, length)."""


#: What a transaction can fail with: nothing came, garbage came, no link.
BusError = (NoReply, BadFrame, LinkDown)


class Bus:
    def __init__(
        self,
        transport: Transport,
        *,
        gap: float = 0.0,
        reply_timeout: float = 0.5,
        silence: float | None = None,
        reconnect_interval: float = 1.0,
        mute_limit: int = 3,
    ) -> None:
        """``gap``: seconds of quiet between the end of one transaction and the next
        request. ``reply_timeout``: how long to wait for a whole reply.
        ``silence``: quiet that ends a reply of unknown length.
        ``reconnect_interval``: at most one attempt to reopen a lost link per interval,
        so a dead port is not hammered by every poll. ``mute_limit``: after this many
        transactions in a row without a byte of reply, a link that can be half open (a
        TCP bridge that died without closing) is closed and reopened.
        """
        self.transport = transport
        self.gap = gap
        self.reply_timeout = reply_timeout
        self.silence = silence
        self.reconnect_interval = reconnect_interval
        self._lock = asyncio.Lock()
        self._quiet_since = 0.0
        self._last_attempt: float | None = None
        self.mute_limit = mute_limit
        self._mute = 0
        self.users = 0

    @property
    def connected(self) -> bool:
        return self.transport.is_open

    @property
    def describe(self) -> str:
        return self.transport.describe

    async def connect(self) -> bool:
        """Try to open the link now; False (with ``transport.last_error``) if it is not there."""
        async with self._lock:
            try:
                await self._ensure_open(force=True)
            except LinkDown:
                return False
            return True

    async def close(self) -> None:
        async with self._lock:
            await self.transport.close()

    async def _ensure_open(self, force: bool = False) -> None:
        if self.transport.is_open:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if (
            not force
            and self._last_attempt is not None
            and now - self._last_attempt < self.reconnect_interval
        ):
            raise LinkDown(f"{self.describe}: {self.transport.last_error or 'not open'}")
        self._last_attempt = now
        await self.transport.open()
        log.info("link %s is up", self.describe)

    async def _pause(self) -> None:
        if self.gap <= 0:
            return
        await sleep_until(self._quiet_since + self.gap)

    async def send(self, request: bytes) -> None:
        """A frame the board does not answer (a Kerong CU48 unlock). Never retried.

        The gap before the next request counts from when this frame has left the
        wire, not from when the write returned: a serial port is still sending it.
        """
        async with self._lock:
            await self._ensure_open()
            await self._pause()
            self._drop_stale()
            try:
                await self.transport.write(request)
            finally:
                self._quiet_since = asyncio.get_running_loop().time() + self.transport.drain_time(
                    len(request)
                )

    async def transact(
        self,
        request: bytes,
        *,
        length: int | None = None,
        complete: Callable[[bytes], int | None] | None = None,
        check: Callable[[bytes], Any] | None = None,
        retries: int = 0,
        timeout: float | None = None,
    ) -> Any:
        """Send ``request`` and return ``check(reply)`` (or the reply when no check).

        ``check`` raises :class:`BadFrame` for a reply that is not the answer.
        ``retries`` > 0 only for requests that change nothing on the board: an
        unlock is sent once, whatever happens. Raises the last of
        :data:`BusError` when every attempt failed.
        """
        async with self._lock:
            last: Exception | None = None
            for _attempt in range(retries + 1):
                try:
                    return await self._once(request, length, complete, check, timeout)
                except BusError as exc:
                    last = exc
                    log.debug("%s: %s -> %s", self.describe, hexbytes(request), exc)
            assert last is not None
            raise last

    async def _once(self, request, length, complete, check, timeout) -> Any:
        loop = asyncio.get_running_loop()
        await self._ensure_open()
        await self._pause()
        self._drop_stale()
        try:
            await self.transport.write(request)
            reply = await self.transport.read_frame(
                length=length,
                complete=complete,
                timeout=self.reply_timeout if timeout is None else timeout,
                silence=self.silence,
            )
        except NoReply as exc:
            await self._count_mute(exc)
            raise
        finally:
            self._quiet_since = loop.time()
        self._mute = 0
        return check(reply) if check is not None else reply

    async def _count_mute(self, exc: NoReply) -> None:
        self._mute = 0 if exc.partial else self._mute + 1
        if self._mute >= self.mute_limit and self.transport.reopen_when_mute:
            log.warning("%s: %d requests without a byte of reply, reconnecting", self.describe, self._mute)
            self._mute = 0
            self._last_attempt = None  # reopen at the next transaction
            await self.transport.close()

    def _drop_stale(self) -> None:
        stale = self.transport.discard_input()
        if stale:
            log.debug("%s: dropped %d stale bytes: %s", self.describe, len(stale), hexbytes(stale))


_shared: dict[tuple[int, str], Bus] = {}


def shared_bus(key: str, make: Callable[[], Bus]) -> Bus:
    """The one :class:`Bus` of link ``key`` in this event loop, made on first use.

    Call :func:`release_bus` once per call when done; the last release closes it.
    """
    slot = (id(asyncio.get_running_loop()), key)
    bus = _shared.get(slot)
    if bus is None:
        bus = _shared[slot] = make()
    bus.users += 1
    return bus


async def release_bus(key: str, bus: Bus) -> None:
    slot = (id(asyncio.get_running_loop()), key)
    bus.users -= 1
    if bus.users <= 0:
        if _shared.get(slot) is bus:
            del _shared[slot]
        await bus.close()
