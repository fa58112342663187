"""The parts every board simulator shares: doors, faults, byte timing, a pty or TCP link.

A simulator subclasses :class:`BoardSimulator` and writes only its protocol:
which byte starts a request, how long a request is, its checksum, and
:meth:`BoardSimulator.handle`, which turns one checked request into a reply
(or none). Everything a test wants to break is here, the same for every
board: a silent board, corrupted or garbage replies, a reply lost after an
unlock, a jammed lock, a door a person pries open or leaves open, the cable
pulled out and plugged back.

Simulators check requests byte for byte: every request is kept in
``received`` and any that fails the protocol's checks in ``rejected`` with
the reason, so tests can compare the exact frames a driver wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from dataclasses import dataclass

from pigeonhole.hardware.pty import PtyPair
from pigeonhole.hardware.timing import wire_time

__all__ = ["BankView", "BoardSimulator", "SimDoor", "run_for_demo"]


@dataclass
class SimDoor:
    open: bool = False
    jammed: bool = False
    #: Pulses fired at this door's lock, by any command.
    unlocks: int = 0


class BoardSimulator:
    #: The baud rate whose byte timing the simulator reproduces when asked to.
    baudrate: int = 9600
    #: Bytes a request may start with; anything else is line noise and skipped.
    request_starts: bytes = b""
    #: How many locks one board of this model has.
    locks_per_board: int = 8

    def __init__(
        self,
        boards: list[int] | tuple[int, ...] = (0,),
        *,
        open_when_set: bool = True,
        byte_timing: bool = False,
        reply_delay: float = 0.0,
    ) -> None:
        """``boards``: addresses on the chain. ``open_when_set``: how the hook switches
        are wired (a set bit means open). ``byte_timing``: hold each request and reply
        for the time its bytes take at ``baudrate``. ``reply_delay``: the board's own
        thinking time before it answers.
        """
        self.boards = list(boards)
        self.doors: dict[tuple[int, int], SimDoor] = {
            (board, lock): SimDoor() for board in self.boards for lock in range(1, self.locks_per_board + 1)
        }
        self.open_when_set = open_when_set
        self.byte_timing = byte_timing
        self.reply_delay = reply_delay
        self.received: list[bytes] = []
        self.rejected: list[tuple[bytes, str]] = []
        self.replies: list[bytes] = []
        #: Event-loop time at which each request was complete, in the order of ``received``.
        self.arrivals: list[float] = []
        # faults
        self.silent = False
        self.corrupt_next = 0
        self.garbage_next = 0
        self.drop_next = 0
        self.lose_reply_after_unlock = False
        # link
        self._pty: PtyPair | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tcp_host = "127.0.0.1"
        self.tcp_port: int | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._inbox: asyncio.Queue[tuple[bytes, object, float]] | None = None
        self._line_free_at = 0.0
        self._worker: asyncio.Task[None] | None = None
        self._buffer = bytearray()

    # ------------------------------------------------------------------ protocol

    def request_length(self, start: int) -> int:
        """Length of a request that begins with byte ``start``."""
        raise NotImplementedError

    def check(self, frame: bytes) -> str | None:
        """Why ``frame`` is not a valid request (bad checksum, end byte...), or None."""
        raise NotImplementedError

    def handle(self, frame: bytes) -> bytes | None:
        """Act on one valid request; return the reply, or None for a board that stays quiet."""
        raise NotImplementedError

    def reply_delay_for(self, frame: bytes) -> float:
        """The board's thinking time before it answers ``frame`` (a pulse it times, say)."""
        return self.reply_delay

    def with_bad_checksum(self, reply: bytes) -> bytes:
        """``reply`` with a wrong checksum: the last byte flipped, by default."""
        return reply[:-1] + bytes([reply[-1] ^ 0x5A])

    # ------------------------------------------------------------------ doors

    def door(self, board: int, lock: int) -> SimDoor:
        try:
            return self.doors[(board, lock)]
        except KeyError:
            raise ValueError(f"no lock {lock} on board {board} (boards: {self.boards})") from None

    def fire(self, board: int, lock: int) -> None:
        """A lock pulse: the door springs open unless it is jammed."""
        door = self.door(board, lock)
        door.unlocks += 1
        if not door.jammed:
            door.open = True
        if self.lose_reply_after_unlock:
            self.lose_reply_after_unlock = False
            self.drop_next += 1

    def sensor_bit(self, board: int, lock: int) -> bool:
        """The raw hook-switch bit, as wired."""
        return self.door(board, lock).open == self.open_when_set

    def bits(self, board: int) -> list[bool]:
        """Every raw sensor bit of ``board``, lock 1 first."""
        return [self.sensor_bit(board, lock) for lock in range(1, self.locks_per_board + 1)]

    # ------------------------------------------------------------------ link

    async def start_pty(self, link: str | None = None) -> str:
        """Serve on a pty pair; return the path the driver opens."""
        self._pty = PtyPair(link)
        self._attach_pty()
        self._start_worker()
        return self._pty.link

    def _attach_pty(self) -> None:
        assert self._pty is not None
        master = self._pty.plug()
        self._buffer.clear()
        asyncio.get_running_loop().add_reader(master, self._on_pty_readable, master)

    def _on_pty_readable(self, master: int) -> None:
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        except OSError:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(master)
            return
        self._feed(data, master)

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve as a TCP bridge; return the port."""
        self._tcp_host = host
        self._server = await asyncio.start_server(self._serve_client, host, port, reuse_address=True)
        self.tcp_port = self._server.sockets[0].getsockname()[1]
        self._start_worker()
        return self.tcp_port

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        buffer = bytearray()
        try:
            while data := await reader.read(4096):
                self._feed(data, writer, buffer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    @property
    def path(self) -> str | None:
        return self._pty.link if self._pty else None

    @property
    def plugged(self) -> bool:
        if self._pty is not None:
            return self._pty.plugged
        return self._server is not None

    async def unplug(self) -> None:
        """Pull the cable: the pty disappears, or the bridge refuses connections."""
        if self._pty is not None and self._pty.master is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._pty.master)
            self._pty.unplug()
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            self._clients.clear()
            await self._server.wait_closed()
            self._server = None

    async def replug(self) -> None:
        """Plug the cable back: same path, same TCP port."""
        if self._pty is not None:
            self._attach_pty()
        elif self.tcp_port is not None and self._server is None:
            self._server = await asyncio.start_server(
                self._serve_client, self._tcp_host, self.tcp_port, reuse_address=True
            )

    async def stop(self) -> None:
        await self.unplug()
        if self._pty is not None:
            self._pty.close()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(BaseException):
                await self._worker
            self._worker = None

    # ------------------------------------------------------------------ frames

    def _start_worker(self) -> None:
        if self._worker is None:
            self._inbox = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work())

    def _feed(self, data: bytes, sink: object, buffer: bytearray | None = None) -> None:
        buffer = self._buffer if buffer is None else buffer
        buffer.extend(data)
        while buffer:
            if buffer[0] not in self.request_starts:
                self.rejected.append((bytes(buffer[:1]), "not the start of a request"))
                del buffer[:1]
                continue
            size = self.request_length(buffer[0])
            if len(buffer) < size:
                return
            frame = bytes(buffer[:size])
            del buffer[:size]
            now = asyncio.get_running_loop().time()
            self.arrivals.append(now)
            assert self._inbox is not None
            self._inbox.put_nowait((frame, sink, now))

    async def _work(self) -> None:
        assert self._inbox is not None
        while True:
            frame, sink, arrived = await self._inbox.get()
            try:
                await self._process(frame, sink, arrived)
            except Exception as exc:  # a simulator bug must show, not hang the test
                self.rejected.append((frame, f"simulator error: {exc!r}"))

    async def _process(self, frame: bytes, sink: object, arrived: float) -> None:
        # One sleep per frame, to a deadline computed from when the request was
        # complete: successive sleeps would each overshoot, and the simulated wire
        # would be slower than the real one.
        self.received.append(frame)
        at = max(arrived, self._line_free_at)
        if self.byte_timing:
            at += wire_time(len(frame), self.baudrate)
        reply = self._answer(frame)
        if reply is not None:
            at += self.reply_delay_for(frame)
            if self.byte_timing:
                at += wire_time(len(reply), self.baudrate)
        self._line_free_at = at
        await _until(at)
        if reply is not None:
            self.replies.append(reply)
            self._send(reply, sink)

    def _answer(self, frame: bytes) -> bytes | None:
        """The bytes the board puts on the line for ``frame``, faults applied."""
        if self.silent:
            return None
        problem = self.check(frame)
        if problem is not None:
            self.rejected.append((frame, problem))
            return None
        reply = self.handle(frame)
        if reply is None:
            return None
        if self.drop_next:
            self.drop_next -= 1
            return None
        if self.corrupt_next:
            self.corrupt_next -= 1
            return self.with_bad_checksum(reply)
        if self.garbage_next:
            self.garbage_next -= 1
            return bytes([0xFF]) + bytes(random.randrange(256) for _ in range(len(reply)))
        return reply

    def _send(self, reply: bytes, sink: object) -> None:
        if isinstance(sink, int):
            if self._pty is None or self._pty.master != sink:
                return  # unplugged meanwhile
            with contextlib.suppress(OSError):
                os.write(sink, reply)
        elif isinstance(sink, asyncio.StreamWriter) and not sink.is_closing():
            sink.write(reply)


async def _until(deadline: float) -> None:
    """Sleep until ``deadline`` (loop time) to within a few tens of microseconds.

    ``asyncio.sleep`` wakes up to a millisecond late (epoll counts in whole
    milliseconds); a simulated 19200-baud wire must not be that slow. The last
    millisecond and a half is spent yielding to the loop, so the driver under
    test keeps running meanwhile.
    """
    loop = asyncio.get_running_loop()
    coarse = deadline - loop.time() - 0.0015
    if coarse > 0:
        await asyncio.sleep(coarse)
    while loop.time() < deadline:
        await asyncio.sleep(0)


class BankView:
    """A simulator seen by bank door numbers, as the conformance kit drives it.

    ``door_map`` maps each door of the bank to its (board, lock).
    """

    def __init__(self, sim: BoardSimulator, door_map: dict[int, tuple[int, int]]) -> None:
        self.sim = sim
        self.door_map = door_map

    def _door(self, door: int) -> SimDoor:
        return self.sim.door(*self.door_map[door])

    def door_is_open(self, door: int) -> bool:
        return self._door(door).open

    def unlocks(self, door: int) -> int:
        return self._door(door).unlocks

    def person_opens(self, door: int) -> None:
        self._door(door).open = True

    def person_closes(self, door: int) -> None:
        self._door(door).open = False

    def jam(self, door: int, jammed: bool = True) -> None:
        self._door(door).jammed = jammed

    def set_silent(self, silent: bool) -> None:
        self.sim.silent = silent

    def corrupt_replies(self, count: int) -> None:
        self.sim.corrupt_next = count

    def garbage_replies(self, count: int) -> None:
        self.sim.garbage_next = count

    def lose_reply_after_unlock(self) -> None:
        self.sim.lose_reply_after_unlock = True

    async def unplug(self) -> None:
        await self.sim.unplug()

    async def replug(self) -> None:
        await self.sim.replug()


async def run_for_demo(
    sim: BoardSimulator,
    *,
    tcp_port: int | None = None,
    link: str | None = None,
    auto_close: float | None = None,
    echo=print,
) -> None:
    """Serve ``sim`` until cancelled, echoing where the driver connects and every request.

    ``auto_close``: a person shuts each door this many seconds after it opened.
    """
    from pigeonhole.hardware.checksums import hexbytes

    if tcp_port is not None:
        port = await sim.start_tcp("127.0.0.1", tcp_port)
        echo(
            f'{type(sim).__name__} on 127.0.0.1:{port}: driver config {{"host": "127.0.0.1", "tcp_port": {port}}}'
        )
    else:
        path = await sim.start_pty(link)
        echo(f'{type(sim).__name__} on {path}: driver config {{"port": "{path}"}}')
    loop = asyncio.get_running_loop()
    closing: set[tuple[int, int]] = set()

    def close(key: tuple[int, int]) -> None:
        sim.doors[key].open = False
        closing.discard(key)

    seen = 0
    try:
        while True:
            await asyncio.sleep(0.05)
            for frame in sim.received[seen:]:
                echo(f"<- {hexbytes(frame)}")
            seen = len(sim.received)
            if auto_close is not None:
                for key, door in sim.doors.items():
                    if door.open and key not in closing:
                        closing.add(key)
                        loop.call_later(auto_close, close, key)
    finally:
        await sim.stop()
