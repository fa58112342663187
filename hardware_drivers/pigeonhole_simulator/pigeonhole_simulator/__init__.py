"""A lock board that lives in memory: demos, benchmarks and tests without hardware."""

from __future__ import annotations

from typing import Any

import click
from pigeonhole.api import Plugin, hookimpl

from pigeonhole_simulator import registry
from pigeonhole_simulator.board import Fault, SimulatedBoard
from pigeonhole_simulator.driver import SimulatorConfig, SimulatorDriver

__all__ = [
    "Fault",
    "SimulatedBoard",
    "SimulatorConfig",
    "SimulatorDriver",
    "SimulatorPlugin",
    "registry",
]


class SimulatorPlugin(Plugin):
    name = "simulator"
    description = "Simulated lock boards, driven from the API or the command line"

    @hookimpl
    def pigeonhole_lock_drivers(self) -> list[type[SimulatorDriver]]:
        return [SimulatorDriver]

    @hookimpl
    def pigeonhole_routes(self) -> list[Any]:
        from pigeonhole_simulator.routes import route_handlers

        return route_handlers()

    @hookimpl
    def pigeonhole_cli_commands(self, cli: click.Group) -> None:
        from pigeonhole_simulator.cli import simulator

        cli.add_command(simulator)
