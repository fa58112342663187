"""QR pickup tokens: a long random secret a kiosk scanner reads from the ready message."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

import msgspec
from pigeonhole.api import BASE32_ALPHABET, AccessMethod, InvalidSecret, Plugin, fold_base32, hookimpl

__all__ = ["PREFIX", "QrConfig", "QrMethod", "QrPlugin"]

#: Every token starts with this: a scanned value is recognized as a pickup token.
PREFIX = "PHQ"
#: 26 base32 characters: 130 random bits.
LENGTH = 26

Hours = Annotated[int, msgspec.Meta(ge=1)]
Failures = Annotated[int, msgspec.Meta(ge=1)]


class QrConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: None: the token lives as long as the package waits.
    ttl_hours: Hours | None = None
    max_failures: Failures = 5


class QrMethod(AccessMethod):
    name = "qr"

    def __init__(self, config: QrConfig | None = None) -> None:
        self.config = config or QrConfig()
        self.max_failures = self.config.max_failures

    def new_secret(self) -> str:
        return PREFIX + "".join(secrets.choice(BASE32_ALPHABET) for _ in range(LENGTH))

    def normalize(self, presented: str) -> str:
        token = fold_base32(presented)
        body = token[len(PREFIX) :]
        if (
            not token.startswith(PREFIX)
            or len(body) != LENGTH
            or any(c not in BASE32_ALPHABET for c in body)
        ):
            raise InvalidSecret(
                f"A QR pickup token starts with {PREFIX} and has {LENGTH} more letters and digits: "
                "scan the QR code of the message"
            )
        return token

    def lifetime(self) -> timedelta | None:
        if self.config.ttl_hours is None:
            return None
        return timedelta(hours=self.config.ttl_hours)


class QrPlugin(Plugin):
    name = "qr"
    Config = QrConfig
    description = "QR pickup tokens scanned at the kiosk (never the six-digit code)"

    @hookimpl
    def pigeonhole_access_methods(self) -> list[QrMethod]:
        return [QrMethod(self.config)]
