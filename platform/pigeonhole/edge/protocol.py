"""The messages between the server and a site agent, over one WebSocket.

JSON text frames, one message each, tagged by ``type`` so either side can
tell what it got before it looks further. The server speaks first: on
connect it sends :class:`Banks`, the banks this agent serves, and sends it
again whenever they change. Everything else is a command and its answers,
and door changes the other way.

    server -> agent   banks    which banks to drive, with driver and config
    agent  -> server  serving  which of those it could start (answers one banks)
    server -> agent   unlock   a door command, with its id
    agent  -> server  ack      the command reached a driver that serves the bank
    agent  -> server  result   what the door sensors saw, per door
    agent  -> server  door     a door opened or closed without a command

Timestamps are the server's: it notes when an ack or result arrives, so a
site clock that drifts cannot reorder a bank's history.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from pigeonhole.api import DoorState, UnlockOutcome

PROTOCOL = 1


class BankSpec(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    #: the lock driver's name, e.g. "simulator"; the agent must have it installed
    driver: str
    #: the bank's validated driver configuration, verbatim
    driver_config: msgspec.Raw
    #: the bank's door numbers
    doors: list[int]


class Banks(msgspec.Struct, frozen=True, tag="banks"):
    #: increases with every banks message on a connection; ``serving`` echoes it
    revision: int
    tenant_id: UUID
    tenant: str
    banks: list[BankSpec]
    protocol: int = PROTOCOL


class Unlock(msgspec.Struct, frozen=True, tag="unlock"):
    id: UUID
    bank_id: UUID
    doors: list[int]
    sequential: bool = True


class Serving(msgspec.Struct, frozen=True, tag="serving"):
    revision: int
    banks: list[UUID]
    #: bank id -> why the agent cannot drive it (driver not installed, bad config)
    refused: dict[UUID, str] = {}
    agent: str = ""


class Ack(msgspec.Struct, frozen=True, tag="ack"):
    id: UUID


class Result(msgspec.Struct, frozen=True, tag="result"):
    id: UUID
    outcomes: dict[int, UnlockOutcome]


class DoorChanged(msgspec.Struct, frozen=True, tag="door"):
    bank_id: UUID
    door: int
    state: DoorState


ServerMessage = Banks | Unlock
AgentMessage = Serving | Ack | Result | DoorChanged

encode = msgspec.json.Encoder().encode
server_decoder = msgspec.json.Decoder(ServerMessage)
agent_decoder = msgspec.json.Decoder(AgentMessage)


def text(message: msgspec.Struct) -> str:
    return encode(message).decode()
