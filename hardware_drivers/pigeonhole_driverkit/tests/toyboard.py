"""A made-up eight-lock board, small enough to show what the kit asks of a driver.

Request ``55 BB CC LL XX`` (CC 01 status, 02 unlock lock LL), XX = XOR of the
bytes before it. Status reply ``AA BB 01 SS XX`` (lock 1 in the lowest bit),
unlock reply ``AA BB 02 LL XX``. The broken drivers below each break one rule.
"""

from __future__ import annotations

from pigeonhole.api import UnlockOutcome
from pigeonhole.hardware import BadFrame, BoardConfig, BoardDriver, xor8
from pigeonhole.hardware.simulation import BoardSimulator


def frame(*body: int) -> bytes:
    return bytes(body) + bytes([xor8(bytes(body))])


class ToySimulator(BoardSimulator):
    request_starts = b"\x55"

    def request_length(self, start):
        return 5

    def check(self, f):
        return None if f[-1] == xor8(f[:-1]) else "bad XOR"

    def handle(self, f):
        board, command, lock = f[1], f[2], f[3]
        if board not in self.boards:
            return None
        if command == 1:
            return frame(0xAA, board, 1, sum(1 << i for i, bit in enumerate(self.bits(board)) if bit))
        self.fire(board, lock)
        return frame(0xAA, board, 2, lock)


class ToyConfig(BoardConfig, kw_only=True):
    pass


class ToyDriver(BoardDriver):
    name = "toy"
    Config = ToyConfig

    async def read_board(self, board):
        def bits(reply):
            if reply[:3] != bytes([0xAA, board, 1]) or reply[-1] != xor8(reply[:-1]):
                raise BadFrame(reply.hex())
            return [bool(reply[3] >> i & 1) for i in range(8)]

        return await self.bus.transact(
            frame(0x55, board, 1, 0), length=5, check=bits, retries=self.config.read_retries
        )

    async def fire(self, board, lock, retries=0):
        def acked(reply):
            if reply != frame(0xAA, board, 2, lock):
                raise BadFrame(reply.hex())

        await self.bus.transact(frame(0x55, board, 2, lock), length=5, check=acked, retries=retries)


class RepeatingDriver(ToyDriver):
    """Sends the unlock again when its acknowledgement is lost."""

    async def fire(self, board, lock, retries=0):
        await super().fire(board, lock, retries=2)


class HopefulDriver(ToyDriver):
    """Reports what it hoped rather than what the sensor saw."""

    async def unlock(self, door):
        board, lock = self.door_map[door]
        try:
            await self.fire(board, lock)
        except Exception:
            return UnlockOutcome.NO_ANSWER
        return UnlockOutcome.OPENED


class DeafDriver(ToyDriver):
    """Never looks at the doors unless asked."""

    async def start(self):
        await super().start()
        self._poller.cancel()
