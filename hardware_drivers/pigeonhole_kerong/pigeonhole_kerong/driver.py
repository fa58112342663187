"""Kerong KR-CU48 and KR-CU16 drivers: only the frames; BoardDriver does the rest."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
from pigeonhole.hardware import BoardConfig, BoardDriver, BusError, Fired

from pigeonhole_kerong import protocol as p

Baud = Annotated[int, msgspec.Meta(ge=1200, le=115200)]


class Cu48Config(BoardConfig, kw_only=True):
    """A chain of KR-CU48 boards (addresses 0-9) on RS485, or behind a TCP bridge."""

    locks_per_board: ClassVar[int] = 48
    board_addresses: ClassVar[range] = range(0, 10)
    baudrate: Baud = 19200
    #: Every board on the chain belongs to this bank: opening all of them may use
    #: the broadcast address 0A. Leave false when other banks share the chain.
    whole_chain: bool = False


class Cu16Config(BoardConfig, kw_only=True):
    """A chain of KR-CU16 boards (addresses 0-15, high nibble of ADDR)."""

    locks_per_board: ClassVar[int] = 16
    board_addresses: ClassVar[range] = range(0, 16)
    baudrate: Baud = 19200


class Cu48Driver(BoardDriver):
    name = "kerong_cu48"
    Config = Cu48Config
    can_fire_board = True
    # No vendor figure: two character times of quiet after the line went quiet (reply
    # received, or unlock frame clocked out) for the RS485 transceivers to turn around.
    gap_chars = 2

    async def read_board(self, board: int) -> list[bool]:
        return await self.bus.transact(
            p.cu48_status(board),
            length=12,
            check=lambda reply: p.cu48_read_status(reply, board),
            retries=self.config.read_retries,
        )

    async def fire(self, board: int, lock: int) -> None:
        await self.bus.send(p.cu48_unlock(board, lock))

    async def fire_board(self, board: int) -> None:
        await self.bus.send(p.cu48_unlock_board(board))

    async def fire_together(self, targets: list[tuple[int, int]]) -> dict[tuple[int, int], Fired]:
        if self.config.whole_chain and len(set(targets)) == 48 * len(self.config.boards) > 48:
            try:
                await self.bus.send(p.cu48_unlock_everything())
                return dict.fromkeys(targets, Fired(True))
            except BusError as exc:
                self._problem(f"unlock of every board: {exc}")
                return dict.fromkeys(targets, Fired(False))
        return await super().fire_together(targets)


class Cu16Driver(BoardDriver):
    name = "kerong_cu16"
    Config = Cu16Config
    can_fire_board = True
    # No vendor figure: two character times of quiet after the line went quiet (reply
    # received, or unlock frame clocked out) for the RS485 transceivers to turn around.
    gap_chars = 2

    async def read_board(self, board: int) -> list[bool]:
        hooks, _items = await self.bus.transact(
            p.cu16_status(board),
            length=9,
            check=lambda reply: p.cu16_read_status(reply, board),
            retries=self.config.read_retries,
        )
        return hooks

    async def fire(self, board: int, lock: int) -> None:
        await self.bus.send(p.cu16_unlock(board, lock))

    async def fire_board(self, board: int) -> None:
        await self.bus.send(p.cu16_unlock_board(board))
