"""Relay/IO boards over Modbus RTU and Modbus TCP as Pigeonhole lock banks."""

from __future__ import annotations

import click
from pigeonhole.api import Plugin, hookimpl

from pigeonhole_modbus.config import DoorMap, ModbusConfig
from pigeonhole_modbus.driver import ModbusDriver

__all__ = ["DoorMap", "ModbusConfig", "ModbusDriver", "ModbusPlugin"]


class ModbusPlugin(Plugin):
    name = "modbus"
    description = "Lock banks on Modbus RTU or Modbus TCP relay/IO boards"

    @hookimpl
    def pigeonhole_lock_drivers(self) -> list[type[ModbusDriver]]:
        return [ModbusDriver]

    @hookimpl
    def pigeonhole_cli_commands(self, cli: click.Group) -> None:
        from pigeonhole_modbus.cli import modbus_sim

        cli.add_command(modbus_sim)
