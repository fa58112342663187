"""The long-running parts of a process, started and stopped together.

``pigeonhole serve`` starts all of them on the embedded defaults; ``pigeonhole
worker`` starts the database, broker, relay and a worker; ``pigeonhole agent``
(see edge/) only the agent.
"""

from __future__ import annotations

import asyncio
import logging

import dramatiq

from pigeonhole.db import engine
from pigeonhole.edge.hub import DoorHub, set_hub
from pigeonhole.messaging import broker as brokers
from pigeonhole.messaging import loop, relay
from pigeonhole.settings import Settings

log = logging.getLogger(__name__)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: dramatiq.Broker | None = None
        self.worker: dramatiq.Worker | None = None
        self.hub: DoorHub | None = None
        self._relay_stop = asyncio.Event()
        self._relay_task: asyncio.Task | None = None
        self._imports_task: asyncio.Task | None = None  # scheduled SFTP imports (directory #6)
        self._timers_task: asyncio.Task | None = None  # durable timers: reminders, expiry (workflows #5)

    async def start(
        self, *, worker: bool | None = None, agent: bool | None = None, relay_: bool = True
    ) -> None:
        s = self.settings
        await engine.connect(s)
        self.broker = brokers.make_broker(s.broker_url)
        loop.use_loop(asyncio.get_running_loop())
        if worker if worker is not None else s.embedded_worker:
            # A short poll: the in-memory queue is cheap to poll and stops quickly.
            self.worker = dramatiq.Worker(self.broker, worker_threads=4, worker_timeout=100)
            self.worker.start()
        if relay_:
            self._relay_task = asyncio.create_task(
                relay.run(self.broker, brokers.queue_name(), s.outbox_redeliver_seconds, self._relay_stop)
            )
            from pigeonhole.domain.directory import schedule as import_schedules

            self._imports_task = asyncio.create_task(import_schedules.run_loop(self._relay_stop))
            from pigeonhole.domain import timers

            self._timers_task = asyncio.create_task(timers.run_loop(self._relay_stop))
        self.hub = DoorHub()
        set_hub(self.hub)
        if agent if agent is not None else s.embedded_agent:
            self.hub.start_embedded_agent()
            await self.hub.attach_all()
            # The embedded agent died with the previous process: nobody will report its commands.
            await self.hub.reconcile_embedded_orphans()
        await self.hub.rearm_doors()  # door.left_open timers of doors recorded open

    async def stop(self) -> None:
        self._relay_stop.set()
        if self._relay_task is not None:
            await asyncio.gather(self._relay_task, return_exceptions=True)
        if self._imports_task is not None:
            self._imports_task.cancel()  # a poll cut short rolls back; its claim expires and it runs again
            await asyncio.gather(self._imports_task, return_exceptions=True)
        if self._timers_task is not None:
            self._timers_task.cancel()  # a timer cut short rolls back and stays pending: the next tick fires it
            await asyncio.gather(self._timers_task, return_exceptions=True)
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
        if self.broker is not None:
            self.broker.close()
        if self.hub is not None:
            await self.hub.stop()
        await engine.disconnect()

    def broker_status(self) -> str:
        if self.broker is None:
            return "not started"
        status = brokers.ping(self.broker)
        return f"{status} ({brokers.describe(self.settings.broker_url)})" if status == "ok" else status

    def agent_status(self) -> str:
        if self.hub is None:
            return "not started"
        parts = ["embedded"] if self.hub.agent is not None else []
        if self.hub.remote:
            parts.append(f"{len(self.hub.remote)} site agent(s) serving {len(self.hub.links)} bank(s)")
        return ", ".join(parts) or "no agent connected"
