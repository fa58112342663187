"""HTTP control of simulated boards: close doors, pry them open, break them.

Mounted by the host under ``/api/v1/t/{tenant}/ext/simulator/``, which
injects ``plugin_request`` and refuses tenants that did not enable the plugin.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from pigeonhole.api import PluginRequest

from pigeonhole_simulator import registry
from pigeonhole_simulator.board import Fault, SimulatedBoard


class FaultBody(msgspec.Struct, forbid_unknown_fields=True):
    fault: Fault | None


def _board(bank_id: UUID, plugin_request: PluginRequest) -> SimulatedBoard:
    board = registry.get(bank_id)
    # Another tenant's bank answers exactly like a missing one: ids do not leak.
    if board is None or str(board.tenant_id) != str(plugin_request.tenant_id):
        raise NotFoundException(f"No simulated board for bank {bank_id}")
    return board


def _door(board: SimulatedBoard, bank_id: UUID, door: int) -> None:
    if door not in board.states:
        raise NotFoundException(f"Bank {bank_id} has no door {door}")


def _door_json(board: SimulatedBoard, bank_id: UUID, door: int) -> dict[str, Any]:
    fault = board.faults.get(door)
    return {
        "bank_id": str(bank_id),
        "door": door,
        "state": str(board.states[door]),
        "fault": str(fault) if fault else None,
    }


@get("/banks/{bank_id:uuid}/doors")
async def list_doors(
    bank_id: FromPath[UUID], plugin_request: NamedDependency[PluginRequest]
) -> dict[str, Any]:
    board = _board(bank_id, plugin_request)
    return {
        "bank_id": str(bank_id),
        "doors": [_door_json(board, bank_id, door) for door in board.states],
    }


@post("/banks/{bank_id:uuid}/doors/{door:int}/close", status_code=200)
async def close_door(
    bank_id: FromPath[UUID], door: FromPath[int], plugin_request: NamedDependency[PluginRequest]
) -> dict[str, Any]:
    board = _board(bank_id, plugin_request)
    _door(board, bank_id, door)
    await board.call(board.close(door))
    return _door_json(board, bank_id, door)


@post("/banks/{bank_id:uuid}/doors/{door:int}/force-open", status_code=200)
async def force_open_door(
    bank_id: FromPath[UUID], door: FromPath[int], plugin_request: NamedDependency[PluginRequest]
) -> dict[str, Any]:
    board = _board(bank_id, plugin_request)
    _door(board, bank_id, door)
    await board.call(board.force_open(door))
    return _door_json(board, bank_id, door)


@put("/banks/{bank_id:uuid}/doors/{door:int}/fault", status_code=200)
async def set_fault(
    bank_id: FromPath[UUID],
    door: FromPath[int],
    data: JSONBody[FaultBody],
    plugin_request: NamedDependency[PluginRequest],
) -> dict[str, Any]:
    board = _board(bank_id, plugin_request)
    _door(board, bank_id, door)
    board.set_fault(door, data.fault)
    return _door_json(board, bank_id, door)


def route_handlers() -> list[Any]:
    return [list_doors, close_door, force_open_door, set_fault]
