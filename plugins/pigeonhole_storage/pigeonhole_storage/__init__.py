"""Day-use storage of belongings in locker compartments (G1-G3), some kept for deliveries (D6)."""

from __future__ import annotations

from pigeonhole.api import Plugin, StoragePolicy, hookimpl

from pigeonhole_storage.config import StorageConfig

__all__ = ["StorageConfig", "StoragePlugin"]


class StoragePlugin(Plugin):
    name = "storage"
    Config = StorageConfig
    description = (
        "Storage of belongings: fixed, flexible or open-ended, some compartments kept for deliveries"
    )

    @hookimpl
    def pigeonhole_storage_policies(self) -> list[StoragePolicy]:
        return [self.policy()]

    def policy(self) -> StoragePolicy:
        config = self.config or StorageConfig()
        return StoragePolicy(
            modes=tuple(config.modes),
            fixed_hours=config.fixed_hours,
            max_hours=config.max_hours,
            max_advance_hours=config.max_advance_hours,
            reminder_minutes=config.reminder_minutes,
            sizes=tuple(config.sizes),
            keep_for_deliveries=dict(config.keep_for_deliveries),
            access_method=config.access_method,
        )
