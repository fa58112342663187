"""The lock-board toolkit (pigeonhole.hardware) on real pty pairs and loopback TCP:
frames cut by length, completeness and silence; one transaction at a time with its
gap; retries only when asked; links that vanish and come back; wire timing."""

from __future__ import annotations

import asyncio
import os

import pytest
from pigeonhole.hardware import (
    BadFrame,
    Bus,
    LinkDown,
    NoReply,
    SerialTransport,
    TcpTransport,
    release_bus,
    shared_bus,
    sum8,
    wire_time,
    xor8,
)
from pigeonhole.hardware.pty import PtyPair


@pytest.fixture
def pty():
    pair = PtyPair()
    pair.plug()
    yield pair
    pair.close()


def board_writes(pair: PtyPair, data: bytes) -> None:
    os.write(pair.master, data)


def board_reads(pair: PtyPair) -> bytes:
    try:
        return os.read(pair.master, 4096)
    except BlockingIOError:
        return b""


def test_wire_times_are_the_figures_of_the_hardware_notes():
    assert wire_time(1, 19200) == pytest.approx(0.00052, abs=1e-5)
    assert wire_time(1, 9600) == pytest.approx(0.00104, abs=1e-5)
    assert wire_time(6, 19200) == pytest.approx(0.0031, abs=1e-4)  # CU48 unlock
    assert wire_time(18, 19200) == pytest.approx(0.0094, abs=1e-4)  # CU48 status and reply
    assert wire_time(16, 9600) == pytest.approx(0.0167, abs=1e-4)  # Modbus write-coil and echo
    with pytest.raises(ValueError, match="baud rate"):
        wire_time(1, 0)


def test_checksums():
    assert sum8(bytes.fromhex("02 0A 30 51 03")) == 0x90
    assert xor8(bytes.fromhex("8A 01 01 11")) == 0x9B


async def test_a_frame_ends_at_its_length_and_the_rest_waits_for_the_next_read(pty):
    link = SerialTransport(pty.link, 19200)
    await link.open()
    try:
        board_writes(pty, b"\x01\x02\x03\x04\x05")
        assert await link.read_frame(length=3, timeout=1) == b"\x01\x02\x03"
        assert await link.read_frame(length=2, timeout=1) == b"\x04\x05"
    finally:
        await link.close()


async def test_a_frame_of_unknown_length_ends_with_silence(pty):
    link = SerialTransport(pty.link, 9600)
    await link.open()
    try:
        board_writes(pty, b"\x80\x01\x00")
        asyncio.get_running_loop().call_later(0.005, board_writes, pty, b"\x33")
        assert await link.read_frame(timeout=2, silence=0.1) == b"\x80\x01\x00\x33"
    finally:
        await link.close()


async def test_a_frame_can_end_when_the_protocol_says_it_is_whole(pty):
    link = SerialTransport(pty.link, 9600)
    await link.open()
    try:
        board_writes(pty, b"\x02\x03abc\x03\x02zz")
        whole = lambda buf: 2 + buf[1] if len(buf) >= 2 and len(buf) >= 2 + buf[1] else None  # noqa: E731
        assert await link.read_frame(complete=whole, timeout=1) == b"\x02\x03abc"
    finally:
        await link.close()


async def test_no_reply_carries_what_did_arrive(pty):
    link = SerialTransport(pty.link, 9600)
    await link.open()
    try:
        board_writes(pty, b"\x02\x00")
        with pytest.raises(NoReply) as caught:
            await link.read_frame(length=6, timeout=0.05)
        assert caught.value.partial == b"\x02\x00"
        assert "no complete reply in 50 ms" in str(caught.value)
    finally:
        await link.close()


async def test_a_second_process_cannot_open_a_port_already_in_use(pty):
    first, second = SerialTransport(pty.link, 9600), SerialTransport(pty.link, 9600)
    await first.open()
    try:
        with pytest.raises(LinkDown, match="cannot open"):
            await second.open()
    finally:
        await first.close()


async def test_a_pulled_cable_is_link_down_then_the_same_path_opens_again(pty):
    link = SerialTransport(pty.link, 9600)
    await link.open()
    reading = asyncio.ensure_future(link.read_frame(length=5, timeout=5))
    await asyncio.sleep(0)
    pty.unplug()
    with pytest.raises(LinkDown, match="went away|read failed"):
        await reading
    assert not link.is_open and not os.path.exists(pty.link)
    with pytest.raises(LinkDown, match="cannot open"):
        await link.open()
    pty.plug()
    await link.open()
    board_writes(pty, b"hello")
    assert await link.read_frame(length=5, timeout=1) == b"hello"
    await link.close()


