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
    imports_task: asyncio.Task | None = None  # scheduled SFTP imports (directory #6)
    timers_task: asyncio.Task | None = None  # durable timers: reminders, expiry (workflows #5)

    async def setup() -> None:
        nonlocal relay_stop, relay_task, imports_task, timers_task
        await engine.connect(settings)
        relay_stop = asyncio.Event()
        relay_task = asyncio.get_running_loop().create_task(
            relay.run(broker, brokers.queue_name(), settings.outbox_redeliver_seconds, relay_stop)
        )
        from pigeonhole.domain.directory import schedule as import_schedules

        imports_task = asyncio.get_running_loop().create_task(import_schedules.run_loop(relay_stop))
        from pigeonhole.domain import timers

        timers_task = asyncio.get_running_loop().create_task(timers.run_loop(relay_stop))

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


@cli.group(invoke_without_command=True)
@click.option(
    "--url",
    envvar="PIGEONHOLE_URL",
    default=None,
    help="The server, e.g. https://lockers.example.com [env PIGEONHOLE_URL; else from the credentials file]",
)
@click.option(
    "--tenant",
    envvar="PIGEONHOLE_TENANT",
    default=None,
    help="Tenant slug [env PIGEONHOLE_TENANT; else from the credentials file]",
)
@click.option(
    "--key",
    envvar="PIGEONHOLE_AGENT_KEY",
    default=None,
    help="API key of role 'agent' [env PIGEONHOLE_AGENT_KEY; else the key `agent enrol` saved]",
)
@click.option(
    "--credentials",
    "credentials_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PIGEONHOLE_AGENT_CREDENTIALS",
    default=None,
    help="The file `agent enrol` wrote [env PIGEONHOLE_AGENT_CREDENTIALS, default $PIGEONHOLE_DATA_DIR/agent-credentials.json]",
)
@click.option(
    "--max-backoff",
    type=click.FloatRange(min=0.1),
    envvar="PIGEONHOLE_AGENT_MAX_BACKOFF",
    default=30.0,
    show_default=True,
    help="Longest wait between reconnection attempts, in seconds [env PIGEONHOLE_AGENT_MAX_BACKOFF]",
)
@click.pass_context
def agent(
    ctx: click.Context,
    url: str | None,
    tenant: str | None,
    key: str | None,
    credentials_path: Path | None,
    max_backoff: float,
) -> None:
    """Run the lock agent of a site, connected to a remote server.

    The server says which banks to drive (all of the tenant's, or the one bank
    the key is bound to); their lock drivers come from the plugins installed
    here. Reconnects by itself; stops on SIGTERM or Ctrl-C. Run the server with
    PIGEONHOLE_AGENT=off when every bank has a site agent. Without --key it
    uses the credentials `pigeonhole agent enrol` saved. Every command is
    journaled beside them, so a restarted agent never fires one twice.
    """
    if ctx.invoked_subcommand is not None:
        return
    from pigeonhole.edge import credentials
    from pigeonhole.edge.site import Refused, endpoint, run_agent

    path = credentials_path or credentials.default_path()
    if key is None:
        try:
            saved = credentials.load(path)
        except credentials.EnrolmentFailed as exc:
            raise click.ClickException(str(exc)) from None
        url, tenant, key = url or saved["url"], tenant or saved["tenant"], saved["key"]
    if not url or not tenant:
        raise click.UsageError("give --url and --tenant (or enrol first: `pigeonhole agent enrol --help`)")
    try:
        endpoint(url, tenant)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    journal = credentials.journal_path(path.parent, tenant, key)
    try:
        _run(run_agent(url, tenant, key, max_backoff=max_backoff, echo=click.echo, journal_path=journal))
    except Refused as exc:
        raise click.ClickException(f"the server refused this agent: {exc}") from None


