"""Numeric pickup codes: the credential every keypad can take."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_pin.method import PinConfig, PinMethod

__all__ = ["PinConfig", "PinMethod", "PinPlugin"]


class PinPlugin(Plugin):
    name = "pin"
    Config = PinConfig
    description = "Numeric pickup codes typed on the locker keypad"

    @hookimpl
    def pigeonhole_access_methods(self) -> list[PinMethod]:
        return [PinMethod(self.config)]