async def test_the_bus_keeps_the_gap_drops_stale_bytes_and_retries_only_when_told(pty):
    bus = Bus(SerialTransport(pty.link, 9600), gap=0.02, reply_timeout=0.05)
    assert await bus.connect()
    loop = asyncio.get_running_loop()
    heard: list[tuple[float, bytes]] = []

    def board(replies: list[bytes]) -> None:
        request = board_reads(pty)
        heard.append((loop.time(), request))
        if replies:
            board_writes(pty, replies.pop(0))

    def good(reply: bytes) -> bytes:
        if reply != b"good":
            raise BadFrame(reply.hex())
        return reply

    try:
        board_writes(pty, b"stale")  # noise on the line before the request
        await asyncio.sleep(0.02)
        loop.add_reader(pty.master, board, [b"bad!", b"good"])
        # a status read, safe to retry: the first reply is bad, the second good
        assert await bus.transact(b"STAT", length=4, check=good, retries=1) == b"good"
        assert [request for _, request in heard] == [b"STAT", b"STAT"]
        assert heard[1][0] - heard[0][0] >= 0.02  # the gap between the two transactions

        heard.clear()
        loop.remove_reader(pty.master)
        loop.add_reader(pty.master, board, [])  # a board that hears but never answers
        with pytest.raises(NoReply):
            await bus.transact(b"UNLK", length=4, check=good)  # no retries: sent exactly once
        await asyncio.sleep(0.05)
        assert [request for _, request in heard] == [b"UNLK"]
    finally:
        loop.remove_reader(pty.master)
        await bus.close()


async def test_after_an_unanswered_frame_the_gap_starts_once_the_frame_has_left_the_wire(pty):
    # At 1200 baud a 12-byte unlock frame takes 100 ms to clock out: the write returns at
    # once, and a gap counted from there would put the next request right behind it.
    bus = Bus(SerialTransport(pty.link, 1200), gap=0.01, reply_timeout=0.5)
    assert await bus.connect()
    loop = asyncio.get_running_loop()
    heard: list[tuple[float, bytes]] = []

    def board() -> None:
        request = board_reads(pty)
        heard.append((loop.time(), request))
        if request.startswith(b"STATUS"):
            board_writes(pty, b"ok")

    loop.add_reader(pty.master, board)
    try:
        sent = loop.time()
        await bus.send(b"UNLOCK-FRAME")
        assert await bus.transact(b"STATUS", length=2) == b"ok"
        assert b"".join(request for _, request in heard) == b"UNLOCK-FRAMESTATUS"
        status_at = next(at for at, request in heard if request.startswith(b"STATUS"))
        assert status_at - sent >= wire_time(12, 1200) + 0.01
    finally:
        loop.remove_reader(pty.master)
        await bus.close()


async def test_the_bus_reopens_a_lost_link_at_most_once_per_interval():
    server_hits = []

    async def bridge(reader, writer):
        server_hits.append(1)
        data = await reader.read(4)
        writer.write(data[::-1])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(bridge, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = Bus(TcpTransport("127.0.0.1", port), reconnect_interval=60)
    try:
        assert await bus.transact(b"abcd", length=4) == b"dcba"
        await asyncio.sleep(0.05)  # the bridge hung up after answering
        assert not bus.connected
        with pytest.raises(LinkDown):
            await bus.transact(b"abcd", length=4)  # within the interval: not even tried
        assert len(server_hits) == 1
        assert await bus.connect()  # an explicit connect always tries
        assert await bus.transact(b"wxyz", length=4) == b"zyxw"
    finally:
        await bus.close()
        server.close()
        await server.wait_closed()


async def test_banks_on_one_link_share_one_bus_until_the_last_lets_go(pty):
    def make() -> Bus:
        return Bus(SerialTransport(pty.link, 9600))

    first = shared_bus(pty.link, make)
    second = shared_bus(pty.link, make)
    assert first is second
    assert await first.connect()
    await release_bus(pty.link, first)
    assert second.connected
    await release_bus(pty.link, second)
    assert not second.connected
    assert shared_bus(pty.link, make) is not first


async def test_a_bridge_that_went_mute_without_closing_is_reconnected():
    connections = []

    async def bridge(reader, writer):
        connections.append(writer)
        first, answered = len(connections) == 1, 0
        while data := await reader.read(4):
            if first and answered:
                continue  # the first connection goes mute after one answer, yet stays open
            writer.write(data[::-1])
            await writer.drain()
            answered += 1

    server = await asyncio.start_server(bridge, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = Bus(TcpTransport("127.0.0.1", port), reply_timeout=0.05, mute_limit=3)
    try:
        assert await bus.transact(b"abcd", length=4) == b"dcba"
        for _ in range(3):
            with pytest.raises(NoReply):
                await bus.transact(b"mute", length=4)
        assert not bus.connected  # given up on the half-open socket
        assert await bus.transact(b"wxyz", length=4) == b"zyxw"
        assert len(connections) == 2
    finally:
        await bus.close()
        server.close()
        await server.wait_closed()


async def test_a_serial_line_with_a_silent_board_is_not_reopened(pty):
    bus = Bus(SerialTransport(pty.link, 9600), reply_timeout=0.02, mute_limit=2)
    assert await bus.connect()
    try:
        for _ in range(4):
            with pytest.raises(NoReply):
                await bus.transact(b"STAT", length=4, retries=0)
        assert bus.connected
    finally:
        await bus.close()
