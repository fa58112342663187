"""The plugin alone: signatures, event globs, how answers are judged."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from pigeonhole.api import CustodyEvent
from pigeonhole_webhook import Endpoint, WebhookConfig, WebhookPlugin, sign

SECRET = "whsec_0123456789abcdef"


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"a":1}'
    header = sign(SECRET, 1700000000, body)
    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    assert t == "1700000000"
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert v1 == expected


def test_globs_choose_events():
    plugin = WebhookPlugin(
        WebhookConfig(endpoints=[Endpoint(url="http://x.test/h", secret=SECRET, events=["return.*"])])
    )
    [sub] = plugin.pigeonhole_subscribers()
    assert sub.wants("return.deposited") and not sub.wants("package.deposited")
    [every] = WebhookPlugin(
        WebhookConfig(endpoints=[Endpoint(url="http://x.test/h", secret=SECRET)])
    ).pigeonhole_subscribers()
    assert every.wants("package.deposited") and every.wants("door.closed")


def test_config_refuses_a_short_secret_and_a_bad_url():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"endpoints": [{"url": "http://x.test", "secret": "short"}]}, WebhookConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"endpoints": [{"url": "ftp://x", "secret": SECRET}]}, WebhookConfig)


async def test_unreachable_endpoint_is_retried():
    [sub] = WebhookPlugin(
        WebhookConfig(endpoints=[Endpoint(url="http://127.0.0.1:9/h", secret=SECRET)], timeout_seconds=2)
    ).pigeonhole_subscribers()
    event = CustodyEvent(
        id=uuid.uuid4(), tenant="t", kind="package.received", at=datetime.now(UTC), actor="a"
    )
    result = await sub.deliver(event, None)
    assert not result.ok and result.retry
