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
    agent  -> server  heartbeat  every ``heartbeat_seconds``: the server shows the agent online
    agent  -> server  outcomes what the agent knows of commands the server has not settled
                               (sent on every connect: results lost with a link, or
                               "unknown" for a command it started and never finished)
    server -> agent   settled  the server recorded these commands: the agent may forget them

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
    #: how often the agent sends a heartbeat; silence for a few of them is "offline"
    heartbeat_seconds: float = 10.0


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


class BankHealth(msgspec.Struct, frozen=True):
    ok: bool
    detail: str = ""


class Heartbeat(msgspec.Struct, frozen=True, tag="heartbeat"):
    #: bank id -> what its driver says of itself
    health: dict[UUID, BankHealth] = {}


class Known(msgspec.Struct, frozen=True):
    id: UUID
    bank_id: UUID
    doors: list[int]
    #: None: the agent started the command and never learnt how it ended (it was killed)
    outcomes: dict[int, UnlockOutcome] | None = None


class Outcomes(msgspec.Struct, frozen=True, tag="outcomes"):
    commands: list[Known]


class Settled(msgspec.Struct, frozen=True, tag="settled"):
    ids: list[UUID]


ServerMessage = Banks | Unlock | Settled
AgentMessage = Serving | Ack | Result | DoorChanged | Heartbeat | Outcomes

encode = msgspec.json.Encoder().encode
server_decoder = msgspec.json.Decoder(ServerMessage)
agent_decoder = msgspec.json.Decoder(AgentMessage)


def text(message: msgspec.Struct) -> str:
    return encode(message).decode()
