"""Delivery through the tenant's HTTP SMS gateway, and what each answer means for a retry."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
from pigeonhole.api import Channel, DeliveryResult, MessageWording, Notification, Recipient

from pigeonhole_sms.config import SmsConfig
from pigeonhole_sms.phone import BadNumber, to_e164
from pigeonhole_sms.texts import TEXTS, compose, extra_values, variants_for

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Statuses that say "later": a timeout on their side, or too many requests.
_TRANSIENT_4XX = {408, 425, 429}


def language_of(notification: Notification) -> str:
    for candidate in (notification.language, notification.recipient.language):
        primary = (candidate or "").replace("_", "-").split("-")[0].lower()
        if primary in TEXTS["package.ready"]:
            return primary
    return "en"


def short_date(value: Any, language: str) -> str:
    """``26 Nov 17:00`` / ``26/11 à 17h00`` in the offset the host sent; the raw text if not ISO."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if language == "fr":
        return f"{at.day:02d}/{at.month:02d} à {at.hour}h{at.minute:02d}"
    return f"{at.day} {_EN_MONTHS[at.month - 1]} {at.hour:02d}:{at.minute:02d}"


def render(notification: Notification) -> str:
    """The text of the SMS: the tenant's own wording when set (H2), else ours."""
    if notification.text and notification.text.strip():
        return " ".join(notification.text.split())
    language = language_of(notification)
    data = notification.data
    values = {k: "" if v is None else str(v) for k, v in data.items() if not isinstance(v, (list, dict))}
    values["name"] = notification.recipient.name
    values["event"] = notification.event
    doors = data.get("compartments")
    if isinstance(doors, list) and doors:
        values["doors"] = ", ".join(str(d) for d in doors)
    else:
        values["doors"] = values.get("compartment", "")
    for key, field in (("expires", "expires_at"), ("ends", "ends_at"), ("starts", "starts_at"),
                       ("picked_up", "picked_up_at")):  # fmt: skip
        values[key] = short_date(data.get(field), language)
    values.update(extra_values(data, language))
    return compose(variants_for(notification.event, language), values)


class SmsChannel(Channel):
    name = "sms"

    def __init__(self, config: SmsConfig) -> None:
        self.config = config

    def reaches(self, recipient: Recipient) -> bool:
        # A number that is not one still gets its row: it fails there, with the reason.
        return bool(recipient.phone and recipient.phone.strip())

    def wants(self, event: str) -> bool:
        return not self.config.events or event in self.config.events

    def default_wording(self, event: str, language: str) -> MessageWording | None:
        """Our words for ``event`` in wording syntax (``GET /message-templates`` shows them)."""
        if event not in TEXTS:
            return None
        variants = TEXTS[event].get(language) or TEXTS[event]["en"]
        body = "".join(variants[0])
        for ours, theirs in (("$doors", "$compartment"), ("$destination_fr", "$destination"),
                             ("$why_en", "$why"), ("$why_fr", "$why")):  # fmt: skip
            body = body.replace(ours, theirs)
        return MessageWording(subject="", body=body)

    def request(self, notification: Notification) -> httpx.Request:
        """The gateway request for one notification; raises BadNumber."""
        config = self.config
        number = to_e164(notification.recipient.phone or "", config.default_country_code)
        text = render(notification)
        if not text:
            raise ValueError(f"no text for event '{notification.event}'")
        fields: dict[str, str] = {**config.extra_fields, config.to_field: number, config.text_field: text}
        if config.sender and config.from_field:
            fields[config.from_field] = config.sender
        headers = {"User-Agent": "pigeonhole-sms/0.1"}
        if config.auth_header and config.auth_value:
            headers[config.auth_header] = config.auth_value
        if config.idempotency_header:
            headers[config.idempotency_header] = notification.id
        if config.method == "GET":
            return httpx.Request("GET", config.url, params=fields, headers=headers)
        if config.body_format == "form":
            return httpx.Request(config.method, config.url, data=fields, headers=headers)
        return httpx.Request(config.method, config.url, json=fields, headers=headers)

    async def send(self, notification: Notification) -> DeliveryResult:
        try:
            request = self.request(notification)
        except BadNumber as exc:
            return DeliveryResult(ok=False, detail=f"bad phone number: {exc}", retry=False)
        except ValueError as exc:
            return DeliveryResult(ok=False, detail=f"cannot build the SMS: {exc}", retry=False)
        where = f"{request.url.host}:{request.url.port or request.url.scheme}"
        try:
            async with httpx.AsyncClient(timeout=self.config.timeout_seconds, follow_redirects=False) as client:
                response = await client.send(request)
        except httpx.TimeoutException:
            return DeliveryResult(ok=False, detail=f"{where}: no answer within {self.config.timeout_seconds:g} s")
        except httpx.TransportError as exc:
            return DeliveryResult(ok=False, detail=f"{where}: {type(exc).__name__}: {exc or 'connection failed'}")
        return classify(response, self.config.success_statuses, where)


def classify(response: httpx.Response, success_statuses: list[int], where: str) -> DeliveryResult:
    """2xx (or the configured statuses) sent; 4xx refused for good; 408/429 and 5xx later."""
    status = response.status_code
    said = provider_message(response)
    detail = f"{where}: {status} {said}".strip()
    if (status in success_statuses) if success_statuses else (200 <= status < 300):
        return DeliveryResult(ok=True, detail=detail)
    if 200 <= status < 300:
        return DeliveryResult(ok=False, detail=f"{detail} (not a success status configured)", retry=False)
    if status in _TRANSIENT_4XX or status >= 500:
        return DeliveryResult(ok=False, detail=detail, retry=True)
    return DeliveryResult(ok=False, detail=f"gateway refused the message: {detail}", retry=False)


def provider_message(response: httpx.Response, limit: int = 300) -> str:
    """What the provider said: its JSON error or message field, else its text, cut short."""
    text = response.text.strip()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error_description", "message", "error", "detail", "description", "status"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or json.dumps(value)
            if value not in (None, "", True, False):
                return str(value)[:limit]
    return " ".join(text.split())[:limit]
