"""Alerts reach the people who must look at them (H1, hardware #4): the mailroom's Slack and
Teams rooms, and the staff who may see alerts by email, durably through the outbox."""

from __future__ import annotations

import pytest

from tests.flows import deposit_and_close
from tests.support import accounts, channels
from tests.test_alerts import force_open, wait_alerts


def _failed(sink, path: str) -> int:
    """1 if the room's first post was the one the sink refused (503), else 0."""
    first = sink.requests[0].path if sink.requests else ""
    return 1 if first.startswith(path) else 0


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("PIGEONHOLE_RETRY_MIN_BACKOFF_MS", "100")
    monkeypatch.setenv("PIGEONHOLE_RETRY_MAX_BACKOFF_MS", "500")


async def test_a_forced_door_reaches_the_rooms_and_the_staff_mailboxes(make_tenant, api, smtp, http_sink):
    t = await make_tenant(plugins=channels.plugins(None, http_sink.url))
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    manager = await accounts.add_user(admin, role="mailroom_admin", name="Maud Manager")
    courier = await accounts.add_user(admin, role="carrier", name="Carl Courier")
    package = await deposit_and_close(op, admin, lobby, size="s")
    door = package["door"]["door"]
    await channels.wait_requests(http_sink, 2, "/")  # package.ready, in both rooms
    http_sink.requests.clear()

    # The first post to the rooms fails: it is retried on its own, the other room and the mail go on.
    http_sink.fail(503, times=1)
    await force_open(admin, lobby, door)
    [alert] = await wait_alerts(op, "door.forced")

    slack = (await channels.wait_requests(http_sink, 1 + _failed(http_sink, "/slack/"), "/slack/"))[-1].json()
    assert slack["blocks"][0]["text"]["text"] == "Alert: door forced"
    assert alert["message"] in slack["text"]
    teams = (await channels.wait_requests(http_sink, 1 + _failed(http_sink, "/teams/"), "/teams/"))[-1].json()
    content = teams["attachments"][0]["content"]
    assert content["body"][0]["text"] == "Alert: door forced" and content["body"][0]["color"] == "Attention"
    assert content["body"][1]["text"] == alert["message"]
    facts = {f["title"]: f["value"] for f in content["body"][2]["facts"]}
    assert (facts["Locker bank"], facts["Door"]) == ("Lobby", str(door))

    [mail] = [m for m in await smtp.wait_for(manager["email"], count=2) if "Alert" in m["Subject"]]
    assert "Lobby" in mail["Subject"]
    assert alert["message"] in mail.get_body(preferencelist=("plain",)).get_content()
    assert not [m for m in smtp.to(courier["email"]) if "Alert" in str(m["Subject"])], (
        "a carrier may not see alerts: it is not told about them"
    )

    rows = await op.ok("GET", "/notifications?event=alert.door.forced")
    by_channel = {}
    for row in rows:
        by_channel.setdefault(row["channel"], []).append(row)
    assert sorted(by_channel) == ["email", "slack", "teams"]
    assert [r["recipient"]["email"] for r in by_channel["email"]] == [manager["email"]]
    assert len(by_channel["slack"]) == len(by_channel["teams"]) == 1, "one post per room, not one per person"


async def test_rooms_that_do_not_carry_alerts_stay_quiet(make_tenant, api, smtp, http_sink):
    t = await make_tenant(
        plugins=channels.plugins(None, http_sink.url, slack_events='["*"]', teams_events='["*"]', alerts=False)
    )
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    package = await deposit_and_close(op, admin, lobby, size="s")
    await channels.wait_requests(http_sink, 2, "/")  # package.ready, in both rooms
    await force_open(admin, lobby, package["door"]["door"])
    await wait_alerts(op, "door.forced")
    rows = await op.ok("GET", "/notifications?event=alert.*")
    assert [r for r in rows if r["channel"] in ("slack", "teams")] == []
    assert len(http_sink.requests) == 2


async def test_a_door_left_open_reaches_the_rooms_in_french(make_tenant, api, smtp, http_sink):
    t = await make_tenant(
        plugins=channels.plugins(None, http_sink.url).replace('alerts = true\n', 'alerts = true\nlanguage = "fr"\n')
    )
    op, admin = api(t, "operator"), api(t, "admin")
    lobby = t.banks["Lobby"]
    await admin.ok("PATCH", f"/banks/{lobby}", {"settings": {"door_left_open_seconds": 0.3}})
    package = await channels.deposit(op, lobby, email="someone@example.test", phone=None)
    [alert] = await wait_alerts(op, "door.left_open")
    posts = await channels.wait_requests(http_sink, 1, "/slack/")
    [slack] = [p.json() for p in posts if "Alerte" in p.json()["text"]]
    assert slack["blocks"][0]["text"]["text"] == "Alerte : porte restée ouverte"
    assert alert["message"] in slack["text"]
