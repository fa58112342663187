"""A local SMTP server that keeps every mail as a file: the demo's inbox.

Real SMTP on loopback, so the demo sends mail exactly as a deployment would;
nothing leaves the machine.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, folder: Path, on_mail: Callable[[str, str, Path], None] | None) -> None:
        self.folder = folder
        self.on_mail = on_mail
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{n:04d}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if self.on_mail:
            self.on_mail(", ".join(envelope.rcpt_tos), str(message["subject"]), path)
        return "250 Message accepted for delivery"


class MailSink:
    def __init__(
        self,
        folder: Path,
        host: str = "127.0.0.1",
        port: int = 8025,
        on_mail: Callable[[str, str, Path], None] | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.controller = Controller(_Handler(folder, on_mail), hostname=host, port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
