"""The form of a pickup code; hashing and uniqueness are the host's job."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

import msgspec
from pigeonhole.api import AccessMethod, InvalidSecret

# Fewer than 4 digits is guessable in minutes; more than 12 nobody types right.
Length = Annotated[int, msgspec.Meta(ge=4, le=12)]
Hours = Annotated[int, msgspec.Meta(ge=1)]
Failures = Annotated[int, msgspec.Meta(ge=1)]

# People copy codes from emails as "123 456" or "123-456".
_SEPARATORS = str.maketrans("", "", " -\t")


class PinConfig(msgspec.Struct, forbid_unknown_fields=True):
    length: Length = 6
    #: None: the code lives as long as the package waits.
    ttl_hours: Hours | None = None
    max_failures: Failures = 5


class PinMethod(AccessMethod):
    name = "pin"

    def __init__(self, config: PinConfig | None = None) -> None:
        self.config = config or PinConfig()
        self.max_failures = self.config.max_failures

    def new_secret(self) -> str:
        # randbelow over the whole range keeps leading zeros as likely as any digit.
        length = self.config.length
        return str(secrets.randbelow(10**length)).zfill(length)

    def normalize(self, presented: str) -> str:
        code = presented.translate(_SEPARATORS)
        # isascii: str.isdigit() also accepts "²" and Arabic-Indic digits.
        if len(code) != self.config.length or not (code.isascii() and code.isdigit()):
            raise InvalidSecret(f"A pickup code has {self.config.length} digits")
        return code

    def lifetime(self) -> timedelta | None:
        if self.config.ttl_hours is None:
            return None
        return timedelta(hours=self.config.ttl_hours)
