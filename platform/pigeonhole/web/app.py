"""The Litestar application factory."""

from __future__ import annotations

import sys
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
from pigeonhole.domain.identity import scopes
from pigeonhole.edge.remote import agent_socket
from pigeonhole.runtime import registry
from pigeonhole.services import Services
from pigeonhole.settings import Settings, get_settings
from pigeonhole.web.auth import Caller, authenticate, caller_dependency, require
from pigeonhole.web.errors import domain_error_handler
from pigeonhole.web.routes import PLATFORM_CONTROLLERS, TENANT_CONTROLLERS, health


def _plugin_guard(plugin_name: str):
    async def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        caller = await authenticate(connection, connection.path_params["tenant"])
        # A plugin route names its permission in opt={"permission": ...} (a name
        # from the catalog); without one, reading needs plugins:read, anything else plugins:write.
        method = connection.scope.get("method", "GET")
        default = "plugins:read" if method in ("GET", "HEAD") else "plugins:write"
        require(caller, handler.opt.get("permission") or default)
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            if not ctx.plugins.is_enabled(plugin_name):
                raise NotFound("Plugin", plugin_name)
            # Where the caller may act (identity #3): a bank outside its scope does not exist.
            bank_id = connection.path_params.get("bank_id")
            if bank_id is not None:
                if caller.actor.bank_id is not None and caller.actor.bank_id != bank_id:
                    raise NotFound("Locker bank", bank_id)
                await scopes.check_bank(ctx, bank_id)
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
                    path=f"/api/v1/t/{{tenant:str}}/ext/{name}",
                    route_handlers=handlers,
                    guards=[_plugin_guard(name)],
                    dependencies={"plugin_request": Provide(_plugin_request)},
                    tags=[f"plugin: {name}"],
                )
            )
    return routers


def _log_server_errors(logger, scope, traceback_lines: list[str]) -> None:
    """Log the traceback of a 5xx; a 4xx is an answer to the caller, not an error of ours."""
    exc = sys.exc_info()[1]
    status = getattr(exc, "status_code", 500)
    if isinstance(status, int) and status < 500:
        return
    logger.error(
        "Unhandled error on %s %s:\n%s", scope.get("method", ""), scope.get("path", ""), "".join(traceback_lines)
    )


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
        route_handlers=[health, *TENANT_CONTROLLERS, *PLATFORM_CONTROLLERS, agent_socket, *plugin_routers()],
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
        logging_config=LoggingConfig(
            log_exceptions="always",
            exception_logging_handler=_log_server_errors,
            configure_root_logger=False,
        ),
        debug=False,
    )
