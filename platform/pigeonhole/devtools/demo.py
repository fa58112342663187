"""``pigeonhole demo``: everything on the embedded defaults, in one process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from rich.console import Console

from pigeonhole.settings import get_settings, set_settings

console = Console()


def _tenant_folders() -> list[Path]:
    root = Path(os.environ.get("PIGEONHOLE_TENANTS_DIR", "tenants"))
    return sorted(p for p in root.iterdir() if (p / "tenant.toml").exists()) if root.exists() else []


def run_demo(port: int | None, smtp_port: int) -> None:
    import uvicorn

    from pigeonhole.db import engine
    from pigeonhole.db.migrate import migrate
    from pigeonhole.devtools.mailsink import MailSink
    from pigeonhole.manifests.apply import apply, load
    from pigeonhole.web.app import create_app

    if port is not None:
        os.environ["PORT"] = str(port)
    os.environ.setdefault("PIGEONHOLE_SMTP_URL", f"smtp://127.0.0.1:{smtp_port}")
    set_settings(None)
    settings = get_settings()
    folders = _tenant_folders()

    async def prepare():
        await migrate(settings.database_url, echo=lambda m: console.print(f"  migration {m}"))
        await engine.connect(settings)
        try:
            for folder in folders:
                report = await apply(folder)
                console.print(f"  tenant {report.slug}: {len(report.changes) or 'no'} change(s)")
        finally:
            await engine.disconnect()

    console.print("[bold]Pigeonhole demo[/] (SQLite, embedded broker, worker and agent)")
    asyncio.run(prepare())
    mail_dir = settings.data_dir / "mail"
    sink = MailSink(
        mail_dir,
        port=smtp_port,
        on_mail=lambda to, subject, path: console.print(f"[cyan]mail[/] to {to}: {subject}  -> {path}"),
    )
    try:
        sink.start()
    except OSError as exc:
        raise SystemExit(
            f"cannot start the mail sink on 127.0.0.1:{smtp_port} ({exc.strerror}): is another demo "
            "running? Stop it, or pick another port with --smtp-port."
        ) from None
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"\n  API             {base}/api/v1/t/<tenant>/")
    console.print(f"  API reference   {base}/api/v1/schema/swagger")
    console.print(f"  Health          {base}/health")
    console.print(f"  Mail sink       smtp://127.0.0.1:{smtp_port}, mails saved in {mail_dir}")
    console.print(f"  Database        {settings.database_url}")
    for folder in folders:
        manifest, _ = load(folder)
        for key in manifest.api_keys:
            where = f" at {key.bank}" if key.bank else ""
            console.print(f"  {manifest.slug:<10} {key.role:<9}{where}: {key.key}")
    console.print("\n  The README's tour walks a package from deposit to pickup with curl. Ctrl+C stops.\n")
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            timeout_keep_alive=75,
        )
    finally:
        sink.stop()
