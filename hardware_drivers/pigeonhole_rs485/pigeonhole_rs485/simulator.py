"""A simulated generic RS485 lock board chain on a pty pair, for tests and demos."""

from __future__ import annotations

from pigeonhole.hardware.simulation import BoardSimulator

from pigeonhole_rs485 import protocol as p


class Rs485Simulator(BoardSimulator):
    """Boards of ``channels`` channels; an unlock is answered after ``pulse`` seconds."""

    baudrate = 9600
    request_starts = bytes([p.UNLOCK, p.STATUS])

    def __init__(self, boards=(1,), *, channels: int = 24, pulse: float = 0.0, **kwargs) -> None:
        self.locks_per_board = channels
        self.pulse = pulse
        super().__init__(boards, **kwargs)

    def request_length(self, start: int) -> int:
        return 5

    def check(self, frame: bytes) -> str | None:
        if not p.xor_ok(frame):
            return "bad XOR checksum"
        if frame[0] == p.UNLOCK and frame[3] != p.UNLOCK_CMD:
            return f"unlock with command {frame[3]:02X}"
        if frame[0] == p.STATUS and (frame[2], frame[3]) != (0x00, p.STATUS_CMD):
            return f"status with {frame[2]:02X} {frame[3]:02X}"
        return None

    def reply_delay_for(self, frame: bytes) -> float:
        return self.reply_delay + (self.pulse if frame[0] == p.UNLOCK else 0.0)

    def handle(self, frame: bytes) -> bytes | None:
        board = frame[1]
        if board not in self.boards:
            return None
        if frame[0] == p.STATUS:
            return p.status_reply(board, self.bits(board))
        channel = frame[2]
        if not 1 <= channel <= self.locks_per_board:
            return None
        self.fire(board, channel)
        return p.unlock_reply(board, channel, self.sensor_bit(board, channel))
