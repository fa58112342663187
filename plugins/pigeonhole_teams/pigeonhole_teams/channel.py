"""Posting into Microsoft Teams rooms through incoming webhooks."""

from __future__ import annotations

from typing import Any

import httpx
from pigeonhole.api import DeliveryResult, Notification, RoomChannel


_TRANSIENT_4XX = {408, 425, 429}
_ALERT_COLOUR = "D13438"
_COLOUR = "0078D4"


def carries(patterns: list[str], alerts: bool, event: str) -> bool:
    """``alert.*`` follows ``alerts``; other events match ``events`` exactly, by ``prefix.*`` or ``*``."""
    if event.startswith("alert."):
        return alerts
    for pattern in patterns:
        if pattern == "*" or pattern == event or (pattern.endswith(".*") and event.startswith(pattern[:-1])):
            return True
    return False


def adaptive_card(notification: Notification, language: str) -> dict[str, Any]:
    """A message with one Adaptive Card attachment, as Teams workflow webhooks take it."""
    view = RoomChannel.room_view(notification, language)
    alert = notification.event.startswith("alert.")
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": view.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            **({"color": "Attention"} if alert else {}),
        },
        {"type": "TextBlock", "text": view.text, "wrap": True},
    ]
    if view.facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in view.facts]})
    if view.footer:
        body.append({"type": "TextBlock", "text": view.footer, "isSubtle": True, "size": "Small", "wrap": True})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


def message_card(notification: Notification, language: str) -> dict[str, Any]:
    """The legacy connector's MessageCard."""
    view = RoomChannel.room_view(notification, language)
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": view.title,
        "themeColor": _ALERT_COLOUR if notification.event.startswith("alert.") else _COLOUR,
        "title": view.title,
        "text": view.text,
    }
    section: dict[str, Any] = {}
    if view.facts:
        section["facts"] = [{"name": k, "value": v} for k, v in view.facts]
    if view.footer:
        section["activitySubtitle"] = view.footer
    if section:
        card["sections"] = [section]
    return card


class TeamsChannel(RoomChannel):
    name = "teams"

    def __init__(
        self,
        webhook_url: str,
        events: list[str],
        alerts: bool,
        language: str,
        timeout: float,
        card: str = "adaptive",
        name: str = "teams",
    ) -> None:
        self.name = name
        self.webhook_url = webhook_url
        self.events = events
        self.alerts = alerts
        self.language = language
        self.timeout = timeout
        self.card = card

    def wants(self, event: str) -> bool:
        return carries(self.events, self.alerts, event)

    def payload(self, notification: Notification) -> dict[str, Any]:
        build = message_card if self.card == "message_card" else adaptive_card
        return build(notification, self.language)

    async def send(self, notification: Notification) -> DeliveryResult:
        body = self.payload(notification)
        url = httpx.URL(self.webhook_url)
        where = f"Teams webhook {url.host}"  # never the path or query: they hold the secret
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
            # The legacy connector answers 200 with an error text when the card is refused.
            if said and said != "1" and "error" in said.lower() and self.card == "message_card":
                return DeliveryResult(ok=False, detail=f"Teams refused the message: {detail}", retry=False)
            return DeliveryResult(ok=True, detail=detail)
        if status in _TRANSIENT_4XX or status >= 500:
            return DeliveryResult(ok=False, detail=detail, retry=True)
        return DeliveryResult(ok=False, detail=f"Teams refused the message: {detail}", retry=False)
