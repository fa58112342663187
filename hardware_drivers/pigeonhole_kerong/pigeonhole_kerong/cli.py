"""``pigeonhole kerong-sim``: a simulated Kerong chain for demos, on a pty or a TCP port."""

from __future__ import annotations

import asyncio
import contextlib

import click
from pigeonhole.hardware.simulation import run_for_demo

from pigeonhole_kerong.simulator import Cu16Simulator, Cu48Simulator


@click.command("kerong-sim")
@click.option("--model", type=click.Choice(["cu48", "cu16"]), default="cu48", show_default=True)
@click.option("--boards", default="0", show_default=True, help="Board addresses, comma separated.")
@click.option(
    "--tcp", "tcp_port", type=int, default=None, help="Serve as a TCP bridge on 127.0.0.1:PORT (0: any)."
)
@click.option(
    "--link", default=None, help="Path of the pty symlink the driver opens (default: a temporary path)."
)
@click.option(
    "--byte-timing/--no-byte-timing",
    default=True,
    show_default=True,
    help="Take the wire time of 19200 baud.",
)
@click.option(
    "--auto-close", type=float, default=None, metavar="SECONDS", help="A person closes each opened door."
)
def kerong_sim(model, boards, tcp_port, link, byte_timing, auto_close) -> None:
    """Run a simulated Kerong chain until interrupted; print the driver config and every frame."""
    try:
        addresses = [int(b) for b in boards.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(f"board addresses are numbers separated by commas, got {boards!r}") from None
    sim = (Cu48Simulator if model == "cu48" else Cu16Simulator)(addresses, byte_timing=byte_timing)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_for_demo(sim, tcp_port=tcp_port, link=link, auto_close=auto_close, echo=click.echo))
