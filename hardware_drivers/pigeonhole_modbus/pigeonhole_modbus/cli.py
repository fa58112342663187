"""``pigeonhole modbus-sim``: simulated Modbus relay boards for demos and trials, until Ctrl-C.

It prints the ``driver_config`` a bank needs to drive them exactly as it
would drive the hardware.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click


@click.command("modbus-sim")
@click.option(
    "--tcp",
    "port",
    type=int,
    default=None,
    metavar="PORT",
    help="Serve Modbus TCP on 127.0.0.1:PORT (0: a free port). Default: RTU on a pty pair.",
)
@click.option(
    "--link",
    "link_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="RTU: folder of the pty pair; the driver opens LINK/driver (default: a temporary folder).",
)
@click.option(
    "--units", default="1", show_default=True, help="Unit ids on the line (1-247), comma separated."
)
@click.option("--channels", type=click.IntRange(1, 64), default=8, show_default=True, help="Relays per unit.")
@click.option(
    "--baudrate",
    type=int,
    default=9600,
    show_default=True,
    help="RTU: replies take the wire time of this rate (0: at once).",
)
@click.option(
    "--auto-close", type=float, default=None, metavar="SECONDS", help="A person closes each opened door."
)
def modbus_sim(port, link_dir, units, channels, baudrate, auto_close) -> None:
    """Run simulated Modbus relay/IO boards until interrupted; print the bank's driver_config."""
    if port is not None and link_dir is not None:
        raise click.UsageError("--tcp and --link exclude each other (TCP, or RTU on a pty pair)")
    try:
        unit_ids = [int(u) for u in units.split(",") if u.strip()]
    except ValueError:
        raise click.BadParameter(f"unit ids are numbers separated by commas, got {units!r}") from None
    if not unit_ids or not all(1 <= u <= 247 for u in unit_ids):
        raise click.BadParameter(f"unit ids are 1..247, got {units!r}", param_hint="--units")
    auto_close_ms = None if auto_close is None else int(auto_close * 1000)
    asyncio.run(_run(port, link_dir, unit_ids, channels, baudrate or None, auto_close_ms))


async def _run(port, link_dir, unit_ids, channels, baudrate, auto_close_ms) -> None:
    from pigeonhole_modbus.simulator import ModbusSimulator, SimulatedUnit

    sim = ModbusSimulator([SimulatedUnit(u, channels, auto_close_ms=auto_close_ms) for u in unit_ids])
    if port is None:
        await sim.start_rtu(link_dir, baudrate=baudrate)
        link = f'transport = "rtu", serial_port = "{sim.serial_port}", baudrate = {baudrate or 9600}'
    else:
        await sim.start_tcp(port)
        link = f'transport = "tcp", host = "127.0.0.1", port = {sim.port}'
    click.echo(f"modbus-sim: units {', '.join(map(str, unit_ids))}, {channels} relays each")
    click.echo(
        f"driver_config = {{ {link}, unit = {unit_ids[0]} }}",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
