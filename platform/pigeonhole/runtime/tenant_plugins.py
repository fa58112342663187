"""Each tenant's own plugin manager, holding only the plugins it enabled.

Like saleor's per-channel plugin instances and pretix's per-event signals: a
tenant's hooks reach only its enabled plugins, each built with that tenant's
configuration. Managers are cached per (tenant, plugins_version); any change of
a tenant's plugins bumps the version in the database, so every process
rebuilds on its next request, with no restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from uuid import UUID

import msgspec
import pluggy

from pigeonhole.api import AccessMethod, Channel, CustodyEvent, LockDriver, Workflow
from pigeonhole.runtime import config_secrets, registry

log = logging.getLogger(__name__)


@dataclass
class EnabledPlugin:
    name: str
    config: dict


@dataclass
class TenantPlugins:
    """The plugins of one tenant, at one version of its configuration."""

    tenant_id: UUID
    version: int
    pm: pluggy.PluginManager
    enabled: list[str] = field(default_factory=list)

    @property
    def hook(self):
        return self.pm.hook

    def is_enabled(self, name: str) -> bool:
        return name in self.enabled

    def lock_drivers(self) -> dict[str, type[LockDriver]]:
        drivers: dict[str, type[LockDriver]] = {}
        for contributed in self.hook.pigeonhole_lock_drivers():
            for cls in contributed or ():
                drivers.setdefault(cls.name, cls)
        return drivers

    def channels(self) -> list[Channel]:
        return [c for contributed in self.hook.pigeonhole_channels() for c in contributed or ()]

    def access_methods(self) -> dict[str, AccessMethod]:
        methods: dict[str, AccessMethod] = {}
        for contributed in self.hook.pigeonhole_access_methods():
            for method in contributed or ():
                methods.setdefault(method.name, method)
        return methods

    def workflow(self) -> Workflow | None:
        # pluggy calls the last registered first; manifests list the preferred first.
        found = [w for contributed in self.hook.pigeonhole_workflows() for w in contributed or ()]
        return found[-1] if found else None

    def custody_event(self, event: CustodyEvent) -> None:
        try:
            self.hook.pigeonhole_custody_event(event=event)
        except Exception:  # an observer must never break the state change
            log.exception("a plugin failed while observing %s", event.kind)


_cache: dict[UUID, TenantPlugins] = {}


def build(tenant_id: UUID, version: int, enabled: list[EnabledPlugin]) -> TenantPlugins:
    pm = registry.new_plugin_manager()
    names = []
    for item in enabled:
        try:
            plugin = registry.get(item.name)
        except registry.UnknownPlugin:
            log.error("tenant %s enables %s, which is not installed", tenant_id, item.name)
            continue
        try:
            config = registry.validate_config(item.name, item.config)
        except registry.ConfigError:
            log.exception("tenant %s has an invalid stored configuration for %s", tenant_id, item.name)
            continue
        try:
            instance = plugin.cls(config)
        except Exception:  # one plugin's failure must not take the tenant down
            log.exception("plugin %s failed to start for tenant %s", item.name, tenant_id)
            continue
        pm.register(instance, name=item.name)
        names.append(item.name)
    pm.check_pending()
    return TenantPlugins(tenant_id=tenant_id, version=version, pm=pm, enabled=names)


def cached(tenant_id: UUID, version: int) -> TenantPlugins | None:
    """The tenant's plugins if already built at this version (no database needed)."""
    hit = _cache.get(tenant_id)
    return hit if hit is not None and hit.version == version else None


async def for_tenant(tenant_id: UUID, version: int) -> TenantPlugins:
    """The tenant's plugins at ``version``; must run inside its ``tenant_tx``."""
    cached = _cache.get(tenant_id)
    if cached is not None and cached.version == version:
        return cached
    from pigeonhole.db.engine import current_scope
    from pigeonhole.db.tables import TenantPlugin

    scope = current_scope()
    if scope is None or scope.tenant_id != tenant_id:
        raise RuntimeError("for_tenant() must run inside the tenant's transaction")
    rows = await scope.select(TenantPlugin).order_by(TenantPlugin.position)
    # Secret fields are stored sealed (config_secrets); the instances get them in clear.
    enabled = [
        EnabledPlugin(r["name"], config_secrets.unsealed(msgspec.json.decode(r["config"]))) for r in rows
    ]
    built = build(tenant_id, version, enabled)
    _cache[tenant_id] = built
    return built


def forget(tenant_id: UUID | None = None) -> None:
    if tenant_id is None:
        _cache.clear()
    else:
        _cache.pop(tenant_id, None)
