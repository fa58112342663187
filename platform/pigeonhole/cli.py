"""The ``pigeonhole`` command line.

Settings come from the environment (see the README); every command has
``--help``. Plugins add their own commands through ``pigeonhole_cli_commands``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from pigeonhole.settings import get_settings

console = Console()


def _run(coro):
    return asyncio.run(coro)


def _with_database(work):
    """Run ``await work()`` connected to the database, and disconnect whatever happens."""
    from pigeonhole.db import engine

    async def go():
        await engine.connect(get_settings())
        try:
            return await work()
        finally:
            await engine.disconnect()

    return asyncio.run(go())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default=os.environ.get("PIGEONHOLE_LOG_LEVEL", "WARNING"), show_default=True)
def cli(log_level: str) -> None:
    """Pigeonhole: a multi-tenant platform for smart parcel lockers."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
def migrate() -> None:
    """Apply pending database migrations (SQLite or PostgreSQL, from PIGEONHOLE_DATABASE_URL)."""
    from pigeonhole.db.migrate import migrate as run_migrations

    applied = _run(run_migrations(get_settings().database_url, echo=lambda m: console.print(f"  {m}")))
    console.print(f"[green]database is up to date[/] ({len(applied)} migration(s) applied)")


@cli.command()
@click.option("--host", default=None, help="Interface to listen on [env PIGEONHOLE_HOST, default 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port [env PORT, default 8000]")
def serve(host: str | None, port: int | None) -> None:
    """Run the API server (with the embedded broker, worker and agent unless configured otherwise)."""
    import uvicorn

    from pigeonhole.web.app import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=os.environ.get("PIGEONHOLE_LOG_LEVEL", "warning").lower(),
        access_log=False,
        # Kiosks and partners keep connections open; 5 s (uvicorn's default) races their next request.
        timeout_keep_alive=75,
    )


@cli.command()
@click.option("--threads", type=int, default=4, show_default=True, help="Worker threads")
def worker(threads: int) -> None:
    """Consume the broker (PIGEONHOLE_BROKER_URL) and relay the outbox: sends notifications."""
    import signal
    import threading

    import dramatiq

    from pigeonhole.db import engine
    from pigeonhole.messaging import broker as brokers
    from pigeonhole.messaging import loop, relay

    settings = get_settings()
    if not settings.broker_url:
        raise click.ClickException(
            "PIGEONHOLE_BROKER_URL is not set: with the embedded broker, `pigeonhole serve` runs the worker itself"
        )
    stop = threading.Event()
    relay_stop: asyncio.Event | None = None
    relay_task: asyncio.Task | None = None  # held: the loop keeps only weak references to tasks

    async def setup() -> None:
        nonlocal relay_stop, relay_task
        await engine.connect(settings)
        relay_stop = asyncio.Event()
        relay_task = asyncio.get_running_loop().create_task(
            relay.run(broker, brokers.queue_name(), settings.outbox_redeliver_seconds, relay_stop)
        )

    for sig in (signal.SIGINT, signal.SIGTERM):  # first: a stop during start-up is clean too
        signal.signal(sig, lambda *_: stop.set())
    broker = brokers.make_broker(settings.broker_url)
    event_loop = loop.start_own_loop(setup)
    w = dramatiq.Worker(broker, worker_threads=threads)
    w.start()
    console.print(f"worker running on {brokers.describe(settings.broker_url)} (queue {brokers.queue_name()})")
    stop.wait()
    w.stop()
    event_loop.call_soon_threadsafe(relay_stop.set)
    broker.close()


