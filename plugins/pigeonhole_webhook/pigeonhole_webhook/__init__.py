"""Signed partner webhooks: an event subscriber per configured endpoint (J2)."""

from __future__ import annotations

from pigeonhole.api import Plugin, hookimpl

from pigeonhole_webhook.subscriber import Endpoint, WebhookConfig, WebhookSubscriber, sign

__all__ = ["Endpoint", "WebhookConfig", "WebhookPlugin", "WebhookSubscriber", "sign"]


class WebhookPlugin(Plugin):
    name = "webhook"
    Config = WebhookConfig
    description = "Signed webhooks to partners (shipping and retail software) for every state change"

    def __init__(self, config: WebhookConfig | None) -> None:
        super().__init__(config)
        self._subscribers = (
            [WebhookSubscriber(endpoint, config.timeout_seconds) for endpoint in config.endpoints]
            if config is not None
            else []
        )

    @hookimpl
    def pigeonhole_subscribers(self) -> list[WebhookSubscriber]:
        return self._subscribers
