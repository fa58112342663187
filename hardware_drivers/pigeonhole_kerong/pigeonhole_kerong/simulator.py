"""Simulated Kerong boards on a pty pair or a TCP bridge, for tests and demos."""

from __future__ import annotations

from pigeonhole.hardware.simulation import BoardSimulator

from pigeonhole_kerong import protocol as p


class Cu48Simulator(BoardSimulator):
    """A chain of KR-CU48 boards: 48 locks each, status 50, unlock 51, no unlock reply."""

    baudrate = 19200
    request_starts = bytes([p.STX])
    locks_per_board = 48

    def request_length(self, start: int) -> int:
        return 6

    def check(self, frame: bytes) -> str | None:
        if not p.checksum_ok(frame):
            return "bad end byte or checksum"
        address, lock, command = frame[1], frame[2], frame[3]
        if command not in (p.CU48_STATUS, p.CU48_UNLOCK):
            return f"unknown command {command:02X}"
        if address > p.CU48_ALL_BOARDS or lock > p.CU48_ALL_LOCKS:
            return f"address {address:02X} or lock {lock:02X} out of range"
        if address == p.CU48_ALL_BOARDS and command == p.CU48_STATUS:
            return "status of every board at once"
        return None

    def handle(self, frame: bytes) -> bytes | None:
        address, lock, command = frame[1], frame[2], frame[3]
        boards = self.boards if address == p.CU48_ALL_BOARDS else [address] if address in self.boards else []
        if command == p.CU48_STATUS:
            return p.cu48_status_reply(address, self.bits(address)) if boards else None
        for board in boards:
            locks = range(1, 49) if lock == p.CU48_ALL_LOCKS else [lock + 1]
            for number in locks:
                self.fire(board, number)
        return None


class Cu16Simulator(BoardSimulator):
    """A chain of KR-CU16 boards: 16 locks each, status 30, unlock 31, all 33."""

    baudrate = 19200
    request_starts = bytes([p.STX])
    locks_per_board = 16

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: (board, lock) of compartments whose infrared sensor sees an item.
        self.items: set[tuple[int, int]] = set()

    def request_length(self, start: int) -> int:
        return 5

    def check(self, frame: bytes) -> str | None:
        if not p.checksum_ok(frame):
            return "bad end byte or checksum"
        if frame[2] not in (p.CU16_STATUS, p.CU16_UNLOCK, p.CU16_UNLOCK_ALL):
            return f"unknown command {frame[2]:02X}"
        return None

    def handle(self, frame: bytes) -> bytes | None:
        board, lock, command = frame[1] >> 4, (frame[1] & 0x0F) + 1, frame[2]
        if board not in self.boards:
            return None
        if command == p.CU16_STATUS:
            items = [(board, n) in self.items for n in range(1, 17)]
            return p.cu16_status_reply(board, self.bits(board), items)
        for number in range(1, 17) if command == p.CU16_UNLOCK_ALL else [lock]:
            self.fire(board, number)
        return None
