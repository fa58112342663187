"""How a tenant describes its SMS gateway: any HTTP API that takes a number and a text."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from pigeonhole.api import Secret

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class SmsConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: The gateway's endpoint, http:// or https://.
    url: str
    method: Literal["POST", "PUT", "GET"] = "POST"
    #: The header carrying the credential (``Authorization``, ``X-API-Key``...); None: no header.
    auth_header: str | None = "Authorization"
    #: The header's value, e.g. ``Bearer 0123...``: a Secret, stored sealed, never shown back nor
    #: written to a delivery detail.
    auth_value: Secret | None = None
    #: Sender id or number shown to the recipient; empty: the gateway's default (field left out).
    sender: str = ""
    #: ``json``: a JSON object; ``form``: application/x-www-form-urlencoded (query string for GET).
    body_format: Literal["json", "form"] = "json"
    to_field: str = "to"
    from_field: str = "from"
    text_field: str = "text"
    #: Fields the gateway also wants (an account id, a route), sent as they are.
    extra_fields: dict[str, str] = {}
    #: Statuses meaning "accepted"; empty: any 2xx.
    success_statuses: list[int] = []
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10
    #: Country calling code for numbers written without one (``1``, ``33``); None: such numbers are refused.
    default_country_code: str | None = None
    #: A header carrying the notification id, so the gateway can drop a retried duplicate; None: not sent.
    idempotency_header: str | None = "Idempotency-Key"
    #: Events sent by SMS; empty: every event.
    events: list[str] = []

    def __post_init__(self) -> None:
        # Fail when the tenant saves the configuration, not at the first parcel.
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: must be an http:// or https:// URL with a host (got {self.url!r})")
        for label, header in (("auth_header", self.auth_header), ("idempotency_header", self.idempotency_header)):
            if header is not None and not _TOKEN.match(header):
                raise ValueError(f"{label}: {header!r} is not a valid HTTP header name")
        if self.auth_value is not None and ("\n" in self.auth_value or "\r" in self.auth_value):
            raise ValueError("auth_value: must be one line")
        for label, name in (("to_field", self.to_field), ("text_field", self.text_field)):
            if not name:
                raise ValueError(f"{label}: must not be empty")
        for status in self.success_statuses:
            if not 200 <= status <= 299:
                raise ValueError(f"success_statuses: {status} is not a 2xx status")
        if self.default_country_code is not None:
            code = self.default_country_code.lstrip("+")
            if not (code.isdigit() and 1 <= len(code) <= 3):
                raise ValueError(
                    f"default_country_code: {self.default_country_code!r} is not a country calling code (1-3 digits)"
                )
