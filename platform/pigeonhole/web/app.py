"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from pigeonhole import __version__
from pigeonhole.api import PluginRequest
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.errors import DomainError, NotFound
from pigeonhole.edge.remote import agent_socket
from pigeonhole.runtime import registry
from pigeonhole.services import Services
from pigeonhole.settings import Settings, get_settings
from pigeonhole.web.auth import Caller, authenticate, caller_dependency
from pigeonhole.web.errors import domain_error_handler
from pigeonhole.web.routes import TENANT_CONTROLLERS, health


def _plugin_guard(plugin_name: str):
    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        caller = await authenticate(connection, connection.path_params["tenant"])
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            if not ctx.plugins.is_enabled(plugin_name):
                raise NotFound("Plugin", plugin_name)
        connection.scope["pigeonhole_caller"] = caller

    return guard


async def _plugin_request(request: Request) -> PluginRequest:
    caller: Caller = request.scope["pigeonhole_caller"]
    return PluginRequest(
        tenant_id=caller.tenant.id,
        tenant_slug=caller.tenant.slug,
        actor=caller.actor.name,
        role=caller.actor.role,
        bank_id=caller.actor.bank_id,
    )


def plugin_routers() -> list[Router]:
    """Mount each installed plugin's routes under its own prefix, guarded per tenant."""
    pm = registry.platform_pm()
    routers = []
    for name, _plugin in pm.list_name_plugin():
        others = [p for n, p in pm.list_name_plugin() if n != name]
        handlers = [h for batch in pm.subset_hook_caller("pigeonhole_routes", others)() for h in batch or ()]
        if handlers:
            routers.append(
                Router(
                    path=f"/api/v1/t/{{tenant:str}}/plugins/{name}",
                    route_handlers=handlers,
                    guards=[_plugin_guard(name)],
                    dependencies={"plugin_request": Provide(_plugin_request)},
                    tags=[f"plugin: {name}"],
                )
            )
    return routers


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Litestar:
    """The application; it starts and stops its services, unless given running ones."""
    settings = settings or get_settings()
    owned = services is None
    services = services or Services(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if owned:
            await services.start()
        try:
            yield
        finally:
            if owned:
                await services.stop()

    return Litestar(
        route_handlers=[health, *TENANT_CONTROLLERS, agent_socket, *plugin_routers()],
        dependencies={"caller": Provide(caller_dependency)},
        exception_handlers={DomainError: domain_error_handler},
        lifespan=[lifespan],
        state=State({"services": services}),
        openapi_config=OpenAPIConfig(
            title="Pigeonhole API",
            version=__version__,
            path="/api/v1/schema",
            description="Multi-tenant smart parcel lockers. Every tenant route is under /api/v1/t/{tenant}.",
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="http", scheme="bearer", description="API key")
                }
            ),
            security=[{"apiKey": []}],
        ),
        # An unhandled error is a bug: log its traceback even outside debug mode.
        logging_config=LoggingConfig(log_exceptions="always", configure_root_logger=False),
        debug=False,
    )
