"""Byte links to a lock board: a serial port or a TCP bridge, both able to come back.

A transport only moves bytes and knows whether the link is up. It never
retries anything itself: whether a frame may be sent again is the
protocol's business (see :class:`pigeonhole.hardware.bus.Bus`). Received
bytes collect in a buffer that :meth:`Transport.read_frame` cuts into frames
by length, by a completeness test or by silence, the three ways boards end
their replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

from pigeonhole.hardware.timing import wire_time

__all__ = ["LinkDown", "NoReply", "SerialTransport", "TcpTransport", "Transport"]


class LinkDown(ConnectionError):
    """The port or TCP link is not there (unplugged, refused, closed)."""


class NoReply(TimeoutError):
    """Nothing, or not a whole frame, arrived before the timeout."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


class Transport:
    """A link that delivers bytes into a buffer and can be (re)opened."""

    #: What the link is, for operators: ``/dev/ttyUSB0 at 19200`` or ``10.0.0.5:4001``.
    describe: str = "link"
    #: Whether a link that carries no reply at all may be half open and worth reopening.
    reopen_when_mute: bool = False

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._arrived = asyncio.Event()
        self._open = False
        self.last_error: str = ""

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> None:
        """Open the link; raise :class:`LinkDown` with the reason when it cannot."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    def drain_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` just written still occupy the line after :meth:`write` returned.

        A serial write returns once the bytes are in the kernel's buffer, before the
        UART has clocked them out: the quiet after a frame starts only then.
        """
        return 0.0

    def discard_input(self) -> bytes:
        """Drop what arrived unasked (a late reply, line noise); return it for logs."""
        stale = bytes(self._buffer)
        self._buffer.clear()
        self._arrived.clear()
        return stale

    def _received(self, data: bytes) -> None:
        self._buffer.extend(data)
        self._arrived.set()

    def _lost(self, reason: str) -> None:
        self._open = False
        self.last_error = reason
        self._arrived.set()  # wake a reader so it sees the link is gone

    async def read_frame(
        self,
        *,
        length: int | None = None,
        complete: Callable[[bytes], int | None] | None = None,
        timeout: float,
        silence: float | None = None,
    ) -> bytes:
        """The next frame: ``length`` bytes, or what ``complete`` says is whole, or
        what arrived before ``silence`` seconds without a byte.

        ``complete(buffer)`` returns the length of the frame at the start of the
        buffer once it is whole, else None. Raises :class:`NoReply` when the
        overall ``timeout`` passes first (with the partial bytes attached) and
        :class:`LinkDown` when the link goes away meanwhile.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            size = self._frame_size(length, complete)
            if size is not None:
                frame = bytes(self._buffer[:size])
                del self._buffer[:size]
                return frame
            if not self._open:
                raise LinkDown(f"{self.describe}: {self.last_error or 'link closed'}")
            left = deadline - loop.time()
            if left <= 0:
                raise NoReply(
                    f"{self.describe}: no complete reply in {timeout * 1000:.0f} ms", bytes(self._buffer)
                )
            wait = left
            if silence is not None and self._buffer:
                wait = min(left, silence)
            self._arrived.clear()
            try:
                # asyncio.timeout, not wait_for: no extra task, so a byte that arrives
                # resumes this reader in the next turn of the loop, not the third.
                async with asyncio.timeout(wait):
                    await self._arrived.wait()
            except TimeoutError:
                if silence is not None and self._buffer and wait == silence:
                    frame = bytes(self._buffer)  # the line went quiet: the frame ended
                    self._buffer.clear()
                    return frame

    def _frame_size(self, length: int | None, complete: Callable[[bytes], int | None] | None) -> int | None:
        if length is not None and len(self._buffer) >= length:
            return length
        if complete is not None and self._buffer:
            return complete(bytes(self._buffer))
        return None


class SerialTransport(Transport):
    """A serial port (RS485 adapter, or a pty in tests) read without a thread.

    pyserial sets the line up (baud rate, 8N1, raw mode); the event loop then
    watches the file descriptor directly. A port that disappears (USB adapter
    pulled, pty closed) reads as an error: the link is marked down and the next
    :meth:`open` finds the device again when it is back.
    """

    def __init__(
        self, port: str, baudrate: int, *, bytesize: int = 8, parity: str = "N", stopbits: float = 1
    ) -> None:
        super().__init__()
        self.port = port
        self.baudrate = baudrate
        self._settings = {"bytesize": bytesize, "parity": parity, "stopbits": stopbits}
        self._serial = None
        self._fd: int | None = None
        self.describe = f"{port} at {baudrate} baud"
        # start bit + data bits + parity bit + stop bits
        self._bits_per_byte = 1 + bytesize + (parity != "N") + stopbits

    def drain_time(self, nbytes: int) -> float:
        return wire_time(nbytes, self.baudrate, self._bits_per_byte)

    async def open(self) -> None:
        import serial  # pyserial; imported here so hosts without serial boards never need it

        await self.close()
        try:
            # exclusive: a second agent on the same port would garble every frame
            port = serial.Serial(
                self.port, self.baudrate, timeout=0, write_timeout=0, exclusive=True, **self._settings
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self.last_error = f"cannot open: {exc}"
            raise LinkDown(f"{self.describe}: cannot open: {exc}") from None
        self._serial = port
        self._fd = port.fileno()
        self._buffer.clear()
        self._open = True
        self.last_error = ""
        asyncio.get_running_loop().add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: the other end of the cable went away
            self._detach(f"read failed: {exc.strerror or exc}")
            return
        if not data:
            self._detach("the port went away")
            return
        self._received(data)

    def _detach(self, reason: str) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
        self._serial = None
        self._fd = None
        self._lost(reason)

    async def write(self, data: bytes) -> None:
        if not self._open or self._fd is None:
            raise LinkDown(f"{self.describe}: {self.last_error or 'not open'}")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                await asyncio.sleep(0)
                continue
            except OSError as exc:
                self._detach(f"write failed: {exc.strerror or exc}")
                raise LinkDown(f"{self.describe}: write failed: {exc.strerror or exc}") from None
            view = view[written:]

    async def close(self) -> None:
        if self._serial is not None or self._fd is not None:
            self._detach("closed")
        self._open = False


class TcpTransport(Transport):
    """The same frames carried over TCP by a serial-to-Ethernet bridge."""

    # A bridge that lost power or its network keeps our socket "open" for ever.
    reopen_when_mute = True

    def __init__(self, host: str, port: int, *, connect_timeout: float = 3.0) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self.describe = f"{host}:{port}"

    async def open(self) -> None:
        await self.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            self.last_error = f"cannot connect: {exc}"
            raise LinkDown(f"{self.describe}: cannot connect: {exc}") from None
        self._writer = writer
        self._buffer.clear()
        self._open = True
        self.last_error = ""
        self._pump = asyncio.get_running_loop().create_task(self._read_into_buffer(reader))

    async def _read_into_buffer(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    self._lost("connection closed by the bridge")
                    return
                self._received(data)
        except (OSError, asyncio.IncompleteReadError) as exc:
            self._lost(f"connection lost: {exc}")

    async def write(self, data: bytes) -> None:
        if not self._open or self._writer is None:
            raise LinkDown(f"{self.describe}: {self.last_error or 'not connected'}")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            raise LinkDown(f"{self.describe}: write failed: {exc}") from None

    async def close(self) -> None:
        pump, writer = self._pump, self._writer
        self._pump = self._writer = None
        self._open = False
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
