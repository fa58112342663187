"""Badge pickup: the card number a reader types names a person by Personnel ID."""

from __future__ import annotations

from typing import Annotated

import msgspec
from pigeonhole.api import AccessMethod, InvalidSecret, Plugin, hookimpl

__all__ = ["BadgeConfig", "BadgeMethod", "BadgePlugin"]

Length = Annotated[int, msgspec.Meta(ge=1, le=200)]


class BadgeConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: Characters a reader sends before the number (a facility code), removed when present.
    strip_prefix: str = ""
    #: Characters a reader sends after the number (a terminator such as ";"), removed when present.
    strip_suffix: str = ""
    max_length: Length = 64


class BadgeMethod(AccessMethod):
    name = "badge"
    identifies_person = True

    def __init__(self, config: BadgeConfig | None = None) -> None:
        self.config = config or BadgeConfig()

    def new_secret(self) -> str:
        raise NotImplementedError("a badge is a person's, never issued for a package")

    def normalize(self, presented: str) -> str:
        value = presented.strip()
        prefix, suffix = self.config.strip_prefix, self.config.strip_suffix
        if prefix and value.startswith(prefix):
            value = value[len(prefix) :]
        if suffix and value.endswith(suffix):
            value = value[: -len(suffix)]
        value = value.strip()
        if not value:
            raise InvalidSecret("The badge reader sent no number: present the badge again")
        if len(value) > self.config.max_length:
            raise InvalidSecret(f"A badge number has at most {self.config.max_length} characters")
        return value


class BadgePlugin(Plugin):
    name = "badge"
    Config = BadgeConfig
    description = "Pickup by badge or smart card (the contact's Personnel ID)"

    @hookimpl
    def pigeonhole_access_methods(self) -> list[BadgeMethod]:
        return [BadgeMethod(self.config)]
