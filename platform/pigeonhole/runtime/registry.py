"""Installed plugins, discovered through the ``pigeonhole.plugins`` entry points.

Installing a distribution makes a plugin *available*; a tenant must still
enable it. The registry is read once per process (entry points do not change
while it runs) and can be re-read with :func:`reload`.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import msgspec
import pluggy

from pigeonhole import hookspecs
from pigeonhole.api import Plugin

log = logging.getLogger(__name__)
GROUP = "pigeonhole.plugins"


@dataclass(frozen=True)
class InstalledPlugin:
    name: str
    cls: type[Plugin]
    distribution: str
    version: str

    @property
    def description(self) -> str:
        return self.cls.description or (self.cls.__doc__ or "").strip().split("\n")[0]

    def config_schema(self) -> dict[str, Any]:
        return msgspec.json.schema(self.cls.Config)


class ConfigError(ValueError):
    """A plugin configuration that does not fit the plugin's Config struct.

    ``field`` is the dotted path of the offending field when msgspec names one,
    so the admin console can put the message next to the right input.
    """

    def __init__(self, plugin: str, message: str, field: str | None = None) -> None:
        super().__init__(f"Invalid configuration for plugin '{plugin}': {message}")
        self.plugin = plugin
        self.detail = message
        self.field = field if field is not None else _field_of(message)


_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED = re.compile(r"(?:missing required|unknown) field `([^`]*)`")


def _field_of(message: str) -> str | None:
    """``$.a.b`` from msgspec's "... - at `$.a.b`", plus the key a missing or unknown field names."""
    at = _AT.search(message)
    path = at.group(1) if at else ""
    named = _NAMED.search(message)
    if named:
        return f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None


class UnknownPlugin(LookupError):
    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(installed())) or "none"
        super().__init__(f"Unknown plugin '{name}' (installed: {known})")
        self.name = name


_installed: dict[str, InstalledPlugin] | None = None


def installed() -> dict[str, InstalledPlugin]:
    global _installed
    if _installed is None:
        _installed = _discover()
    return _installed


def reload() -> dict[str, InstalledPlugin]:
    """Forget what was discovered (after installing a distribution at run time)."""
    global _installed, _platform_pm
    importlib.invalidate_caches()
    _installed = None
    _platform_pm = None
    return installed()


def _discover() -> dict[str, InstalledPlugin]:
    found: dict[str, InstalledPlugin] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception:  # a broken plugin must not take the platform down
            log.exception("cannot load plugin entry point %s", ep.value)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            log.error("entry point %s is not a pigeonhole.api.Plugin subclass", ep.value)
            continue
        name = getattr(cls, "name", ep.name)
        dist = ep.dist
        found[name] = InstalledPlugin(
            name=name,
            cls=cls,
            distribution=dist.name if dist else "?",
            version=dist.version if dist else "?",
        )
    return found


def get(name: str) -> InstalledPlugin:
    try:
        return installed()[name]
    except KeyError:
        raise UnknownPlugin(name) from None


def validate_config(name: str, raw: dict[str, Any] | None) -> msgspec.Struct:
    """Validate a plugin configuration; raise ConfigError naming the bad field."""
    plugin = get(name)
    raw = raw or {}
    unknown = _unknown_fields(plugin.cls.Config, raw)
    if unknown:
        raise ConfigError(name, f"Object contains unknown field `{unknown[0]}` - at `$`", field=unknown[0])
    try:
        return msgspec.convert(raw, plugin.cls.Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(name, str(exc)) from None


def _unknown_fields(config_cls: type, raw: Any) -> list[str]:
    """Top-level keys the Config does not declare, even if it does not forbid them.

    msgspec silently drops unknown keys unless the Struct sets
    ``forbid_unknown_fields``; the host stores the converted Struct, so a
    mistyped key would vanish and its intended value be replaced by the
    default without a word. Refusing it on save is the only honest answer.
    """
    if not (
        isinstance(raw, dict) and isinstance(config_cls, type) and issubclass(config_cls, msgspec.Struct)
    ):
        return []
    known = {f.encode_name for f in msgspec.structs.fields(config_cls)}
    tag_field = config_cls.__struct_config__.tag_field
    if tag_field is not None:
        known.add(tag_field)
    return sorted(str(key) for key in raw if key not in known)


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("pigeonhole")
    pm.add_hookspecs(hookspecs)
    return pm


_platform_pm: pluggy.PluginManager | None = None


def platform_pm() -> pluggy.PluginManager:
    """Every installed plugin, built with ``config=None``, for the platform hooks."""
    global _platform_pm
    if _platform_pm is None:
        pm = new_plugin_manager()
        for plugin in installed().values():
            pm.register(plugin.cls(None), name=plugin.name)
        pm.check_pending()
        _platform_pm = pm
    return _platform_pm
