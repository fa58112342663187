import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from pigeonhole.api import Notification, Recipient
from pigeonhole_email import EmailChannel, EmailConfig, EmailPlugin

pytestmark = pytest.mark.asyncio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 2.0.0 Ok: queued as ABC123"


class RefusingInbox(Inbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


class GreylistingInbox(Inbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "451 4.7.1 Greylisted, try again later"


@pytest.fixture
def smtp_server():
    started = []

    def start(handler):
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        return f"smtp://127.0.0.1:{controller.port}"

    yield start
    for controller in started:
        controller.stop()


def notification(language="en", email="ann@example.com", **data) -> Notification:
    return Notification(
        id="7d1c8a0e-0000-4000-8000-000000000001",
        tenant="acme",
        event=data.pop("event", "package.ready"),
        language=language,
        recipient=Recipient(name="Ann Émilie", email=email, language=language),
        data={
            "tenant_name": "Acme Corp",
            "tracking_id": "1Z999AA10123456784",
            "carrier": "UPS",
            "bank_name": "North Lobby",
            "location_name": "Building A",
            "location_address": "1 Example Street",
            "compartment": 12,
            "code": "048213",
            "expires_at": "2025-03-14T17:00:00+00:00",
            "package_id": "b6f0c9d2-0000-4000-8000-000000000002",
            **data,
        },
    )


def channel(url: str, **config) -> EmailChannel:
    [made] = EmailPlugin(EmailConfig(smtp_url=url, **config)).pigeonhole_channels()
    return made


def body(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def html(msg) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


async def test_ready_in_english_reaches_the_server(smtp_server):
    inbox = Inbox()
    url = smtp_server(inbox)
    result = await channel(url, reply_to="mailroom@example.com").send(notification())

    assert result.ok, result.detail
    assert result.detail == "250 2.0.0 Ok: queued as ABC123"
    [msg] = inbox.messages
    assert inbox.envelopes == [("lockers@pigeonhole.local", ["ann@example.com"])]
    assert msg["To"].addresses[0].addr_spec == "ann@example.com"
    assert msg["To"].addresses[0].display_name == "Ann Émilie"
    assert msg["From"] == "Pigeonhole <lockers@pigeonhole.local>"
    assert msg["Reply-To"] == "mailroom@example.com"
    assert msg["Subject"] == "Your package is ready for pickup at Building A"
    assert msg["Message-ID"] == "<7d1c8a0e-0000-4000-8000-000000000001@pigeonhole>"
    assert msg["X-Pigeonhole-Notification"] == "7d1c8a0e-0000-4000-8000-000000000001"
    text = body(msg)
    assert "048213" in text
    assert "North Lobby at Building A, 1 Example Street" in text
    assert "Friday, 14 March 2025 at 17:00 UTC" in text
    assert "048213" in html(msg)


async def test_ready_in_french(smtp_server):
    inbox = Inbox()
    result = await channel(smtp_server(inbox)).send(notification(language="fr"))

    assert result.ok, result.detail
    [msg] = inbox.messages
    assert msg["Subject"] == "Votre colis vous attend à Building A"
    assert msg["Content-Language"] == "fr"
    text = body(msg)
    assert "Bonjour Ann Émilie," in text
    assert "048213" in text
    assert "Building A, 1 Example Street" in text
    assert "vendredi 14 mars 2025 à 17 h 00 UTC" in text


async def test_message_id_is_the_same_on_a_retry(smtp_server):
    inbox = Inbox()
    sender = channel(smtp_server(inbox))
    await sender.send(notification())
    await sender.send(notification())
    assert inbox.messages[0]["Message-ID"] == inbox.messages[1]["Message-ID"]


async def test_refused_recipient_is_not_retried(smtp_server):
    result = await channel(smtp_server(RefusingInbox())).send(notification())
    assert not result.ok
    assert result.retry is False
    assert "550" in result.detail and "User unknown" in result.detail


async def test_greylisted_recipient_is_retried(smtp_server):
    result = await channel(smtp_server(GreylistingInbox())).send(notification())
    assert (result.ok, result.retry) == (False, True)
    assert "451" in result.detail


async def test_connection_refused_is_retried():
    result = await channel(f"smtp://127.0.0.1:{free_port()}").send(notification())
    assert (result.ok, result.retry) == (False, True)
    assert "127.0.0.1" in result.detail


async def test_a_silent_server_times_out_and_is_retried():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        accepted = []
        thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
        thread.start()
        result = await channel(f"smtp://127.0.0.1:{port}", timeout_seconds=0.3).send(notification())
        for conn, _ in accepted:
            conn.close()
    assert (result.ok, result.retry) == (False, True)
    assert "timed out" in result.detail.lower() or "Timeout" in result.detail


async def test_env_url_is_used_when_config_has_none(smtp_server, monkeypatch):
    inbox = Inbox()
    monkeypatch.setenv("PIGEONHOLE_SMTP_URL", smtp_server(inbox))
    result = await EmailChannel(EmailConfig()).send(notification())
    assert result.ok, result.detail
    assert len(inbox.messages) == 1


async def test_recipient_without_email_is_not_reached():
    sender = EmailChannel(EmailConfig())
    assert sender.reaches(Recipient(name="Bo", email="bo@example.com"))
    assert not sender.reaches(Recipient(name="Bo"))
    assert not sender.reaches(Recipient(name="Bo", email=" "))
    result = await sender.send(notification(email=None))
    assert (result.ok, result.retry) == (False, False)
