"""Tenants with a post office or workplace timeline, and moving their time (workflows #5)."""

from __future__ import annotations

import textwrap
from datetime import timedelta

from pigeonhole.domain import clock, timers

USPS = textwrap.dedent(
    """
    [plugins.usps]
    pickup_methods = ["pin"]
    [plugins.pin]
    [plugins.email]
    from_address = "Post Office <po@example.test>"
    [plugins.simulator]
    """
)


def workplace(**config) -> str:
    lines = "".join(f"{k} = {v}\n" for k, v in config.items())
    return textwrap.dedent(
        """
        [plugins.workplace]
        {lines}[plugins.pin]
        [plugins.email]
        from_address = "Mailroom <mailroom@example.test>"
        [plugins.simulator]
        """
    ).format(lines=lines)


async def at(hours: float) -> None:
    """Move the platform's clock to ``hours`` after the test's start, then tick once."""
    target = timedelta(hours=hours)
    clock.advance(target - (clock._offset))
    await timers.tick()


async def events(op, package_id: str) -> list[str]:
    """The events of the package's messages, oldest first (the notification rows)."""
    rows = await op.ok("GET", f"/packages/{package_id}/notifications")
    return [r["event"] for r in sorted(rows, key=lambda r: r["created_at"])]


async def later(hours: float) -> None:
    """Move the platform's clock ``hours`` forward, then tick once."""
    clock.advance(timedelta(hours=hours))
    await timers.tick()