@agent.command("enrol")
@click.option("--url", envvar="PIGEONHOLE_URL", required=True, help="The server [env PIGEONHOLE_URL]")
@click.option("--tenant", envvar="PIGEONHOLE_TENANT", required=True, help="Tenant slug [env PIGEONHOLE_TENANT]")
@click.option(
    "--token",
    envvar="PIGEONHOLE_ENROLMENT_TOKEN",
    required=True,
    help="The one-time enrolment token an administrator made [env PIGEONHOLE_ENROLMENT_TOKEN]",
)
@click.option(
    "--credentials",
    "credentials_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PIGEONHOLE_AGENT_CREDENTIALS",
    default=None,
    help="Where to save the agent's key [default $PIGEONHOLE_DATA_DIR/agent-credentials.json]",
)
@click.option("--force", is_flag=True, help="Replace credentials already saved there")
def agent_enrol(url: str, tenant: str, token: str, credentials_path: Path | None, force: bool) -> None:
    """Trade a one-time enrolment token for this agent's own key, saved to a file only you can read."""
    from pigeonhole.edge import credentials

    path = credentials_path or credentials.default_path()
    try:
        saved = credentials.enrol(url, tenant, token, path, force=force)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    except credentials.EnrolmentFailed as exc:
        raise click.ClickException(str(exc)) from None
    bound = f"bank {saved['bank_id']}" if saved.get("bank_id") else "every bank of the tenant"
    click.echo(f"enrolled as agent '{saved['name']}' of tenant {tenant} ({bound}); credentials saved to {path}")
    click.echo("start it with: pigeonhole agent" + (f" --credentials {path}" if credentials_path else ""))


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


@cli.group("platform-key")
def platform_key() -> None:
    """Platform operator keys: create and suspend tenants, act inside any tenant (audited)."""


@platform_key.command("create")
@click.option("--name", required=True, help="Who holds the key (shown in tenants' audit logs)")
def platform_key_create(name: str) -> None:
    """Create a platform key and print it once (it is stored hashed)."""
    from pigeonhole.domain.errors import DomainError
    from pigeonhole.domain.identity import platform_ops

    try:
        _, key = _with_database(lambda: platform_ops.create_key(name))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    console.print(key)


@platform_key.command("list")
def platform_key_list() -> None:
    """Platform keys (never the keys themselves)."""
    from pigeonhole.domain.identity import platform_ops

    rows = _with_database(platform_ops.list_keys)
    table = Table("id", "name", "prefix", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            str(r["id"]), r["name"], r["prefix"], str(r["created_at"]), str(r["last_used_at"] or ""),
            str(r["revoked_at"] or ""),
        )
    console.print(table)


@platform_key.command("revoke")
@click.argument("key_id")
def platform_key_revoke(key_id: str) -> None:
    """Revoke a platform key by id."""
    from uuid import UUID

    from pigeonhole.domain.errors import DomainError
    from pigeonhole.domain.identity import platform_ops

    try:
        _with_database(lambda: platform_ops.revoke_key(UUID(key_id)))
    except (DomainError, ValueError) as exc:
        raise click.ClickException(getattr(exc, "message", f"'{key_id}' is not a key id")) from None
    console.print("revoked")


@cli.group()
def user() -> None:
    """Staff users of a tenant (the first administrator, before anyone can sign in)."""


@user.command("add")
@click.option("--tenant", "slug", required=True)
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", "role_name", default="enterprise_admin", show_default=True)
@click.option("--employee-id", default=None)
def user_add(slug: str, email: str, name: str, role_name: str, employee_id: str | None) -> None:
    """Add a user; the welcome email carries the link to set a password."""
    from pigeonhole.domain.context import tenant_context
    from pigeonhole.domain.errors import DomainError
    from pigeonhole.domain.identity import users

    async def add():
        async with tenant_context(slug) as ctx:
            return await users.create(
                ctx, email=email, name=name, role_name=role_name, employee_id=employee_id
            )

    try:
        row = _with_database(add)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    console.print(f"{row['id']} {row['email']} ({row['role']})")


# --- signing in (#3): the operator's way in when mail or the last administrator is locked out ---


@user.command("password-link")
@click.option("--tenant", "slug", required=True)
@click.option("--email", required=True)
def user_password_link(slug: str, email: str) -> None:
    """Print a single-use link to set the user's password (instead of mailing it)."""
    from pigeonhole.domain.context import require_tenant
    from pigeonhole.domain.errors import DomainError
    from pigeonhole.domain.identity import reset

    async def issue():
        return await reset.link_for_operator(await require_tenant(slug), email)

    try:
        link, row = _with_database(issue)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    console.print(f"single-use link for {row['email']}:", highlight=False)
    print(link)


@user.command("unlock")
@click.option("--tenant", "slug", required=True)
@click.option("--email", required=True)
def user_unlock(slug: str, email: str) -> None:
    """Unlock an account locked by failed sign-ins."""
    from pigeonhole.domain.context import require_tenant
    from pigeonhole.domain.errors import DomainError, NotFound
    from pigeonhole.domain.identity import signin

    async def unlock():
        tenant = await require_tenant(slug)
        found = await signin.user_by_email(tenant, email)
        if found is None:
            raise NotFound("User", email)
        return await signin.unlock(tenant, found["id"])

    try:
        was_locked = _with_database(unlock)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    console.print("unlocked" if was_locked else "was not locked")


