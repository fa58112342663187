"""Which Slack rooms a tenant posts to, and what each carries."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from pigeonhole.api import Secret

_ROOM_NAME = re.compile(r"^[a-z0-9_\-]{1,40}$")


def _check_url(label: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{label}: must be an http:// or https:// URL with a host")


class Room(msgspec.Struct, forbid_unknown_fields=True):
    """Another room: its own webhook and its own events (channel ``slack.<name>``)."""

    name: str
    #: A Secret (stored sealed, never shown back): whoever has it can post in the room.
    webhook_url: Secret
    events: list[str] = []
    alerts: bool = True
    language: Literal["en", "fr"] = "en"


class SlackConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: The incoming webhook of the mailroom's room. A Secret (stored sealed, never shown
    #: back): whoever has it can post there.
    webhook_url: Secret
    #: Package events the room carries (``package.ready``, ``package.*``, ``*``); empty: none.
    events: list[str] = []
    #: Whether staff alerts (a forced door, a door left open...) go to the room.
    alerts: bool = True
    language: Literal["en", "fr"] = "en"
    #: More rooms, each its own channel ``slack.<name>`` with its own status per message.
    rooms: list[Room] = []
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10

    def __post_init__(self) -> None:
        _check_url("webhook_url", self.webhook_url)
        seen = set()
        for index, room in enumerate(self.rooms):
            if not _ROOM_NAME.match(room.name):
                raise ValueError(f"rooms[{index}].name: use 1-40 lowercase letters, digits, '-' or '_'")
            if room.name in seen:
                raise ValueError(f"rooms[{index}].name: '{room.name}' is used twice")
            seen.add(room.name)
            _check_url(f"rooms[{index}].webhook_url", room.webhook_url)
