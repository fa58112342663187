"""The boards running in this process, by bank id.

Routes and commands reach a board through here because the host builds
drivers itself and keeps them private. A board is only found in the process
that runs its driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:  # pragma: no cover
    from pigeonhole_simulator.board import SimulatedBoard

_boards: dict[str, SimulatedBoard] = {}


def _key(bank_id: UUID | str) -> str:
    return str(bank_id).lower()


def register(bank_id: UUID | str, board: SimulatedBoard) -> None:
    _boards[_key(bank_id)] = board


def unregister(bank_id: UUID | str, board: SimulatedBoard) -> None:
    # Only our own: a restarted driver may already have registered a new board.
    if _boards.get(_key(bank_id)) is board:
        del _boards[_key(bank_id)]


def get(bank_id: UUID | str) -> SimulatedBoard | None:
    return _boards.get(_key(bank_id))


def clear() -> None:
    _boards.clear()
