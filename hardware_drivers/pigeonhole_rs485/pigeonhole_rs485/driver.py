"""The generic RS485 lock board driver: only the frames; BoardDriver does the rest."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
from pigeonhole.hardware import BoardConfig, BoardDriver

from pigeonhole_rs485 import protocol as p


class Rs485Config(BoardConfig, kw_only=True):
    """Boards with DIP addresses 1-31 on one RS485 line, all with the same channel count."""

    board_addresses: ClassVar[range] = range(1, 32)
    baudrate: Annotated[int, msgspec.Meta(ge=1200, le=115200)] = 9600
    boards: tuple[int, ...] = (1,)
    #: Channels (locks) on each board: the common boards have 8 to 50.
    channels: Annotated[int, msgspec.Meta(ge=1, le=64)] = 24
    #: The board answers an unlock after its pulse: wait this long for that answer.
    unlock_timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=10_000)] = 1500
    settle_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 0

    @property
    def locks_per_board(self) -> int:
        return self.channels


class Rs485Driver(BoardDriver):
    name = "rs485_board"
    Config = Rs485Config
    gap = 0.005  # field lesson: about 5 ms between transactions
    silence = 0.025  # and 25 ms of silence ends a frame

    async def read_board(self, board: int) -> list[bool]:
        channels = self.config.channels
        return await self.bus.transact(
            p.status(board),
            length=p.groups(channels) + 4,
            check=lambda reply: p.read_status(reply, board, channels),
            retries=self.config.read_retries,
        )

    async def fire(self, board: int, lock: int) -> bool:
        return await self.bus.transact(  # the reply carries the sensor after the pulse
            p.unlock(board, lock),
            length=5,
            check=lambda reply: p.read_unlock_reply(reply, board, lock),
            timeout=self.config.unlock_timeout_ms / 1000,
        )
