"""Partner API rows (#5, J2): a webhook delivery, a pre-advised delivery, a return.

For the walks that need every tenant table filled (tests/test_rls.py): a loopback
sink receives the webhook, so the delivery is done before the walk starts.
"""

from __future__ import annotations

import asyncio
import uuid

from tests.support.http_sink import HttpSink

SECRET = "whsec_test_0123456789abcdef"


async def enable_webhook(admin, url: str, events: list[str] | None = None, name: str = "") -> None:
    endpoint = {"url": url, "secret": SECRET, "name": name}
    if events is not None:
        endpoint["events"] = events
    await admin.ok("PUT", "/plugins/webhook", {"config": {"endpoints": [endpoint]}})


async def wait_deliveries(admin, count: int, status: str = "sent", timeout: float = 20.0) -> list[dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows = await admin.ok("GET", f"/webhook-deliveries?status={status}")
        if len(rows) >= count or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def partner_values(admin, bank_id: str) -> None:
    """A subscriber delivery (sent), an expected delivery and a return with its drop-off code."""
    sink = HttpSink().start()
    try:
        await enable_webhook(admin, sink.url + "/hook", events=["package.preadvised"])
        tag = uuid.uuid4().hex[:8]
        recipient = {"name": f"Partner {tag}", "email": f"p{tag}@example.test"}
        await admin.ok(
            "POST",
            "/partner/deliveries",
            {"tracking_id": f"PRE-{tag}", "carrier": "UPS", "recipient": recipient, "bank_id": bank_id},
        )
        await admin.ok(
            "POST",
            "/partner/returns",
            {"bank_id": bank_id, "carrier": "UPS", "size": "s", "recipient": recipient},
        )
        await asyncio.to_thread(sink.wait_for, 1, "/hook")
        rows = await wait_deliveries(admin, 1)
        assert rows, "the webhook delivery was recorded as sent"
    finally:
        sink.stop()
