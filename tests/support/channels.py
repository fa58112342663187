"""A tenant whose messages go out by email, SMS, Slack and Teams (H1), to loopback stand-ins.

The SMS gateway is its own :class:`HttpSink` (a test makes it fail without
touching the rooms); Slack and Teams share the ``http_sink`` fixture under
their own paths.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid

from tests.support.api import Api

SMS_SECRET = "Bearer sms-secret-0123456789"


def plugins(
    sms_url: str | None,
    rooms_url: str | None,
    *,
    slack_events: str = '["package.ready", "package.picked_up"]',
    teams_events: str = '["package.*"]',
    alerts: bool = True,
    teams: bool = True,
    slack_url: str | None = None,
    extra: str = "",
) -> str:
    text = """
    [plugins.workplace]
    hold_hours = 72
    [plugins.pin]
    [plugins.email]
    from_address = "Mailroom <mailroom@example.test>"
    [plugins.simulator]
    """
    if sms_url:
        text += f"""
    [plugins.sms]
    url = "{sms_url}/v1/messages"
    auth_header = "Authorization"
    auth_value = "{SMS_SECRET}"
    sender = "AcmeMail"
    default_country_code = "1"
    """
    if rooms_url:
        text += f"""
    [plugins.slack]
    webhook_url = "{slack_url or rooms_url}/slack/T000/B000/secret"
    events = {slack_events}
    alerts = {str(alerts).lower()}
    """
        if teams:
            text += f"""
    [plugins.teams]
    webhook_url = "{rooms_url}/teams/workflows/secret"
    events = {teams_events}
    alerts = {str(alerts).lower()}
    """
    return textwrap.dedent(text) + textwrap.dedent(extra)


async def deposit(op: Api, bank_id: str, *, email: str | None, phone: str | None, language: str = "en") -> dict:
    recipient = {"name": "Ada Lovelace", "language": language}
    if email:
        recipient["email"] = email
    if phone:
        recipient["phone"] = phone
    body = {
        "tracking_id": f"TRK-{uuid.uuid4().hex[:10].upper()}",
        "carrier": "UPS",
        "size": "s",
        "recipient": recipient,
        "bank_id": bank_id,
    }
    return await op.ok("POST", "/packages", body)


async def notifications(op: Api, package_id: str, event: str = "package.ready") -> dict[str, dict]:
    rows = await op.ok("GET", f"/packages/{package_id}/notifications")
    return {r["channel"]: r for r in rows if r["event"] == event}


async def wait_rows(op: Api, package_id: str, done, timeout: float = 20.0, event: str = "package.ready"):
    """Poll the package's notifications until ``done(rows)`` holds; return the rows."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await notifications(op, package_id, event)
        if done(rows):
            return rows
        assert time.monotonic() < deadline, f"notifications never got there: {rows}"
        await asyncio.sleep(0.02)


async def wait_requests(sink, count: int, path: str, timeout: float = 20.0):
    """``sink.wait_for`` without blocking the loop the embedded worker runs on."""
    deadline = time.monotonic() + timeout
    while len(sink.on(path)) < count:
        assert time.monotonic() < deadline, f"expected {count} request(s) under {path}, got {len(sink.on(path))}"
        await asyncio.sleep(0.02)
    return sink.on(path)
