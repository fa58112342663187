"""The common unbranded 8-50 channel RS485 lock boards (XOR checksum, DIP address)."""

from __future__ import annotations

import click
from pigeonhole.api import LockDriver, Plugin, hookimpl

from pigeonhole_rs485.driver import Rs485Config, Rs485Driver

__all__ = ["Rs485Config", "Rs485Driver", "Rs485Plugin"]


class Rs485Plugin(Plugin):
    name = "rs485"
    description = "Generic 8-50 channel RS485 lock boards (XOR checksum, DIP address)"

    @hookimpl
    def pigeonhole_lock_drivers(self) -> list[type[LockDriver]]:
        return [Rs485Driver]

    @hookimpl
    def pigeonhole_cli_commands(self, cli: click.Group) -> None:
        from pigeonhole_rs485.cli import rs485_sim

        cli.add_command(rs485_sim)
