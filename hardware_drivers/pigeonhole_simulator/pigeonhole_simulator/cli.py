"""``pigeonhole simulator ...``: poke a simulated board through a running server.

The board lives in the server's process, so the command goes through the
HTTP API rather than the registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from uuid import UUID

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
FAULTS = ("jammed", "no_answer", "none")


def _client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=10)


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    @click.option(
        "--url",
        envvar="PIGEONHOLE_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Pigeonhole server (env PIGEONHOLE_URL).",
    )
    @click.option("--tenant", required=True, metavar="SLUG", help="Tenant slug.")
    @click.option("--bank", required=True, type=click.UUID, help="Bank id.")
    @click.option("--key", envvar="PIGEONHOLE_API_KEY", help="API key (env PIGEONHOLE_API_KEY).")
    @functools.wraps(command)
    def wrapper(url: str, tenant: str, bank: UUID, key: str | None, **kwargs: Any) -> Any:
        return command(
            _Api(url, f"/api/v1/t/{quote(tenant, safe='')}/ext/simulator/banks/{bank}", key),
            **kwargs,
        )

    return wrapper


class _Api:
    def __init__(self, url: str, prefix: str, key: str | None) -> None:
        self.url = url.rstrip("/")
        self.prefix = prefix
        self.key = key

    def call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        try:
            with _client(self.url, self.key) as client:
                response = client.request(method, self.prefix + path, json=json)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc}") from None
        if response.is_error:
            raise click.ClickException(f"{response.status_code}: {_error_message(response)}")
        return response.json()


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])
    return str(body)


def _echo_door(door: dict[str, Any]) -> None:
    fault = f" (fault: {door['fault']})" if door.get("fault") else ""
    click.echo(f"door {door['door']}: {door['state']}{fault}")


@click.group()
def simulator() -> None:
    """Drive a simulated lock board of a running server."""


@simulator.command()
@_connection_options
def doors(api: _Api) -> None:
    """Show every door of the bank."""
    for door in api.call("GET", "/doors")["doors"]:
        _echo_door(door)


@simulator.command()
@click.argument("door", type=int)
@_connection_options
def close(api: _Api, door: int) -> None:
    """Close DOOR, as a person would."""
    _echo_door(api.call("POST", f"/doors/{door}/close"))


@simulator.command("force-open")
@click.argument("door", type=int)
@_connection_options
def force_open(api: _Api, door: int) -> None:
    """Open DOOR without a command (a pried door)."""
    _echo_door(api.call("POST", f"/doors/{door}/force-open"))


@simulator.command()
@click.argument("door", type=int)
@click.argument("fault", type=click.Choice(FAULTS))
@_connection_options
def fault(api: _Api, door: int, fault: str) -> None:
    """Make DOOR fail its unlocks (jammed, no_answer), or heal it (none)."""
    _echo_door(
        api.call("PUT", f"/doors/{door}/fault", {"fault": None if fault == "none" else fault})
    )
