"""A real SMTP server on loopback that records every message it accepts."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        #: Addresses answered "550" at RCPT (a mailbox that does not exist): see SmtpSink.refuse.
        self.refused: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = Recorder()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def refuse(self, address: str) -> None:
        """Answer 550 to every message for ``address`` from now on (a refusal the sender must not retry)."""
        self.recorder.refused.add(address.lower())

    def to(self, address: str) -> list[EmailMessage]:
        with self.recorder.lock:
            return [m for m in self.recorder.messages if address in str(m["To"])]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[EmailMessage]:
        """Wait without blocking the loop: the embedded worker runs its coroutines on it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s) to {address}, got {len(self.to(address))}")


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def pickup_code(message: EmailMessage) -> str:
    import re

    match = re.search(r"(?:Pickup code|Code de retrait)\W*(\d{4,12})", body_text(message))
    assert match, "no six-digit code in the mail"
    return match.group(1)
