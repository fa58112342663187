"""Settings come from the environment, so one build runs anywhere.

Every variable is documented in the README. Defaults are the embedded ones:
SQLite in ``./var``, the in-process broker and the in-process agent, so that
``make demo`` needs no server at all.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def _data_dir() -> Path:
    return Path(os.environ.get("PIGEONHOLE_DATA_DIR", "var")).resolve()


def _secret_key(data_dir: Path) -> str:
    """A stable secret: from the environment, else generated once into the data dir.

    Codes are stored as keyed digests of this secret; losing it invalidates
    every active code, so it is written to disk rather than regenerated.
    """
    env = os.environ.get("PIGEONHOLE_SECRET_KEY")
    if env:
        return env
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _app_database_url(owner_url: str) -> str:
    """The URL the application connects with: the non-owner role on PostgreSQL.

    Row-level security does not apply to a table's owner, so the application
    must never connect as the role that ran the migrations.
    """
    explicit = os.environ.get("PIGEONHOLE_APP_DATABASE_URL")
    if explicit:
        return explicit
    if not owner_url.startswith(("postgres://", "postgresql://")):
        return owner_url
    parts = urlsplit(owner_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{APP_ROLE}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


APP_ROLE = os.environ.get("PIGEONHOLE_APP_ROLE", "pigeonhole_app")


@dataclass
class Settings:
    data_dir: Path = field(default_factory=_data_dir)
    database_url: str = ""
    app_database_url: str = ""
    broker_url: str | None = None
    smtp_url: str = ""
    secret_key: str = ""
    port: int = 8000
    host: str = "127.0.0.1"
    embedded_agent: bool = True
    embedded_worker: bool = True
    outbox_redeliver_seconds: float = 120.0
    public_url: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = _data_dir()
        db = os.environ.get("PIGEONHOLE_DATABASE_URL", f"sqlite:///{data_dir / 'pigeonhole.sqlite3'}")
        port = int(os.environ.get("PORT", "8000"))
        host = os.environ.get("PIGEONHOLE_HOST", "127.0.0.1")
        broker = os.environ.get("PIGEONHOLE_BROKER_URL") or None
        return cls(
            data_dir=data_dir,
            database_url=db,
            app_database_url=_app_database_url(db),
            broker_url=broker,
            smtp_url=os.environ.get("PIGEONHOLE_SMTP_URL", "smtp://127.0.0.1:8025"),
            secret_key=_secret_key(data_dir),
            port=port,
            host=host,
            embedded_agent=os.environ.get("PIGEONHOLE_AGENT", "embedded") == "embedded",
            # With an external broker a separate `pigeonhole worker` consumes;
            # the embedded broker lives in this process, so its worker must too.
            embedded_worker=os.environ.get("PIGEONHOLE_WORKER", "external" if broker else "embedded")
            == "embedded",
            outbox_redeliver_seconds=float(os.environ.get("PIGEONHOLE_OUTBOX_REDELIVER_SECONDS", "300")),
            public_url=os.environ.get("PIGEONHOLE_PUBLIC_URL", f"http://{host}:{port}"),
        )

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def set_settings(settings: Settings | None) -> None:
    """Tests and the CLI install their own settings before anything connects."""
    global _settings
    _settings = settings
