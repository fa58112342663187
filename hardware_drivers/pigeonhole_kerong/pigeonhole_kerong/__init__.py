"""Kerong KR-CU48 and KR-CU16 lock boards, on RS485 or behind a TCP bridge."""

from __future__ import annotations

import click
from pigeonhole.api import LockDriver, Plugin, hookimpl

from pigeonhole_kerong.driver import Cu16Config, Cu16Driver, Cu48Config, Cu48Driver

__all__ = ["Cu16Config", "Cu16Driver", "Cu48Config", "Cu48Driver", "KerongPlugin"]


class KerongPlugin(Plugin):
    name = "kerong"
    description = "Kerong KR-CU48 and KR-CU16 lock boards (RS485 or TCP bridge)"

    @hookimpl
    def pigeonhole_lock_drivers(self) -> list[type[LockDriver]]:
        return [Cu48Driver, Cu16Driver]

    @hookimpl
    def pigeonhole_cli_commands(self, cli: click.Group) -> None:
        from pigeonhole_kerong.cli import kerong_sim

        cli.add_command(kerong_sim)
