"""Secrets in a tenant's plugin configuration: sealed at rest, never shown back.

A plugin marks a field secret by typing it :data:`pigeonhole.api.Secret`, whose
JSON schema carries ``"writeOnly": true``. The host finds those fields in the
Config's schema (nested structs, lists and dicts of them, ``$ref``), and:

- stores their values sealed (``sealed:v1:`` + a Fernet token under the
  server's key, :func:`pigeonhole.security.secrets.seal`), so a copy of the
  database does not give away a gateway token or a partner's signing key;
- unseals them when it builds the tenant's plugin instances (only values
  carrying the marker: a row stored in clear before this existed still works);
- answers :data:`~pigeonhole.api.SECRET_PLACEHOLDER` in their place everywhere
  (GET and PUT answers), and reads the placeholder sent back as "keep the
  stored value". See docs/decisions/0031-plugin-config-secrets.md.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from pigeonhole.api import SECRET_PLACEHOLDER
from pigeonhole.runtime import registry
from pigeonhole.security import secrets

log = logging.getLogger(__name__)

SEALED = "sealed:v1:"
ANY = "*"  # a path step: every item of a list, every value of a dict

Path = tuple[str, ...]


class PlaceholderWithoutSecret(ValueError):
    """The placeholder was sent for a secret the tenant never stored."""

    def __init__(self, field: str) -> None:
        super().__init__(
            f"{field}: '{SECRET_PLACEHOLDER}' keeps the stored secret, but none is stored here; "
            "send the secret itself"
        )
        self.field = field


# ---------------------------------------------------------------- the schema


def secret_paths(schema: dict[str, Any]) -> list[Path]:
    """The paths of the writeOnly fields of a JSON schema (``("endpoints", "*", "secret")``)."""
    defs = schema.get("$defs", {})
    found: list[Path] = []

    def walk(node: Any, path: Path, refs: frozenset[str]) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name not in refs:  # a recursive struct: each definition once per branch
                walk(defs.get(name), path, refs | {name})
        if node.get("writeOnly") is True:
            if path not in found:
                found.append(path)
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for alternative in node.get(key, ()):
                walk(alternative, path, refs)
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, (*path, name), refs)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], (*path, ANY), refs)

    walk(schema, (), frozenset())
    return found


def paths_of(plugin: str) -> list[Path]:
    """The secret fields of an installed plugin's Config ([] for an unknown plugin)."""
    try:
        return secret_paths(registry.get(plugin).config_schema())
    except registry.UnknownPlugin:
        return []


# ---------------------------------------------------------------- walking values


def _map(value: Any, path: Path, leaf) -> Any:
    """``value`` with ``leaf`` applied to what ``path`` reaches (a deep copy is the caller's)."""
    if not path:
        return leaf(value)
    head, rest = path[0], path[1:]
    if head == ANY:
        if isinstance(value, list):
            return [_map(item, rest, leaf) for item in value]
        if isinstance(value, dict):
            return {k: _map(v, rest, leaf) for k, v in value.items()}
        return value
    if isinstance(value, dict) and head in value:
        return {**value, head: _map(value[head], rest, leaf)}
    return value


def _apply(config: dict, paths: list[Path], leaf) -> dict:
    out = copy.deepcopy(config)
    for path in paths:
        out = _map(out, path, leaf)
    return out


def masked(plugin: str, config: dict) -> dict:
    """What an API answer shows: every secret that is set replaced by the placeholder."""
    return _apply(config, paths_of(plugin), _mask)


def sealed(plugin: str, config: dict) -> dict:
    """What the database stores: every secret sealed under the server's key."""

    def seal(value: Any) -> Any:
        if isinstance(value, str) and value and not value.startswith(SEALED):
            return SEALED + secrets.seal(value)
        return value

    return _apply(config, paths_of(plugin), seal)


def unsealed(config: Any) -> Any:
    """A stored configuration in clear: every sealed value opened, wherever it is.

    Only values carrying the marker are opened, so a row written before secrets
    were sealed (or a field that stopped being secret) reads as it is. A value
    the server's key cannot open (the key changed) becomes None: the plugin's
    Config then refuses it and the host logs it, rather than sending garbage.
    """
    if isinstance(config, dict):
        return {k: unsealed(v) for k, v in config.items()}
    if isinstance(config, list):
        return [unsealed(v) for v in config]
    if isinstance(config, str) and config.startswith(SEALED):
        opened = secrets.unseal(config.removeprefix(SEALED))
        if opened is None:
            log.error("a sealed plugin secret cannot be opened with this server's key")
        return opened
    return config


# ---------------------------------------------------------------- the placeholder sent back


def _label(path: list[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _mask(value: Any) -> Any:
    return SECRET_PLACEHOLDER if isinstance(value, str) and value else value


def _hide(value: Any, inner: list[Path]) -> Any:
    return _apply(value, inner, _mask) if isinstance(value, dict) else value


def _keep(new: Any, old: Any, rest: Path, done: Path, where: list[str | int], every: list[Path]) -> Any:
    """Walk ``rest`` of a secret's path in ``new`` and ``old`` together (``done``: the steps walked)."""
    if not rest:
        if new == SECRET_PLACEHOLDER:
            if isinstance(old, str) and old:
                return old
            raise PlaceholderWithoutSecret(_label(where))
        return new
    head, tail, here = rest[0], rest[1:], (*done, rest[0])
    if head == ANY:
        if isinstance(new, list):
            olds = old if isinstance(old, list) else []
            # The secrets inside one item: matching an item to a stored one ignores them.
            inner = [p[len(here) :] for p in every if p[: len(here)] == here]
            return [
                _keep(item, _counterpart(item, i, new, olds, inner), tail, here, [*where, i], every)
                for i, item in enumerate(new)
            ]
        if isinstance(new, dict):
            olds = old if isinstance(old, dict) else {}
            return {k: _keep(v, olds.get(k), tail, here, [*where, k], every) for k, v in new.items()}
        return new
    if isinstance(new, dict) and head in new:
        before = old.get(head) if isinstance(old, dict) else None
        return {**new, head: _keep(new[head], before, tail, here, [*where, head], every)}
    return new


def _counterpart(item: Any, index: int, new: list, olds: list, inner: list[Path]) -> Any:
    """The stored item a new list item stands for: the same apart from its secrets,
    else the one at the same place when no item was added or removed."""
    wanted = _hide(item, inner)
    for old in olds:
        if _hide(old, inner) == wanted:
            return old
    if len(olds) == len(new):
        return olds[index]
    return None


def keep_stored(plugin: str, new: dict | None, stored: dict | None) -> dict | None:
    """``new`` with every placeholder replaced by the stored secret it stands for.

    Raises :class:`PlaceholderWithoutSecret` naming the field when there is
    none (a first save, a new list item the host cannot match to a stored one).
    """
    if not isinstance(new, dict):
        return new
    every = paths_of(plugin)
    out = copy.deepcopy(new)
    for path in every:
        out = _keep(out, stored or {}, path, (), [], every)
    return out
