"""The HTTP face of the platform: the REST API under /api/v1 and plugin routes."""