@cli.command()
@click.option(
    "--url",
    envvar="PIGEONHOLE_URL",
    required=True,
    help="The server, e.g. https://lockers.example.com [env PIGEONHOLE_URL]",
)
@click.option(
    "--tenant", envvar="PIGEONHOLE_TENANT", required=True, help="Tenant slug [env PIGEONHOLE_TENANT]"
)
@click.option(
    "--key",
    envvar="PIGEONHOLE_AGENT_KEY",
    required=True,
    help="API key of role 'agent' [env PIGEONHOLE_AGENT_KEY; prefer it: arguments show in ps]",
)
@click.option(
    "--max-backoff",
    type=click.FloatRange(min=0.1),
    envvar="PIGEONHOLE_AGENT_MAX_BACKOFF",
    default=30.0,
    show_default=True,
    help="Longest wait between reconnection attempts, in seconds [env PIGEONHOLE_AGENT_MAX_BACKOFF]",
)
def agent(url: str, tenant: str, key: str, max_backoff: float) -> None:
    """Run the lock agent of a site, connected to a remote server.

    The server says which banks to drive (all of the tenant's, or the one bank
    the key is bound to); their lock drivers come from the plugins installed
    here. Reconnects by itself; stops on SIGTERM or Ctrl-C. Run the server with
    PIGEONHOLE_AGENT=off when every bank has a site agent.
    """
    from pigeonhole.edge.site import Refused, endpoint, run_agent

    try:
        endpoint(url, tenant)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    try:
        _run(run_agent(url, tenant, key, max_backoff=max_backoff, echo=click.echo))
    except Refused as exc:
        raise click.ClickException(f"the server refused this agent: {exc}") from None


@cli.group()
def tenant() -> None:
    """Create, update and list tenants."""


@tenant.command("apply")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def tenant_apply(folder: Path) -> None:
    """Create or update a tenant from FOLDER/tenant.toml; prints what changed."""
    from pigeonhole.manifests.apply import ManifestError, apply

    try:
        report = _with_database(lambda: apply(folder))
    except ManifestError as exc:
        raise click.ClickException(f"nothing applied: {exc}") from None
    if not report.changed:
        console.print(f"tenant {report.slug}: no changes")
        return
    console.print(f"tenant {report.slug}: {len(report.changes)} change(s)")
    for line in report.changes:
        console.print(f"  {line}", markup=False, soft_wrap=True)  # one change per line, even piped


@tenant.command("list")
def tenant_list() -> None:
    """List tenants."""
    from pigeonhole.db.tables import Tenant

    rows = _with_database(lambda: Tenant.select().order_by(Tenant.slug).run())
    table = Table("slug", "name", "status", "created")
    for row in rows:
        table.add_row(row["slug"], row["name"], row["status"], row["created_at"].strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@cli.group()
def apikey() -> None:
    """Create API keys for integrations, operators and kiosks."""


@apikey.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "operator", "kiosk", "agent"]), required=True)
@click.option("--bank", "bank_id", default=None, help="Bank id (required for kiosk keys)")
def apikey_create(slug: str, name: str, role: str, bank_id: str | None) -> None:
    """Create a key and print it once."""
    from uuid import UUID

    from pigeonhole.domain import apikeys
    from pigeonhole.domain.context import tenant_context
    from pigeonhole.domain.errors import DomainError

    async def create():
        async with tenant_context(slug) as ctx:
            return await apikeys.create(ctx, name, role, UUID(bank_id) if bank_id else None)

    try:
        _, key = _with_database(create)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    console.print(key)


@cli.command()
@click.option("--port", type=int, default=None, help="Port [env PORT, default 8000]")
@click.option("--smtp-port", type=int, default=8025, show_default=True, help="Port of the local mail sink")
def demo(port: int | None, smtp_port: int) -> None:
    """Migrate, apply every tenant in tenants/, start a local mail sink and serve."""
    from pigeonhole.devtools.demo import run_demo

    run_demo(port=port, smtp_port=smtp_port)


def _load_plugin_commands() -> None:
    from pigeonhole.runtime import registry

    try:
        registry.platform_pm().hook.pigeonhole_cli_commands(cli=cli)
    except Exception as exc:  # a broken plugin must not break the CLI
        print(f"warning: a plugin failed to add its commands: {exc}", file=sys.stderr)


_load_plugin_commands()


def main() -> None:
    cli()
