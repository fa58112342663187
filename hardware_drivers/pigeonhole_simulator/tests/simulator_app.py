"""A small host stand-in: the plugin's routes mounted as the host mounts them."""

import asyncio
import threading
from uuid import UUID

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from pigeonhole.api import PluginRequest
from pigeonhole_simulator import SimulatorConfig, SimulatorDriver, SimulatorPlugin


def make_app(tenants: dict[str, UUID]) -> Litestar:
    def plugin_request(tenant: FromPath[str]) -> PluginRequest:
        if tenant not in tenants:
            raise NotFoundException(f"No tenant {tenant}")
        return PluginRequest(
            tenant_id=tenants[tenant], tenant_slug=tenant, actor="tester", role="admin"
        )

    router = Router(
        path="/api/v1/t/{tenant:str}/ext/simulator",
        route_handlers=SimulatorPlugin(None).pigeonhole_routes(),
        dependencies={"plugin_request": Provide(plugin_request, sync_to_thread=False)},
    )
    return Litestar(route_handlers=[router], logging_config=None)


class DriverThread:
    """A driver running in its own thread and loop, as an edge agent would."""

    def __init__(self, listener, doors=(1, 2, 3), **config) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.driver = SimulatorDriver(SimulatorConfig(**config), doors, listener)
        self.run(self.driver.start())

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=5)

    def stop(self) -> None:
        self.run(self.driver.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()