@cli.command()
@click.option("--port", type=int, default=None, help="Port [env PORT, default 8000]")
@click.option("--smtp-port", type=int, default=8025, show_default=True, help="Port of the local mail sink")
def demo(port: int | None, smtp_port: int) -> None:
    """Migrate, apply every tenant in tenants/, start a local mail sink and serve."""
    from pigeonhole.devtools.demo import run_demo

    run_demo(port=port, smtp_port=smtp_port)


@cli.group("import")
def import_group() -> None:
    """Import contacts, users or locations from a CSV file (all or nothing)."""


def _import_command(kind: str, *, sync: bool):
    def command(path: Path, slug: str, dry_run: bool, deactivate_missing: bool = False) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from pigeonhole.domain.context import Actor, require_tenant
        from pigeonhole.domain.directory import csvfile, imports
        from pigeonhole.domain.errors import DomainError

        errors = Console(stderr=True)
        bar = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=False,
        )
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        async def work():
            tenant = await require_tenant(slug)
            actor = Actor(name=f"cli {os.environ.get('USER', 'unknown')}", role="admin")
            size = path.stat().st_size
            reading = bar.add_task("reading", total=max(size, 1))

            async def read():
                return await asyncio.to_thread(
                    csvfile.read_path, path, on_bytes=lambda n: bar.advance(reading, n)
                )

            return await imports.run(
                tenant,
                actor,
                kind,
                read,
                source="cli",
                filename=path.name,
                dry_run=dry_run,
                deactivate_missing=deactivate_missing,
                progress=progress,
            )

        try:
            with bar:
                report = _with_database(work)
        except imports.ImportRefused as exc:
            _print_report(exc.report)
            sys.exit(1)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        _print_report(report)

    command.__name__ = f"import_{kind}"
    command.__doc__ = (
        f"Import {kind} from the CSV file PATH into a tenant.\n\n"
        "Every row is checked first; if any is wrong, nothing is imported, every problem is listed by "
        "line and the exit status is 1. UTF-8 (with or without BOM) and Latin-1 are read."
    )
    decorated = click.option("--dry-run", is_flag=True, help="Check and count; change nothing")(command)
    if sync:
        decorated = click.option(
            "--deactivate-missing",
            is_flag=True,
            help="Directory sync: deactivate active contacts the file does not list",
        )(decorated)
    decorated = click.option("--tenant", "slug", required=True, help="Tenant slug")(decorated)
    decorated = click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))(decorated)
    return import_group.command(kind)(decorated)


def _print_report(report) -> None:
    out = Console(soft_wrap=True, highlight=False)
    out.print(report.message, markup=False)
    if report.error_count:
        for problem in report.errors:
            where = f"line {problem.line}: " if problem.line else ""
            out.print(f"  {where}{problem.message}", markup=False)
        if report.error_count > len(report.errors):
            out.print(f"  ... and {report.error_count - len(report.errors)} more", markup=False)
    if report.import_id:
        out.print(f"import {report.import_id}", markup=False)


_import_command("contacts", sync=True)
_import_command("users", sync=False)
_import_command("locations", sync=False)


@cli.command("export")
@click.argument("kind", type=click.Choice(["contacts", "users", "locations", "divisions"]))
@click.option("--tenant", "slug", required=True, help="Tenant slug")
def export_command(kind: str, slug: str) -> None:
    """Write a tenant's contacts, users, locations or divisions as CSV (UTF-8) to standard output."""
    from pigeonhole.domain.context import Actor, tenant_context
    from pigeonhole.domain.directory import exports
    from pigeonhole.domain.errors import DomainError

    async def work():
        async with tenant_context(slug, Actor(name="cli", role="admin"), write=False) as ctx:
            return list(await exports.export(ctx, kind))

    try:
        pieces = _with_database(work)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    out = click.get_text_stream("stdout", encoding="utf-8")
    for piece in pieces:
        out.write(piece)
    out.flush()


def _load_plugin_commands() -> None:
    from pigeonhole.runtime import registry

    try:
        registry.platform_pm().hook.pigeonhole_cli_commands(cli=cli)
    except Exception as exc:  # a broken plugin must not break the CLI
        print(f"warning: a plugin failed to add its commands: {exc}", file=sys.stderr)


_load_plugin_commands()


def main() -> None:
    cli()
