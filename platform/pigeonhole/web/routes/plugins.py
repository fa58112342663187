"""A tenant's plugins: what is installed, what it enabled, with which configuration (A8)."""

from __future__ import annotations

from litestar import Controller, delete, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from pigeonhole.domain import tenant_plugins
from pigeonhole.domain.context import tenant_context
from pigeonhole.domain.errors import NotFound
from pigeonhole.domain.identity import audit, scopes
from pigeonhole.runtime import registry
from pigeonhole.web import schemas as s
from pigeonhole.web.auth import Caller, require


def plugin_out(plugin: registry.InstalledPlugin, config: dict | None) -> s.PluginOut:
    return s.PluginOut(
        name=plugin.name,
        distribution=plugin.distribution,
        version=plugin.version,
        description=plugin.description,
        enabled=config is not None,
        config=config,
        config_schema=plugin.config_schema(),
    )


class PluginController(Controller):
    path = "/api/v1/t/{tenant:str}/plugins"
    tags = ["plugins"]

    @get("/", summary="Installed plugins, and which this tenant enabled")
    async def list_plugins(self, caller: NamedDependency[Caller]) -> list[s.PluginOut]:
        require(caller, "plugins:read")
        async with tenant_context(caller.tenant, caller.actor, write=False) as ctx:
            enabled = await tenant_plugins.shown(ctx)  # secrets masked
        return [
            plugin_out(p, enabled.get(p.name))
            for p in sorted(registry.installed().values(), key=lambda p: p.name)
        ]

    @put("/{name:str}", summary="Enable a plugin or change its configuration (validated)")
    async def enable(
        self, caller: NamedDependency[Caller], name: FromPath[str], data: JSONBody[s.PluginIn]
    ) -> s.PluginOut:
        require(caller, "plugins:write")
        scopes.require_whole_tenant(caller, "configure plugins")
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            stored = await tenant_plugins.enable(ctx, name, data.config)  # secrets masked
            # The log names the fields only, not even the masked values.
            await audit.record(
                ctx, "plugin.configured", target_type="plugin", target_id=name, data={"fields": sorted(stored)}
            )
        return plugin_out(registry.get(name), stored)

    @delete("/{name:str}", summary="Disable a plugin for this tenant")
    async def disable(self, caller: NamedDependency[Caller], name: FromPath[str]) -> None:
        require(caller, "plugins:write")
        scopes.require_whole_tenant(caller, "configure plugins")
        if name not in registry.installed():
            raise NotFound("Plugin", name)
        async with tenant_context(caller.tenant, caller.actor) as ctx:
            await tenant_plugins.disable(ctx, name)
            await audit.record(ctx, "plugin.disabled", target_type="plugin", target_id=name)
