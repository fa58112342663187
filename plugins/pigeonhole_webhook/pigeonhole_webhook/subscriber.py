"""One partner endpoint: which events it takes, how a call is signed and judged."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import time
from typing import Annotated

import httpx
import msgspec
from pigeonhole.api import CustodyEvent, EventSubscriber, PackageView, SubscriberResult
from pigeonhole.api import Secret as HostSecret

Seconds = Annotated[float, msgspec.Meta(gt=0, le=60)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$")]
#: The signing key: stored sealed by the host and never shown back (pigeonhole.api.Secret).
Secret = Annotated[HostSecret, msgspec.Meta(min_length=16)]

#: Client errors that may pass: a timeout on their side, a rate limit.
RETRYABLE_4XX = {408, 429}


class Endpoint(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    secret: Secret
    #: Globs over event kinds (``package.*``, ``return.deposited``); the default takes every event.
    events: list[str] = msgspec.field(default_factory=lambda: ["*"])
    #: Names the endpoint in the deliveries list; the URL when empty. Keep it stable.
    name: str = ""


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=True):
    endpoints: list[Endpoint] = msgspec.field(default_factory=list)
    timeout_seconds: Seconds = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Pigeonhole-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def body_of(event: CustodyEvent, package: PackageView | None) -> dict:
    data = {
        "package_id": str(event.package_id) if event.package_id else None,
        "bank_id": str(event.bank_id) if event.bank_id else None,
        "compartment_id": str(event.compartment_id) if event.compartment_id else None,
        "tracking_id": package.tracking_id if package else None,
        "carrier": package.carrier if package else None,
        "size": package.size if package else None,
        "status": package.status if package else None,
        "method": event.method,
        "actor": event.actor,
        "details": event.data,
    }
    return {
        "id": str(event.id),
        "type": event.kind,
        "created": int(event.at.timestamp()),
        "tenant": event.tenant,
        "data": data,
    }


class WebhookSubscriber(EventSubscriber):
    def __init__(self, endpoint: Endpoint, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.name = f"webhook:{endpoint.name or endpoint.url}"

    def wants(self, kind: str) -> bool:
        return any(fnmatch.fnmatchcase(kind, pattern) for pattern in self.endpoint.events)

    async def deliver(self, event: CustodyEvent, package: PackageView | None) -> SubscriberResult:
        body = msgspec.json.encode(body_of(event, package))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Pigeonhole-Webhook/1",
            "Pigeonhole-Event-Id": str(event.id),
            "Pigeonhole-Signature": sign(self.endpoint.secret, int(time.time()), body),
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.endpoint.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return SubscriberResult(ok=False, retry=True, detail=f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return SubscriberResult(ok=False, retry=True, detail=f"{type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return SubscriberResult(ok=True, response_code=code)
        detail = f"HTTP {code}: {response.text[:200]}"
        if 400 <= code < 500 and code not in RETRYABLE_4XX:
            return SubscriberResult(ok=False, retry=False, detail=detail, response_code=code)
        return SubscriberResult(ok=False, retry=True, detail=detail, response_code=code)
