"""Database access: the schema's tables, engines, and the tenant-scoped path."""
