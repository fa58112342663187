"""How long bytes take on a serial wire: the floor every driver is measured against."""

from __future__ import annotations

import asyncio

#: 8N1 carries a start bit, eight data bits and a stop bit per byte.
BITS_PER_BYTE_8N1 = 10


def byte_time(baudrate: int, bits_per_byte: int = BITS_PER_BYTE_8N1) -> float:
    """Seconds one byte occupies the wire."""
    if baudrate <= 0:
        raise ValueError(f"baud rate must be positive, got {baudrate}")
    return bits_per_byte / baudrate


def wire_time(nbytes: int, baudrate: int, bits_per_byte: int = BITS_PER_BYTE_8N1) -> float:
    """Seconds ``nbytes`` take to cross the wire at ``baudrate``."""
    return nbytes * byte_time(baudrate, bits_per_byte)


def char_gap(chars: float, baudrate: int) -> float:
    """Seconds of ``chars`` character times (Modbus RTU's 3.5, for instance)."""
    return chars * byte_time(baudrate)


#: asyncio's epoll wait counts in whole milliseconds, rounded up: a 1.04 ms sleep lasts 2 ms.
_COARSE = 0.001


async def sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` (event-loop time), late by tens of microseconds, not a millisecond.

    An inter-frame gap of a character or two at 19200 baud is about a millisecond:
    ``asyncio.sleep`` would double it. The last millisecond is spent yielding to
    the loop (other tasks and readers keep running); never returns early.
    """
    loop = asyncio.get_running_loop()
    coarse = deadline - loop.time() - _COARSE
    if coarse > 0:
        await asyncio.sleep(coarse)
    while loop.time() < deadline:
        await asyncio.sleep(0)
