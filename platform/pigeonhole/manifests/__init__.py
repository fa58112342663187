"""Declarative tenant manifests (tenants/<slug>/tenant.toml)."""
