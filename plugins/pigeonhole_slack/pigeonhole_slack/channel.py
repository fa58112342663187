"""Posting into Slack rooms through incoming webhooks."""

from __future__ import annotations

from typing import Any

import httpx
from pigeonhole.api import DeliveryResult, Notification, RoomChannel


#: 408 and 429 (Slack's rate limit) say "later"; other 4xx (invalid_payload,
#: no_service, channel_is_archived, action_prohibited) will not get better.
_TRANSIENT_4XX = {408, 425, 429}


def carries(patterns: list[str], alerts: bool, event: str) -> bool:
    """``alert.*`` follows ``alerts``; other events match ``events`` exactly, by ``prefix.*`` or ``*``."""
    if event.startswith("alert."):
        return alerts
    for pattern in patterns:
        if pattern == "*" or pattern == event or (pattern.endswith(".*") and event.startswith(pattern[:-1])):
            return True
    return False


def _escape(text: str) -> str:
    """Slack's mrkdwn: only &, < and > are special."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(notification: Notification, language: str) -> dict[str, Any]:
    view = RoomChannel.room_view(notification, language)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": view.title[:150], "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(view.text)[:3000]}},
    ]
    if view.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_escape(label)}*\n{_escape(value)}"}
                    for label, value in view.facts[:10]
                ],
            }
        )
    if view.footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(view.footer)}]})
    # ``text`` is what notifications and old clients show.
    return {"text": f"{view.title}: {view.text}", "blocks": blocks}


class SlackChannel(RoomChannel):
    name = "slack"

    def __init__(
        self,
        webhook_url: str,
        events: list[str],
        alerts: bool,
        language: str,
        timeout: float,
        name: str = "slack",
    ) -> None:
        self.name = name
        self.webhook_url = webhook_url
        self.events = events
        self.alerts = alerts
        self.language = language
        self.timeout = timeout

    def wants(self, event: str) -> bool:
        return carries(self.events, self.alerts, event)

    async def send(self, notification: Notification) -> DeliveryResult:
        body = payload(notification, self.language)
        url = httpx.URL(self.webhook_url)
        where = f"Slack webhook {url.host}"  # never the path: it is the secret
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.post(url, json=body)
        except httpx.TimeoutException:
            return DeliveryResult(ok=False, detail=f"{where}: no answer within {self.timeout:g} s")
        except httpx.TransportError as exc:
            return DeliveryResult(ok=False, detail=f"{where}: {type(exc).__name__}: {exc or 'connection failed'}")
        status = response.status_code
        said = " ".join(response.text.split())[:300]
        detail = f"{where}: {status} {said}".strip()
        if 200 <= status < 300:
            return DeliveryResult(ok=True, detail=detail)
        if status in _TRANSIENT_4XX or status >= 500:
            return DeliveryResult(ok=False, detail=detail, retry=True)
        return DeliveryResult(ok=False, detail=f"Slack refused the message: {detail}", retry=False)
