"""Shared test machinery: real databases, a real SMTP server, tenants, an API client."""
