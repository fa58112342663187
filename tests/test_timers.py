"""Durable timers (#5): due work fires exactly once, in order, never early, across outages and races."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pigeonhole.db.tables import Event, Timer
from pigeonhole.domain import clock, custody, timers
from pigeonhole.domain.context import require_tenant, tenant_context

from tests.flows import deposit_and_close, new_email
from tests.support.smtp import pickup_code
from tests.support.timelines import USPS, at, events

calls: list[tuple[str, str]] = []


@timers.action("test.record")
async def _record(ctx, timer):
    calls.append((timer["step"], timer["data"].get("n")))
    await custody.append(ctx, "test.fired", package_id=timer["package_id"], data={"step": timer["step"]})


@timers.action("test.no_longer")
async def _no_longer(ctx, timer):
    if timer["data"].get("raise"):
        raise timers.Skip()
    return False


@timers.action("test.boom")
async def _boom(ctx, timer):
    await custody.append(ctx, "test.half_done", package_id=timer["package_id"])
    raise RuntimeError("the handler broke")


async def _rows(slug: str, package_id) -> dict[str, dict]:
    async with tenant_context(await require_tenant(slug), write=False) as ctx:
        rows = await ctx.scope.select(Timer).where(Timer.package_id == package_id)
        fired = await ctx.scope.select(Event.kind).where(Event.package_id == package_id)
    return {r["step"]: r for r in rows}, [e["kind"] for e in fired]


@pytest.fixture
async def package(make_tenant, api, smtp):
    t = await make_tenant("tm", plugins=USPS)
    email = new_email()
    made = await deposit_and_close(api(t, "operator"), api(t, "admin"), t.banks["Lobby"], email=email)
    await smtp.wait_for(email)
    return t, made


async def _schedule(slug: str, package_id, steps: dict[str, tuple[str, float, dict]]) -> dict:
    ids = {}
    async with tenant_context(await require_tenant(slug)) as ctx:
        for seq, (step, (action, hours, data)) in enumerate(steps.items()):
            ids[step] = await timers.schedule(
                ctx,
                action=action,
                due_at=clock.now() + timedelta(hours=hours),
                package_id=package_id,
                step=step,
                data=data,
                seq=seq,
            )
    return ids


async def test_timers_fire_once_in_order_never_early(package):
    t, made = package
    calls.clear()
    await _schedule(
        t.slug,
        made["id"],
        {
            "b": ("test.record", 2, {"n": 2}),
            "a": ("test.record", 1, {"n": 1}),
            "c": ("test.record", 3, {"n": 3}),
            "skip": ("test.no_longer", 1.5, {}),
            "skip2": ("test.no_longer", 1.5, {"raise": True}),
        },
    )
    await at(0.99)
    assert calls == []
    await at(2)
    assert calls == [("a", 1), ("b", 2)], "due ones, in their order"
    await asyncio.gather(timers.tick(), timers.tick())
    assert calls == [("a", 1), ("b", 2)], "never twice"
    async with tenant_context(await require_tenant(t.slug)) as ctx:
        assert await timers.cancel(ctx, package_id=made["id"]) >= 1
    await at(10)
    assert calls == [("a", 1), ("b", 2)], "a cancelled timer does not fire"
    rows, kinds = await _rows(t.slug, made["id"])
    assert {s: rows[s]["status"] for s in ("a", "b", "c", "skip", "skip2")} == {
        "a": "fired",
        "b": "fired",
        "c": "cancelled",
        "skip": "skipped",
        "skip2": "skipped",
    }
    assert kinds.count("test.fired") == 2


async def test_a_failing_handler_rolls_back_and_retries_later(package):
    t, made = package
    await _schedule(t.slug, made["id"], {"boom": ("test.boom", 1, {})})
    await at(1)
    rows, kinds = await _rows(t.slug, made["id"])
    boom = rows["boom"]
    assert (boom["status"], boom["attempts"]) == ("pending", 1)
    assert "the handler broke" in boom["last_error"]
    assert boom["next_try_at"] > boom["due_at"], "retried later, not at every tick"
    assert "test.half_done" not in kinds, "the handler's writes rolled back with it"
    await timers.tick()
    assert (await _rows(t.slug, made["id"]))[0]["boom"]["attempts"] == 1, "not before its next try"
    for _ in range(timers.MAX_ATTEMPTS):
        await at(24 * 30 * (_ + 1))
    boom = (await _rows(t.slug, made["id"]))[0]["boom"]
    assert (boom["status"], boom["attempts"]) == ("failed", timers.MAX_ATTEMPTS)


async def test_an_outage_sends_everything_due_exactly_once(make_tenant, api, smtp, services, monkeypatch):
    """The issue's durable test: the tick stops, time passes several steps, two processes come back."""
    t = await make_tenant("tm", plugins=USPS)
    op, admin, kiosk = api(t, "operator"), api(t, "admin"), api(t, "kiosk")
    waiting, picked = [], None
    for n in range(3):
        email = new_email()
        made = await deposit_and_close(op, admin, t.banks["Lobby"], email=email)
        [ready] = await smtp.wait_for(email)
        if n == 2:
            picked = (made, email)
            await kiosk.ok("POST", f"/banks/{t.banks['Lobby']}/pickup", {"code": pickup_code(ready)})
        else:
            waiting.append((made, email))

    # The worker stops; time moves past two reminders and an hour more.
    if services._timers_task is not None:
        services._timers_task.cancel()
        await asyncio.gather(services._timers_task, return_exceptions=True)
    clock.advance(timedelta(hours=49))

    # Two workers come back at once, each with its loop, and a tick from elsewhere joins the race.
    monkeypatch.setenv("PIGEONHOLE_TICK_SECONDS", "0.05")
    stop = asyncio.Event()
    loops = [asyncio.create_task(timers.run_loop(stop)) for _ in range(2)]
    await timers.tick()
    for _made, email in waiting:
        await smtp.wait_for(email, 3)
    await asyncio.sleep(0.5)  # a few more turns of both loops
    stop.set()
    await asyncio.gather(*loops)
    for made, email in waiting:
        assert await events(op, made["id"]) == ["package.ready", "package.reminder", "package.reminder"]
        assert len(smtp.to(email)) == 3, "each reminder once, none early"
    assert await events(op, picked[0]["id"]) == ["package.ready", "package.picked_up"]

    # Past the third reminder and the expiry: three ticks racing.
    await at(49 + 120)
    await asyncio.gather(timers.tick(), timers.tick(), timers.tick())
    for made, email in waiting:
        assert await events(op, made["id"]) == ["package.ready"] + ["package.reminder"] * 3 + [
            "package.expired"
        ]
        await smtp.wait_for(email, 5)
        assert (await op.ok("GET", f"/packages/{made['id']}"))["status"] == "expired"
    await asyncio.sleep(0.3)
    for _made, email in waiting:
        assert len(smtp.to(email)) == 5
    assert len(smtp.to(picked[1])) == 2, "the package picked up heard nothing more"
