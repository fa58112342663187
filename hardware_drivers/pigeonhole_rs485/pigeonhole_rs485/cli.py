"""``pigeonhole rs485-sim``: simulated generic RS485 lock boards for demos, on a pty."""

from __future__ import annotations

import asyncio
import contextlib

import click
from pigeonhole.hardware.simulation import run_for_demo

from pigeonhole_rs485.simulator import Rs485Simulator


@click.command("rs485-sim")
@click.option("--boards", default="1", show_default=True, help="Board addresses (1-31), comma separated.")
@click.option("--channels", type=click.IntRange(1, 64), default=24, show_default=True)
@click.option(
    "--link", default=None, help="Path of the pty symlink the driver opens (default: a temporary path)."
)
@click.option(
    "--pulse", type=float, default=0.5, show_default=True, help="Seconds before an unlock is answered."
)
@click.option(
    "--byte-timing/--no-byte-timing", default=True, show_default=True, help="Take the wire time of 9600 baud."
)
@click.option(
    "--auto-close", type=float, default=None, metavar="SECONDS", help="A person closes each opened door."
)
def rs485_sim(boards, channels, link, pulse, byte_timing, auto_close) -> None:
    """Run simulated RS485 lock boards until interrupted; print the driver config and every frame."""
    try:
        addresses = [int(b) for b in boards.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(f"board addresses are numbers separated by commas, got {boards!r}") from None
    sim = Rs485Simulator(addresses, channels=channels, pulse=pulse, byte_timing=byte_timing)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_for_demo(sim, link=link, auto_close=auto_close, echo=click.echo))
