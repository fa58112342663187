"""One Modbus link (a TCP connection or an RS485 port), one request at a time.

Everything that touches the wire goes through :meth:`ModbusBus.transact`:
it holds the bus, keeps the inter-frame silence RTU needs, (re)connects when
the link is down, and retries only when the caller says the request is safe
to repeat. pymodbus' own retries and background reconnects are switched off:
a retried request that fires a lock is exactly what must never happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadDiscreteInputsRequest,
    WriteMultipleCoilsRequest,
)

from pigeonhole_modbus.config import ModbusConfig
from pigeonhole_modbus.pdu import RawWriteCoil

#: The event loop wakes up to a millisecond late (epoll rounds its timeout up):
#: waits shorter than this end by yielding to the loop until the deadline.
_LOOP_SLACK = 0.0015


async def sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``deadline``, late by microseconds, not a millisecond.

    An RTU gap is 1.75-4 ms: a plain sleep would add up to a quarter to every frame.
    """
    remaining = deadline - time.monotonic()
    if remaining > _LOOP_SLACK:
        await asyncio.sleep(remaining - _LOOP_SLACK)
    while time.monotonic() < deadline:
        await asyncio.sleep(0)


class LinkError(Exception):
    """Nothing usable came back: no link, no reply, or a reply that does not fit the request."""


class Refused(Exception):
    """The board answered with a Modbus exception: it did not carry the request out."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what}: the board answered exception code {code}")
        self.code = code


class ModbusBus:
    def __init__(self, config: ModbusConfig) -> None:
        self.config = config
        self.timeout = config.timeout_ms / 1000
        self.gap = config.gap_seconds()
        self.client = self._client()
        self.client.register(RawWriteCoil)
        self._lock = asyncio.Lock()
        self._quiet_since = 0.0
        self._last_connect = -1e9
        self.reconnect_interval = config.reconnect_ms / 1000
        self.last_error: str | None = None
        self.transactions = 0

    def _client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        c = self.config
        if c.transport == "tcp":
            return AsyncModbusTcpClient(
                c.host, port=c.port, timeout=self.timeout, retries=0, reconnect_delay=0
            )
        return AsyncModbusSerialClient(
            c.serial_port,
            framer=FramerType.RTU,
            baudrate=c.baudrate,
            bytesize=8,
            parity=c.parity,
            stopbits=c.stopbits,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,
        )

    @property
    def where(self) -> str:
        c = self.config
        return f"tcp {c.host}:{c.port}" if c.transport == "tcp" else f"rtu {c.serial_port} {c.baudrate} baud"

    @property
    def connected(self) -> bool:
        return self.client.connected

    async def connect(self) -> bool:
        self._last_connect = time.monotonic()
        try:
            return bool(await asyncio.wait_for(self.client.connect(), self.timeout * 2))
        except (TimeoutError, OSError, ModbusException):
            return False

    def close(self) -> None:
        self.client.close()

    async def transact(self, request: ModbusPDU, *, retries: int, what: str) -> ModbusPDU:
        """Send ``request`` and return the board's reply; ``retries`` extra attempts when none came."""
        async with self._lock:
            for attempt in range(retries + 1):
                try:
                    reply = await self._once(request)
                except Refused:
                    self.last_error = None  # the board is there and answering
                    raise
                except LinkError as exc:
                    self.last_error = f"{what}: {exc}"
                    if attempt == retries:
                        raise LinkError(self.last_error) from None
                    continue
                self.last_error = None
                return reply
        raise AssertionError("unreachable")

    async def _once(self, request: ModbusPDU) -> ModbusPDU:
        if not self.client.connected:
            # A dead link is tried again at most once per interval, not by every poll.
            if time.monotonic() - self._last_connect < self.reconnect_interval:
                raise LinkError(f"link down ({self.where})")
            if not await self.connect():
                raise LinkError(f"cannot connect ({self.where})")
        if self.gap:
            await sleep_until(self._quiet_since + self.gap)
        self.transactions += 1
        try:
            reply = await self.client.execute(False, request)
        except (ConnectionException, ModbusException, OSError, TimeoutError) as exc:
            raise LinkError(_short(exc) or "no reply") from None
        finally:
            self._quiet_since = time.monotonic()
        if reply is None:
            raise LinkError("no reply")
        if reply.isError():
            raise Refused(getattr(reply, "exception_code", 0), str(request))
        if reply.function_code != request.function_code:
            raise LinkError(f"reply to function {reply.function_code}, not {request.function_code}")
        return reply

    # -- the requests the driver needs ------------------------------------

    async def read_inputs(self, unit: int, address: int, count: int) -> list[bool]:
        reply = await self.transact(
            ReadDiscreteInputsRequest(dev_id=unit, address=address, count=count),
            retries=self.config.read_retries,
            what=f"read inputs {address}..{address + count - 1} of unit {unit}",
        )
        bits = list(reply.bits)
        if len(bits) < count:
            raise LinkError(f"unit {unit} returned {len(bits)} inputs, asked for {count}")
        return bits[:count]

    async def read_coils(self, unit: int, address: int, count: int) -> list[bool]:
        reply = await self.transact(
            ReadCoilsRequest(dev_id=unit, address=address, count=count),
            retries=self.config.read_retries,
            what=f"read coils {address}..{address + count - 1} of unit {unit}",
        )
        return list(reply.bits)[:count]

    async def write_coil(self, unit: int, address: int, value: int, *, retries: int) -> None:
        """FC05 with ``value`` (0xFF00 on, 0 off, or a board's own meaning); checks the echo."""
        request = RawWriteCoil(dev_id=unit, address=address, value=value)
        reply = await self.transact(
            request, retries=retries, what=f"write coil {address:#06x} of unit {unit}"
        )
        if getattr(reply, "address", None) != address or getattr(reply, "value", None) != value:
            raise LinkError(f"unit {unit} echoed {reply}, not {request}")

    async def write_coils(self, unit: int, address: int, values: Sequence[bool], *, retries: int) -> None:
        await self.transact(
            WriteMultipleCoilsRequest(dev_id=unit, address=address, bits=list(values)),
            retries=retries,
            what=f"write coils {address}..{address + len(values) - 1} of unit {unit}",
        )


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    if "No response received" in text:
        return "no reply"
    return text.splitlines()[0][:200] if text else type(exc).__name__


# -- one bus per link ---------------------------------------------------------
# Several banks can hang on one RS485 chain or one TCP gateway (different unit
# ids): they must share the port and its lock, or their frames would collide.

_shared: dict[tuple[str, int], tuple[ModbusBus, int]] = {}


def link_key(config: ModbusConfig) -> str:
    if config.transport == "tcp":
        return f"tcp://{config.host}:{config.port}"
    return f"rtu://{config.serial_port}"


def _key(config: ModbusConfig) -> tuple[str, int]:
    # Per event loop too: an asyncio lock and a pymodbus client belong to one loop.
    return link_key(config), id(asyncio.get_running_loop())


def acquire(config: ModbusConfig) -> ModbusBus:
    """The bus of this link, shared with every bank on it (the first bank's timings apply)."""
    key = _key(config)
    bus, users = _shared.get(key, (None, 0))
    if bus is None:
        bus = ModbusBus(config)
    _shared[key] = (bus, users + 1)
    return bus


def release(bus: ModbusBus) -> None:
    key = _key(bus.config)
    current, users = _shared.get(key, (None, 0))
    if current is not bus:
        bus.close()
        return
    if users <= 1:
        del _shared[key]
        bus.close()
    else:
        _shared[key] = (bus, users - 1)
